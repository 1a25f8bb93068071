"""Finished Jobs as the status tests build them: the Job, its renderer pod with the result line
as termination message, RunOutcomes, and one outcome recorded on a report as the operator does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tidings.controller import status as st
from tidings.controller.run_outcome import RunOutcome
from tidings.schedule import next_fire_time

NOW = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)  # the Saturday before Berlin springs forward


def job_body(name: str, condition: str | None, **extra: Any) -> dict:
    status: dict = {"failed": extra.pop("failed", 0)}
    if condition:
        status["conditions"] = [
            {
                "type": condition,
                "status": "True",
                "reason": extra.pop("reason", ""),
                "message": extra.pop("message", ""),
                "lastTransitionTime": "2025-03-31T07:03:00Z",
            }
        ]
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": "2025-03-31T07:00:05Z",
            "annotations": {
                "batch.kubernetes.io/cronjob-scheduled-timestamp": "2025-03-31T09:00:00+02:00"
            },
        },
        "spec": {"activeDeadlineSeconds": 600},
        "status": status,
    }


def pod_body(exit_code: int, message: str, finished: str = "2025-03-31T07:02:00Z") -> dict:
    terminated = {"exitCode": exit_code, "message": message, "finishedAt": finished}
    return {
        "status": {"containerStatuses": [{"name": "renderer", "state": {"terminated": terminated}}]}
    }


RESULT = {
    "outcome": "Delivered",
    "failure": None,
    "scheduledTime": "2025-03-31T07:00:00Z",
    "windowStart": "2025-03-24T08:00:00Z",
    "windowEnd": "2025-03-31T07:00:00Z",
    "recipientsAccepted": 3,
    "recipientsRejected": 1,
    "bytes": 48213,
    "renderer": "pdf",
    "error": "",
    "messageId": "<x@tidings>",
}


def simple_outcome(name: str, delivered: bool, finished: str, error: str = "boom") -> RunOutcome:
    return RunOutcome(
        job_name=name,
        delivered=delivered,
        failure=None if delivered else "transient",
        finished_at=finished,
        error="" if delivered else error,
    )


def record_outcome(report: dict, outcome: RunOutcome) -> st.StatusChange | None:
    """st.apply_outcome at NOW, its status change written into `report`."""
    change = st.apply_outcome(report, outcome, NOW, next_fire_time)
    if change:
        report["status"] = {**report.get("status", {}), **change.status}
    return change


def finished_run(result: dict) -> tuple[dict, list[dict]]:
    """A completed Job with a name and uid (a record can be made of it) and its pod, whose
    termination message is `result` as the renderer's line."""
    job = job_body("payments-weekly-29412345", "Complete")
    job["metadata"].update(namespace="team-payments", uid="0a1b2c3d-aaaa-bbbb-cccc-000000000000")
    return job, [pod_body(0, json.dumps(result))]
