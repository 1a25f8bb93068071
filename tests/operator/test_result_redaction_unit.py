"""A relay that quotes the AUTH line in its 535 reply: the base64 AUTH PLAIN blob (user and
password) reaches neither the run's error (status, Events) nor the record's refused replies,
even though the operator does not know the secret."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from tidings.controller import records
from tidings.controller.records import Retention
from tidings.controller.run_outcome import job_outcome, job_result
from tidings.renderer.result import RunResult

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BLOB = base64.b64encode(b"\0relay-user\0hunter2-password").decode()
REPLY = f"535 5.7.8 authentication failed for AUTH PLAIN {BLOB}"


def test_an_echoed_auth_plain_blob_is_masked_everywhere() -> None:
    failed = RunResult(
        outcome="Failed",
        failure="permanent",
        error=REPLY,
        addresses={"to": {"accepted": [], "refused": {"a@example.com": REPLY}}},
    )
    job = {
        "metadata": {"name": "weekly-1", "namespace": "ns", "uid": "u-1", "labels": {}},
        "status": {"conditions": [{"type": "Failed", "status": "True"}]},
    }
    terminated = {"exitCode": 69, "finishedAt": "2026-12-01T09:00:00Z", "message": failed.to_json()}
    container = {"name": "renderer", "state": {"terminated": terminated}}
    pods = [{"status": {"containerStatuses": [container]}}]
    outcome = job_outcome(job, pods, NOW)
    assert outcome is not None and outcome.error.startswith("535 5.7.8")
    report = {"metadata": {"name": "weekly", "namespace": "ns", "uid": "r-1"}, "spec": {}}
    record = records.delivery_record(report, job, outcome, job_result(pods), Retention())
    text = f"{outcome.error} {record}"
    assert BLOB not in text and "***" in outcome.error
