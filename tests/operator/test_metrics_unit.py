"""Report series: present from the first sight of a report, each report counted once in its
latest phase, forgotten when deleted, and exported only while this replica leads."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from tidings.controller.report_metrics import Leadership, ReportStore

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday


def report(name: str, **status: object) -> dict:
    return {
        "metadata": {"namespace": "ns", "name": name, "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": {"schedule": "0 9 * * 1", "timeZone": "Europe/Berlin"},
        "status": status,
    }


def registry(store: ReportStore) -> CollectorRegistry:
    found = CollectorRegistry()
    found.register(store)
    return found


def test_series_exist_from_the_first_sight_and_follow_each_report() -> None:
    store = ReportStore(lambda: leading.leading, lambda: NOW)
    leading = Leadership(leading=True, on_pause=store.clear)
    metrics = registry(store)

    def value(name: str, **labels: str) -> float | None:
        return metrics.get_sample_value(name, labels)

    store.observe(report("a"))  # never reconciled, never delivered
    key = {"namespace": "ns", "report": "a"}
    assert value("tidings_report_last_success_timestamp_seconds", **key) == 0
    assert (
        value("tidings_report_created_timestamp_seconds", **key)
        == datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    )
    # Monday 30 Nov 2026 09:00 CET is the latest fire time before NOW.
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC).timestamp()
    assert value("tidings_report_last_fire_timestamp_seconds", **key) == monday
    assert value("tidings_report_phase", **key, phase="Unknown") == 1
    assert value("tidings_reports", phase="Unknown") == 1

    store.observe(report("a", phase="Active", lastSentAt="2026-11-30T08:01:00Z"))
    store.observe(report("b", phase="Disabled", consecutiveFailures=3))
    store.observe(report("a", phase="Active", lastSentAt="2026-11-30T08:01:00Z"))  # again
    assert value("tidings_reports", phase="Active") == 1
    assert value("tidings_reports", phase="Disabled") == 1
    assert value("tidings_reports", phase="Unknown") == 0
    assert value("tidings_report_phase", **key, phase="Active") == 1
    assert value("tidings_report_phase", **key, phase="Unknown") == 0
    assert value("tidings_report_last_success_timestamp_seconds", **key) == monday + 60
    b = {"namespace": "ns", "report": "b"}
    assert value("tidings_report_consecutive_failures", **b) == 3

    store.forget("ns", "a")
    store.forget("ns", "never-seen")
    assert value("tidings_report_phase", **key, phase="Active") is None
    assert value("tidings_reports", phase="Active") == 0
    assert len(store) == 1

    # A standby exports that it is one, and no report series.
    leading.emit(logging.makeLogRecord({"msg": "Pausing operations in favour of [...]."}))
    assert value("tidings_operator_leader") == 0
    assert value("tidings_report_consecutive_failures", **b) is None
    assert value("tidings_reports", phase="Disabled") is None
    assert len(store) == 0  # it sees no deletions while paused: kopf's listing refills it
    leading.emit(logging.makeLogRecord({"msg": "Resuming operations after the pause. ..."}))
    store.observe(report("b", phase="Disabled", consecutiveFailures=3))
    assert value("tidings_operator_leader") == 1
    assert value("tidings_report_consecutive_failures", **b) == 3


def test_a_manual_or_invalid_schedule_has_no_fire_time() -> None:
    store = ReportStore(lambda: True, lambda: NOW)
    manual = report("m")
    manual["spec"]["schedule"] = ""
    broken = report("x")
    broken["spec"]["schedule"] = "61 * * * *"
    store.observe(manual)
    store.observe(broken)
    metrics = registry(store)
    for name in ("m", "x"):
        labels = {"namespace": "ns", "report": name}
        assert metrics.get_sample_value("tidings_report_last_fire_timestamp_seconds", labels) == 0


def test_pause_and_resume_hooks_and_install_is_once() -> None:
    """A paused replica drops its report metrics; each resume runs the handlers' re-check of
    their CronJob map (a paused replica saw no deletions)."""
    import logging

    seen: list[str] = []
    leadership = Leadership(leading=True, on_pause=lambda: seen.append("paused"))
    leadership.add_resume_hook(lambda: seen.append("resumed"))
    peering = logging.getLogger(Leadership.LOGGER)
    try:
        leadership.install()
        leadership.install()
        assert peering.handlers.count(leadership) == 1
        peering.info("Pausing operations in favour of [<Peer other>].")
        assert (leadership.leading, seen) == (False, ["paused"])
        peering.info("Resuming operations after the pause.")
        assert (leadership.leading, seen) == (True, ["paused", "resumed"])
    finally:
        peering.removeHandler(leadership)
