"""Prometheus metrics, served on TIDINGS_METRICS_PORT (/metrics).

tidings_reports{phase}                                      reports this operator serves
tidings_runs_total{outcome,failure}                         finished runs it recorded
tidings_report_last_success_timestamp_seconds{namespace,report}
tidings_report_consecutive_failures{namespace,report}
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, start_http_server

from tidings import models
from tidings.schedule import parse_rfc3339

REPORTS = Gauge("tidings_reports", "ScheduledReports by phase.", ["phase"])
RUNS = Counter(
    "tidings_runs", "Finished report runs by outcome and failure kind.", ["outcome", "failure"]
)
LAST_SUCCESS = Gauge(
    "tidings_report_last_success_timestamp_seconds",
    "When the report's last delivered run finished (Unix time).",
    ["namespace", "report"],
)
FAILURES = Gauge(
    "tidings_report_consecutive_failures",
    "Failed runs since the report's last success.",
    ["namespace", "report"],
)

_phases: dict[tuple[str, str], str] = {}
for _phase in [*(p.value for p in models.Phase), "Unknown"]:
    REPORTS.labels(phase=_phase).set(0)


def serve(port: int) -> None:
    start_http_server(port)


def _set_phase(key: tuple[str, str], phase: str | None) -> None:
    """Move one report between phase counts: O(1), as every report event lands here."""
    old = _phases.pop(key, None) if phase is None else _phases.get(key)
    if old == phase:
        return
    if old is not None:
        REPORTS.labels(phase=old).dec()
    if phase is not None:
        _phases[key] = phase
        REPORTS.labels(phase=phase).inc()


def observe_report(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    _set_phase((namespace, name), status.get("phase") or "Unknown")
    FAILURES.labels(namespace=namespace, report=name).set(status.get("consecutiveFailures") or 0)
    last_sent = status.get("lastSentAt")
    if last_sent:
        try:
            stamp = parse_rfc3339(last_sent).timestamp()
        except ValueError:
            return
        LAST_SUCCESS.labels(namespace=namespace, report=name).set(stamp)


def forget_report(namespace: str, name: str) -> None:
    _set_phase((namespace, name), None)
    for gauge in (FAILURES, LAST_SUCCESS):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)


def observe_run(outcome: Any) -> None:
    """Count one recorded run (a status.RunOutcome)."""
    # Test sends and skipped runs are their own outcomes, so alerts on Failed ignore them.
    label = "Test" if outcome.test_recipient else outcome.history_entry()["outcome"]
    RUNS.labels(outcome=label, failure=outcome.failure or "none").inc()


def reports_seen() -> int:
    return len(_phases)
