"""The chart's monitoring pack, checked with Prometheus' own promtool (pinned in
hack/install-go-tools): the PrometheusRule as rendered passes `promtool check rules` and the
fixture series of monitoring/alerts-test.yaml (one group per alert); every part is optional;
the dashboard queries only series the operator exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.support.chart_tools import find, render, tool

from tidings.controller.report_metrics import PHASES, SERIES

ALERTS_TEST = Path(__file__).with_name("monitoring") / "alerts-test.yaml"
ALL_PARTS = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.dashboard.enabled=true",
)
# What the operator exports (tests/operator/test_metrics_cluster.py checks the real /metrics
# against it), plus Prometheus' own `up`.
EXPORTED = {"up", "tidings_runs_total", *SERIES}
ALERTS = {
    "TidingsReportDisabled",
    "TidingsReportFailing",
    "TidingsReportStale",
    "TidingsReportNeverDelivered",
    "TidingsOperatorDown",
    "TidingsNoLeader",
}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def rules_file(tmp_path: Path, release: str = "tidings") -> Path:
    objects = render(release, "tidings", set_values=("metrics.prometheusRule.enabled=true",))
    rule = find(objects, "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(up|tidings_[a-z_]+)\b", expr))


def test_promtool_check_rules(tmp_path: Path) -> None:
    rules = rules_file(tmp_path)
    done = promtool("check", "rules", str(rules))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout
    spec = yaml.safe_load(rules.read_text())
    rules_by_name = {r["alert"]: r for r in spec["groups"][0]["rules"]}
    assert set(rules_by_name) == ALERTS
    for name, rule in rules_by_name.items():
        assert metric_names(rule["expr"]) <= EXPORTED, name
        assert 'job="tidings-metrics"' in rule["expr"], name


def test_promtool_test_rules_one_fixture_per_alert(tmp_path: Path) -> None:
    rules_file(tmp_path)
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    tested = {t["alertname"] for g in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
              for t in g["alert_rule_test"]}  # fmt: skip
    assert tested == ALERTS
    done = promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_broken_rule_fails_the_fixture(tmp_path: Path) -> None:
    """The fixtures can fail: a stale alert without its grace fires before it should."""
    rules = rules_file(tmp_path)
    spec = yaml.safe_load(rules.read_text())
    (stale,) = (r for r in spec["groups"][0]["rules"] if r["alert"] == "TidingsReportStale")
    stale["for"] = "0m"
    rules.write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    done = promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert done.returncode != 0
    assert "alertname: TidingsReportStale, time: 1h30m" in done.stdout + done.stderr


def test_each_part_is_optional() -> None:
    kinds = {o["kind"] for o in render("tidings", "tidings")}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert not [
        o for o in render("tidings", "tidings") if o["metadata"]["name"].endswith("-dashboard")
    ]
    for part, kind in zip(
        ALL_PARTS, ("ServiceMonitor", "PrometheusRule", "ConfigMap"), strict=True
    ):
        objects = render("tidings", "tidings", set_values=(part,))
        found = [
            o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith("tidings")
        ]
        assert kind in {o["kind"] for o in found}, part
    # Without metrics there is nothing to scrape, alert on or chart.
    objects = render("tidings", "tidings", set_values=(*ALL_PARTS, "metrics.enabled=false"))
    assert not {o["kind"] for o in objects} & {"ServiceMonitor", "PrometheusRule"}


def test_service_monitor_selects_the_metrics_service() -> None:
    objects = render("tidings", "tidings", set_values=ALL_PARTS)
    monitor = find(objects, "ServiceMonitor")
    service = find(objects, "Service", "tidings-metrics")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]


def test_dashboard_queries_exported_series_of_this_release() -> None:
    objects = render("reports", "tidings", set_values=ALL_PARTS)
    config = find(objects, "ConfigMap", "reports-tidings-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config["data"]["tidings.json"])
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 6
    for expr in exprs:
        assert metric_names(expr) <= EXPORTED, expr
        assert 'job="reports-tidings-metrics"' in expr, expr
        assert "$JOB" not in expr


def test_phase_label_values_are_the_models_phases() -> None:
    assert set(PHASES) == {"Active", "Paused", "Disabled", "Invalid", "Manual", "Unknown"}


@pytest.mark.parametrize("release", ["tidings", "reports"])
def test_rules_follow_the_release_name(tmp_path: Path, release: str) -> None:
    job = "tidings-metrics" if release == "tidings" else f"{release}-tidings-metrics"
    assert f'job="{job}"' in rules_file(tmp_path, release).read_text()
