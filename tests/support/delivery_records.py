"""ReportDelivery records as the operator writes them, for a report that may be gone."""

from __future__ import annotations

from datetime import datetime, timedelta

from tidings.contract import ResultLine
from tidings.controller import records
from tidings.controller.run_outcome import RunOutcome
from tidings.schedule import rfc3339


def record(namespace: str, job: str, finished: datetime, days: int | None = None) -> dict:
    report = {
        "metadata": {"name": "payments-weekly", "namespace": namespace, "uid": "gone-report-uid"},
        "spec": {"title": "Payments", "reportType": "changes_summary"},
    }
    if days:
        report["spec"]["delivery"] = {"retentionDays": days}
    job_object = {
        "metadata": {"name": job, "namespace": namespace, "uid": f"{job}-uid-0000"},
        "status": {"startTime": rfc3339(finished - timedelta(minutes=1))},
    }
    outcome = RunOutcome(
        job_name=job,
        delivered=True,
        failure=None,
        finished_at=rfc3339(finished),
        window_start="2026-08-24T00:00:00Z",
        window_end="2026-08-31T00:00:00Z",
        recipients_accepted=1,
        bytes=1000,
        renderer="pdf",
        message_id="<tidings.x@example.com>",
    )
    result = ResultLine(outcome="Delivered", addresses={"to": {"accepted": ["lead@example.com"]}})
    return records.delivery_record(report, job_object, outcome, result, records.Retention())
