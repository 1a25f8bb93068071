"""Per-report Prometheus series, exported only by the replica that serves reports.

Every report has its series from the first time the operator sees it, so "never delivered"
can be alerted on (a last-success of 0 plus a passed fire time), and "stale" is measured against
the report's own schedule: the latest fire time is computed at scrape time, in the report's
zone.

Leadership: with peering, kopf starts every replica paused and logs each change ("Resuming
operations ..." when it leads, "Pausing operations ..." when a higher-priority replica appears);
`Leadership` follows those lines. A standby exports `tidings_operator_leader 0` and no report
series, so two replicas behind the metrics Service never disagree about a report. Standalone
(one replica, no peering) always leads.

    tidings_operator_leader                                   1 on the replica serving reports
    tidings_reports{phase}                                    reports by phase
    tidings_report_phase{namespace,report,phase}              1 for the current phase, else 0
    tidings_report_consecutive_failures{namespace,report}
    tidings_report_last_success_timestamp_seconds{...}        0 until the first delivered run
    tidings_report_created_timestamp_seconds{...}
    tidings_report_last_fire_timestamp_seconds{...}           latest fire time <= now; 0: none
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tidings import models
from tidings.schedule import parse_rfc3339, previous_fire_time

PHASES = [*(p.value for p in models.Phase), "Unknown"]
# Every series name the collector exports (the chart's rules and dashboard use only these).
SERIES = (
    "tidings_operator_leader",
    "tidings_reports",
    "tidings_report_phase",
    "tidings_report_consecutive_failures",
    "tidings_report_last_success_timestamp_seconds",
    "tidings_report_created_timestamp_seconds",
    "tidings_report_last_fire_timestamp_seconds",
)
KEY = ["namespace", "report"]


@dataclass(frozen=True)
class ReportState:
    phase: str
    failures: int
    last_success: float
    created: float
    schedule: str
    time_zone: str


def _timestamp(value: Any) -> float:
    try:
        return parse_rfc3339(value).timestamp() if value else 0.0
    except ValueError:
        return 0.0


def report_state(report: Mapping[str, Any]) -> ReportState:
    """What the series need from a report object (as the API returns it)."""
    spec = report.get("spec") or {}
    status = report.get("status") or {}
    return ReportState(
        phase=status.get("phase") or "Unknown",
        failures=int(status.get("consecutiveFailures") or 0),
        last_success=_timestamp(status.get("lastSentAt")),
        created=_timestamp((report.get("metadata") or {}).get("creationTimestamp")),
        schedule=spec.get("schedule") or "",
        time_zone=status.get("timeZone") or spec.get("timeZone") or "UTC",  # a namespace's
    )


def _last_fire(state: ReportState, now: datetime) -> float:
    try:
        fire = previous_fire_time(state.schedule, state.time_zone, now)
    except ValueError:  # an Invalid report's schedule
        return 0.0
    return fire.timestamp() if fire else 0.0


def families(reports: Mapping[tuple[str, str], ReportState], now: datetime) -> list[Any]:
    """The report metric families for these reports at `now`: pure, for the collector."""
    by_phase = GaugeMetricFamily("tidings_reports", "ScheduledReports by phase.", labels=["phase"])
    counts = dict.fromkeys(PHASES, 0)
    for state in reports.values():
        counts[state.phase if state.phase in counts else "Unknown"] += 1
    for phase, count in counts.items():
        by_phase.add_metric([phase], count)
    phase = GaugeMetricFamily(
        "tidings_report_phase",
        "1 for the report's current phase (Active, Paused, Disabled, Invalid, Manual), else 0.",
        labels=[*KEY, "phase"],
    )
    gauges = {
        "failures": GaugeMetricFamily(
            "tidings_report_consecutive_failures",
            "Failed runs since the report's last success.",
            labels=KEY,
        ),
        "last_success": GaugeMetricFamily(
            "tidings_report_last_success_timestamp_seconds",
            "When the report's last delivered run finished (Unix time); 0 if it never delivered.",
            labels=KEY,
        ),
        "created": GaugeMetricFamily(
            "tidings_report_created_timestamp_seconds",
            "When the report was created (Unix time).",
            labels=KEY,
        ),
        "last_fire": GaugeMetricFamily(
            "tidings_report_last_fire_timestamp_seconds",
            "The report's latest scheduled fire time at or before now (Unix time); 0 for none.",
            labels=KEY,
        ),
    }
    for (namespace, name), state in sorted(reports.items()):
        labels = [namespace, name]
        for candidate in PHASES:
            phase.add_metric([*labels, candidate], 1 if state.phase == candidate else 0)
        gauges["failures"].add_metric(labels, state.failures)
        gauges["last_success"].add_metric(labels, state.last_success)
        gauges["created"].add_metric(labels, state.created)
        gauges["last_fire"].add_metric(labels, _last_fire(state, now))
    return [by_phase, phase, *gauges.values()]


class ReportStore(Collector):
    """The reports this replica has seen, collected at scrape time (thread-safe: kopf's loop
    writes, the metrics server's thread reads)."""

    def __init__(self, leading: Callable[[], bool], now: Callable[[], datetime]) -> None:
        self._reports: dict[tuple[str, str], ReportState] = {}
        self._lock = threading.Lock()
        self._leading = leading
        self._now = now

    def observe(self, report: Mapping[str, Any]) -> None:
        meta = report["metadata"]
        state = report_state(report)
        with self._lock:
            self._reports[(meta["namespace"], meta["name"])] = state

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._reports.pop((namespace, name), None)

    def clear(self) -> None:
        with self._lock:
            self._reports.clear()

    def __len__(self) -> int:
        return len(self._reports)

    def collect(self) -> Iterator[Any]:
        leading = self._leading()
        leader = GaugeMetricFamily(
            "tidings_operator_leader",
            "1 on the replica that serves reports (peering leader or standalone), 0 on a standby.",
            value=1 if leading else 0,
        )
        yield leader
        if leading:
            with self._lock:
                reports = dict(self._reports)
            yield from families(reports, self._now())


class Leadership(logging.Handler):
    """Follows kopf's peering log lines to know whether this replica serves reports.

    On pausing, `on_pause` runs: a paused replica sees no deletions, so what it knew is dropped,
    and kopf's fresh listing on resuming refills it."""

    LOGGER = "kopf._core.engines.peering"

    def __init__(self, leading: bool, on_pause: Callable[[], None] = lambda: None) -> None:
        super().__init__(logging.INFO)
        self.leading = leading
        self._on_pause = on_pause
        self._on_resume: list[Callable[[], None]] = []

    def add_resume_hook(self, hook: Callable[[], None]) -> None:
        """Run `hook` each time kopf resumes this replica (in kopf's event loop)."""
        self._on_resume.append(hook)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Resuming operations"):
            self.leading = True
            for hook in self._on_resume:
                hook()
        elif message.startswith("Pausing"):
            self.leading = False
            self._on_pause()

    def install(self) -> None:
        peering_log = logging.getLogger(self.LOGGER)
        if self in peering_log.handlers:
            return
        peering_log.addHandler(self)
        # The transitions are INFO; they must reach this handler whatever the log level.
        peering_log.setLevel(logging.INFO)


def utc_now() -> datetime:
    return datetime.now(UTC)
