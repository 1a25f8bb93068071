"""Pure parts of `kubectl tidings` and the human status fields: times in the report's zone,
relative times, DST changes between fire times, cut-short errors; the krew manifest."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tidings import __version__, display, kubectl_plugin

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_local_label_is_the_wall_time_in_the_zone() -> None:
    moment = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    assert display.local_label(moment, "Europe/Berlin") == "Mon 2026-12-07 09:00 CET"
    assert display.local_label(moment, "America/New_York") == "Mon 2026-12-07 03:00 EST"
    assert display.local_label(moment, "UTC") == "Mon 2026-12-07 08:00 UTC"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=5, hours=21, minutes=3), "in 5d 21h"),
        (timedelta(hours=3, minutes=5, seconds=9), "in 3h 5m"),
        (timedelta(seconds=40), "in 40s"),
        (timedelta(days=1, seconds=5), "in 1d 5s"),
        (-timedelta(hours=2, minutes=1), "2h 1m ago"),
        (timedelta(0), "now"),
    ],
)
def test_relative(delta: timedelta, text: str) -> None:
    assert display.relative(NOW + delta, NOW) == text


def test_brief_takes_the_first_line_and_cuts_it() -> None:
    assert display.brief("SMTP 451 busy\nTraceback ...") == "SMTP 451 busy"
    long = "x" * 100
    assert display.brief(long) == "x" * 59 + "…"
    assert len(display.brief(long)) == display.BRIEF_ERROR
    assert display.brief("") == ""


def test_fire_times_mark_the_spring_forward_and_fall_back() -> None:
    after = datetime(2026, 3, 20, tzinfo=UTC)
    times = display.fire_times("0 9 * * 0", "Europe/Berlin", after, 3)
    assert [t.local for t in times] == [
        "Sun 2026-03-22 09:00 CET",
        "Sun 2026-03-29 09:00 CEST",
        "Sun 2026-04-05 09:00 CEST",
    ]
    assert [t.offset_change for t in times] == [None, "UTC+01:00 -> UTC+02:00", None]
    assert times[1].at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    # Clocks go back at 03:00 on Sunday 25 October 2026, before that day's 09:00 run.
    autumn_after = datetime(2026, 10, 20, tzinfo=UTC)
    autumn = display.fire_times("0 9 * * 0", "Europe/Berlin", autumn_after, 2)
    assert [t.local for t in autumn] == ["Sun 2026-10-25 09:00 CET", "Sun 2026-11-01 09:00 CET"]
    assert [t.offset_change for t in autumn] == ["UTC+02:00 -> UTC+01:00", None]
    assert display.fire_times("", "UTC", NOW, 3) == []
    with pytest.raises(ValueError, match="not an IANA time zone"):
        display.fire_times("0 9 * * 1", "Mars/Base", NOW, 3)


def test_status_fields_follow_the_spec_and_status() -> None:
    spec = {"timeZone": "Europe/Berlin", "recipients": {"to": ["a@x.io"], "bcc": ["b@x.io"]}}
    status = {"nextSendAt": "2026-12-07T08:00:00Z", "lastError": "SMTP 451\nmore"}
    assert display.status_fields(spec, status) == {
        "nextSendLocal": "Mon 2026-12-07 09:00 CET",
        "recipientCount": 2,
        "recipientSummary": "2",
        "deliveryFormat": "pdf",
        "lastErrorBrief": "SMTP 451",
    }
    assert display.status_fields({}, {})["nextSendLocal"] is None


def _report(name: str, **status: object) -> dict:
    return {
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {
            "reportType": "dora_snapshot",
            "schedule": "0 9 * * 1",
            "timeZone": "Europe/Berlin",
        },
        "status": status,
    }


def test_get_table_shows_next_relative_and_local() -> None:
    reports = [
        _report("weekly", phase="Active", nextSendAt="2026-12-07T08:00:00Z", lastSentAt=None),
        _report("paused", phase="Paused", consecutiveFailures=2),
    ]
    lines = kubectl_plugin.get_table(reports, NOW, with_namespace=True).splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "NAME", "TYPE", "FORMAT", "PROGRAM", "SCHEDULE", "RECIPIENTS", "STATUS",
        "LAST", "SENT", "NEXT", "FAILURES",
    ]  # fmt: skip
    assert lines[1].split()[:7] == ["team-a", "paused", "dora_snapshot", "pdf", "-", "0", "9"]
    assert lines[1].split()[-1] == "2"
    assert "in 5d 22h (Mon 2026-12-07 09:00 CET)" in lines[2]


def test_status_text_lists_three_fire_times_with_dst() -> None:
    report = _report("weekly", phase="Active", lastError="", consecutiveFailures=0)
    report["spec"]["schedule"] = "0 9 * * 0"
    text = kubectl_plugin.status_text(report, datetime(2026, 3, 20, tzinfo=UTC))
    assert "Next 3 runs (Europe/Berlin):" in text
    assert "Sun 2026-03-29 09:00 CEST" in text
    assert "clocks change before this run: UTC+01:00 -> UTC+02:00" in text


def test_schedule_needs_no_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert kubectl_plugin.main(["schedule", "30 2 * * *", "--tz", "Europe/Berlin"], now=NOW) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Next 5 runs of '30 2 * * *' in Europe/Berlin:"
    assert out[1].strip() == "Wed 2026-12-02 02:30 CET  (in 15h 30m)"
    assert kubectl_plugin.main(["schedule", "* *", "--tz", "UTC"]) == 1
    assert "five-field cron expression" in capsys.readouterr().err


def test_console_script_and_krew_manifest() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["kubectl-tidings"] == "tidings.kubectl_plugin:main"
    manifest = yaml.safe_load((REPO / "plugins" / "tidings.yaml").read_text(encoding="utf-8"))
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert (manifest["kind"], manifest["metadata"]["name"]) == ("Plugin", "tidings")
    assert manifest["spec"]["version"] == f"v{__version__}"
    (platform,) = manifest["spec"]["platforms"]
    assert platform["bin"] == "kubectl-tidings"
    assert f"/v{__version__}/" in platform["uri"]
    # The sha256 is that of the archive hack/krew-archive builds from today's sources.
    path = str(REPO / "hack" / "krew-archive")
    loader = importlib.machinery.SourceFileLoader("krew_archive", path)
    spec = importlib.util.spec_from_loader("krew_archive", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert platform["sha256"] == hashlib.sha256(module.archive_bytes()).hexdigest(), (
        "plugins/tidings.yaml is stale: run hack/krew-archive"
    )


def test_status_text_for_manual_and_paused_reports() -> None:
    manual = _report("adhoc", phase="Manual")
    manual["spec"]["schedule"] = ""
    assert "Next runs:  none (manual runs only" in kubectl_plugin.status_text(manual, NOW)
    paused = _report("weekly", phase="Paused")
    assert "Next runs:  none while Paused" in kubectl_plugin.status_text(paused, NOW)


def test_status_text_shows_the_owners_and_what_the_last_run_told_them() -> None:
    report = _report("weekly", phase="Disabled", ownerNoticeSentAt="2026-12-01T09:00:00Z")
    report["spec"]["owners"] = ["owner@example.com", "deputy@example.com"]
    report["status"]["history"] = [
        {"jobName": "weekly-1", "outcome": "Failed", "ownerNotice": "Disabled: sent to 2 owner(s)"}
    ]
    text = kubectl_plugin.status_text(report, NOW)
    assert "Owners:     owner@example.com, deputy@example.com (last notice: " in text
    assert "(Job weekly-1); owners: Disabled: sent to 2 owner(s)" in text
    assert "Owners:" not in kubectl_plugin.status_text(_report("weekly", phase="Active"), NOW)


def test_the_plugin_shows_the_zone_in_effect() -> None:
    report = _report("weekly", phase="Active", timeZone="America/New_York")
    del report["spec"]["timeZone"]  # the namespace's default, as status.timeZone says
    assert kubectl_plugin.zone_of(report) == "America/New_York"
    assert "0 9 * * 1 in America/New_York" in kubectl_plugin.status_text(report, NOW)
    assert kubectl_plugin.zone_of({"spec": {}, "status": {}}) == "UTC"
