"""`kubectl tidings`'s pure parts for the day-2 loop: kubectl-style flags in any position, the
deliveries table, --since, and the doctor's verdicts (the API parts run against a real
control plane in tests/operator/test_kubectl_plugin_day2_cluster.py)."""

from __future__ import annotations

import argparse
import copy
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from tidings import crdgen, kubectl_plugin, models

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "team", "--context", "c", "--kubeconfig", "k", "-o", "json", "status", "r"],
        ["status", "r", "-n", "team", "--context", "c", "--kubeconfig", "k", "-o", "json"],
        ["--namespace", "team", "status", "--context=c", "r", "--kubeconfig=k", "--output=json"],
    ],
)
def test_kubectl_flags_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = kubectl_plugin.build_parser().parse_args(argv)
    assert (args.namespace, args.context, args.kubeconfig) == ("team", "c", "k")
    assert (args.command, args.name, args.output_format) == ("status", "r", "json")


def test_a_flag_given_before_is_not_reset_by_the_subcommand() -> None:
    args = kubectl_plugin.build_parser().parse_args(["-n", "team", "-A", "deliveries", "r"])
    assert (args.namespace, args.all_namespaces, args.output_format) == ("team", True, None)


def test_preview_keeps_its_own_output_file() -> None:
    args = kubectl_plugin.build_parser().parse_args(["preview", "r", "-o", "x.pdf", "-n", "t"])
    assert (str(args.output), args.namespace) == ("x.pdf", "t")


def test_help_lists_every_subcommand_with_an_example() -> None:
    parser = kubectl_plugin.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    for name, sub in commands.items():
        assert f"kubectl tidings {name}" in parser.epilog, name
        assert sub.epilog.startswith(f"example:\n  kubectl tidings {name}"), name


def test_since_durations() -> None:
    assert kubectl_plugin.parse_duration("90m") == timedelta(minutes=90)
    assert kubectl_plugin.parse_duration("7d") == timedelta(days=7)
    with pytest.raises(argparse.ArgumentTypeError, match="'7 days' is not a duration"):
        kubectl_plugin.parse_duration("7 days")


def record(name: str, finished: datetime, outcome: str = "Delivered", **spec) -> dict:
    return {
        "metadata": {"name": f"{name}-rec", "namespace": "ns"},
        "spec": {
            "report": {"name": name, "uid": "u"},
            "jobName": f"{name}-1",
            "trigger": "Schedule",
            "finishedAt": finished.isoformat().replace("+00:00", "Z"),
            "window": "2026-11-23..2026-11-30",
            "outcome": outcome,
            "messageId": "<m@x>",
            "recipients": {
                "accepted": 1,
                "refused": 1,
                "to": {"accepted": ["a@example.com"]},
                "cc": {"refused": [{"address": "b@example.com", "reply": "550 no such user"}]},
            },
            **spec,
        },
    }


def test_deliveries_table_names_who_got_it_and_the_refusals_when_wide() -> None:
    rows = [record("weekly", NOW - timedelta(hours=2))]
    plain = kubectl_plugin.deliveries_table(rows, NOW, False, False, False).splitlines()
    assert plain[0].split() == [
        "FINISHED", "WINDOW", "OUTCOME", "TRIGGER", "SENT", "TO", "REFUSED", "MESSAGE-ID",
    ]  # fmt: skip
    assert plain[1].split()[-5:] == ["Delivered", "Schedule", "a@example.com", "1", "<m@x>"]
    wide = kubectl_plugin.deliveries_table(rows, NOW, True, True, False)
    assert "b@example.com: 550 no such user" in wide and "weekly-rec" in wide


def test_crd_drift_sees_a_changed_schema() -> None:
    wanted = crdgen.crd(models.KIND)
    assert kubectl_plugin.crd_drift(copy.deepcopy(wanted), wanted) == []
    old = copy.deepcopy(wanted)
    del old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert kubectl_plugin.crd_drift(old, wanted) == ["v1alpha1.schema differs"]


