"""The real operator's /metrics: valid by `promtool check metrics`, report series from the
first reconcile (a report that never delivered has a last success of 0 and a passed fire
time), the run counter after a run, and only the series the chart's rules and dashboard use."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

import pytest
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings.controller.report_metrics import SERIES
from tidings.schedule import parse_rfc3339, previous_fire_time

pytestmark = pytest.mark.cluster


def promtool() -> str:
    pinned = subprocess.run(
        ["bash", "hack/install-go-tools", "--print-dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{pinned}/promtool"


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if labels.items() <= found.items():
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_pass_promtool_and_exist_from_the_first_reconcile(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet, namespace: str
) -> None:
    cluster.create_report(manifest("weekly", schedule="* * * * *", timeZone="Europe/Berlin"))
    status = cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    key = {"namespace": namespace, "report": "weekly"}
    text = wait_for(
        "the report's series",
        lambda: (
            (t := run_operator.metrics())
            and sample(t, "tidings_report_phase", **key, phase="Active") == 1
            and t
        ),
    )
    assert sample(text, "tidings_operator_leader") == 1
    assert sample(text, "tidings_report_last_success_timestamp_seconds", **key) == 0
    assert sample(text, "tidings_report_consecutive_failures", **key) == 0
    created = parse_rfc3339(cluster.report("weekly")["metadata"]["creationTimestamp"])
    assert sample(text, "tidings_report_created_timestamp_seconds", **key) == created.timestamp()
    last_fire = sample(text, "tidings_report_last_fire_timestamp_seconds", **key)
    assert last_fire is not None
    assert last_fire % 60 == 0
    assert last_fire <= datetime.now(UTC).timestamp()
    expected = previous_fire_time("* * * * *", "Europe/Berlin", datetime.now(UTC))
    assert expected is not None
    assert expected.timestamp() - last_fire in (0, 60)  # a minute boundary may pass between
    assert status["nextSendLocal"].endswith(("CET", "CEST"))

    body = manifest("manual", schedule="")
    body["metadata"]["annotations"] = {"tidings.dev/run-now": "1"}
    cluster.create_report(body)
    job = wait_for(
        "the run-now Job", lambda: [j for j in cluster.jobs() if "manual" in j["metadata"]["name"]]
    )
    kubelet.run(job[0]["metadata"]["name"], 0, result_line(True))
    cluster.wait_status("manual", "delivered", lambda s: bool(s.get("lastSentAt")))
    text = wait_for(
        "the run counted",
        lambda: (
            (t := run_operator.metrics())
            and sample(t, "tidings_runs_total", outcome="Delivered") == 1
            and t
        ),
    )
    manual = {"namespace": namespace, "report": "manual"}
    last_sent = parse_rfc3339(cluster.status("manual")["lastSentAt"]).timestamp()
    assert sample(text, "tidings_report_last_success_timestamp_seconds", **manual) == last_sent
    assert sample(text, "tidings_report_last_fire_timestamp_seconds", **manual) == 0

    names = {m for m in re.findall(r"^# TYPE (tidings_\w+)", text, re.MULTILINE)}
    # prometheus_client adds a _created gauge beside each counter.
    assert names == {*SERIES, "tidings_runs_total", "tidings_runs_created"}

    done = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
