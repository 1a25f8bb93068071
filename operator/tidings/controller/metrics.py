"""Prometheus metrics, served on TIDINGS_METRICS_PORT (/metrics).

tidings_runs_total{outcome,failure}     finished runs this replica recorded
and the per-report series of controller.report_metrics (only on the replica serving reports).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, start_http_server

from tidings.controller.report_metrics import Leadership, ReportStore, utc_now

RUNS = Counter(
    "tidings_runs", "Finished report runs by outcome and failure kind.", ["outcome", "failure"]
)
REPORTS = ReportStore(lambda: LEADERSHIP.leading, utc_now)
LEADERSHIP = Leadership(leading=True, on_pause=REPORTS.clear)
REGISTRY.register(REPORTS)


def serve(port: int, peering: bool) -> None:
    """Start /metrics; with peering this replica leads only once kopf says so."""
    LEADERSHIP.leading = not peering
    LEADERSHIP.install()
    start_http_server(port)


def observe_report(report: Mapping[str, Any]) -> None:
    REPORTS.observe(report)


def forget_report(namespace: str, name: str) -> None:
    REPORTS.forget(namespace, name)


def observe_run(outcome: Any) -> None:
    """Count one recorded run (a run_outcome.RunOutcome)."""
    # Test sends and skipped runs are their own outcomes, so alerts on Failed ignore them.
    label = "Test" if outcome.test_recipient else outcome.history_entry()["outcome"]
    RUNS.labels(outcome=label, failure=outcome.failure or "none").inc()


def reports_seen() -> int:
    return len(REPORTS)