def test_renderer_verdicts() -> None:
    ok = kubectl_plugin._render_verdict("img", 0, "wrote /tmp/doctor.pdf: Changes, 3 rows")
    text = kubectl_plugin._render_verdict("img", 69, "PDF renderer unavailable (OSError: pango)")
    assert ok.state == kubectl_plugin.OK
    assert text.state == kubectl_plugin.FAIL and "fell back to text" in text.line()
    assert "renderer-image/apt-packages.txt" in text.line()  # what to do


def deployment(image: str) -> SimpleNamespace:
    container = SimpleNamespace(image=image, env=[])
    return SimpleNamespace(spec=SimpleNamespace(template=SimpleNamespace(
        spec=SimpleNamespace(containers=[container]))))  # fmt: skip


def test_version_skew() -> None:
    from tidings import __version__

    assert kubectl_plugin.check_version(deployment(f"r/tidings:{__version__}")).state == "ok"
    skewed = kubectl_plugin.check_version(deployment("r/tidings:0.0.9"))
    assert skewed.state == "FAIL" and "pip install tidings==0.0.9" in skewed.line()
    for image in ("r/tidings:latest", "r/tidings@sha256:" + "0" * 64, "localhost:5000/tidings"):
        assert kubectl_plugin.check_version(deployment(image)).state == "skip", image


def test_the_sample_report_is_valid_and_has_data_now() -> None:
    from tidings.validation import validate_spec

    sample = kubectl_plugin.sample_report("probe", NOW)
    result = validate_spec(sample["spec"])
    assert result.ok, result.summary()
    assert any("{date}" in w for w in result.warnings)  # what the webhook check looks for


def test_krew_manifest_and_readme_list_every_subcommand_with_an_example() -> None:
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    parser = kubectl_plugin.build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    manifest = yaml.safe_load((root / "plugins" / "tidings.yaml").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    for name in commands:
        example = f"kubectl tidings {name} "
        assert example in manifest["spec"]["description"], name
        assert example in readme, name


def test_get_wide_adds_the_last_error() -> None:
    report = {
        "metadata": {"name": "weekly", "namespace": "ns"},
        "spec": {"reportType": "changes_summary", "recipients": {"to": ["a@example.com"]}},
        "status": {"phase": "Disabled", "lastError": "SMTP 451\nrelay busy"},
    }
    header, row = kubectl_plugin.get_table([report], NOW, False, wide=True).splitlines()
    assert header.split()[-2:] == ["LAST", "ERROR"]
    assert "a@example.com" in row.split()  # RECIPIENTS is in the default view
    assert row.endswith("SMTP 451 relay busy")


@pytest.mark.parametrize("weasyprint", [True, False])
def test_the_renderer_pods_script_reports_pdf_or_the_fallback(tmp_path, weasyprint) -> None:
    """doctor's pod script, run here with its /tmp and termination log moved to tmp_path."""
    import json
    import os
    import subprocess
    import sys

    script = kubectl_plugin.RENDER_SCRIPT.replace("/tmp/", f"{tmp_path}/")
    script = script.replace("/dev/termination-log", f"{tmp_path}/termination-log")
    if not weasyprint:
        script = "import sys; sys.modules['weasyprint'] = None\n" + script
    report = json.dumps(kubectl_plugin.sample_report("doctor-sample", datetime.now(UTC)))
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "TIDINGS_DOCTOR_REPORT": report},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    message = (tmp_path / "termination-log").read_text().replace(f"{tmp_path}/", "/tmp/")
    verdict = kubectl_plugin._render_verdict("img", done.returncode, message)
    if weasyprint:
        assert verdict.state == "ok", (done.returncode, message)
    else:
        assert done.returncode == 69 and verdict.state == "FAIL"
        assert verdict.text.startswith("img fell back to text: ")
        assert "PDF renderer unavailable" in verdict.text and "weasyprint" in verdict.text
