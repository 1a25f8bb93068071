"""ReportDelivery records, pure: the record for a finished Job, label values, retention."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidings.controller import records
from tidings.controller.records import Retention
from tidings.controller.run_outcome import job_outcome, job_result
from tidings.renderer.result import RunResult, sort_addresses
from tidings.schedule import rfc3339

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TO = ["lead@example.com", "ops@example.com"]
BCC = ["archive@example.com"]


def report(name: str = "payments-weekly", **delivery: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "payments", "uid": "report-uid-1"},
        "spec": {
            "title": "Payments weekly",
            "reportType": "changes_summary",
            "delivery": delivery,
        },
    }


def finished_job(complete: bool = True, run_now: bool = False) -> dict[str, Any]:
    annotations = {"tidings.dev/run-now": "2026-12-01"} if run_now else {}
    return {
        "metadata": {
            "name": "payments-weekly-29412345",
            "namespace": "payments",
            "uid": "0a1b2c3d-aaaa-bbbb-cccc-000000000000",
            "annotations": annotations,
            "labels": {"tidings.dev/report-uid": "report-uid-1"},
        },
        "status": {
            "startTime": "2026-12-01T08:59:00Z",
            "conditions": [{"type": "Complete" if complete else "Failed", "status": "True"}],
        },
    }


def pod(result: RunResult, exit_code: int) -> dict[str, Any]:
    terminated = {
        "exitCode": exit_code,
        "finishedAt": "2026-12-01T09:00:00Z",
        "message": result.to_json(),
    }
    return {
        "status": {"containerStatuses": [{"name": "renderer", "state": {"terminated": terminated}}]}
    }


def record_for(result: RunResult, exit_code: int = 0, **kwargs: Any) -> dict[str, Any]:
    job = finished_job(complete=exit_code == 0, **kwargs)
    pods = [pod(result, exit_code)]
    outcome = job_outcome(job, pods, NOW)
    assert outcome is not None
    return records.delivery_record(report(), job, outcome, job_result(pods), Retention())


def delivered() -> RunResult:
    return RunResult(
        outcome="Delivered",
        scheduled_time="2026-12-01T08:00:00Z",
        window_start="2026-11-23T00:00:00Z",
        window_end="2026-11-30T00:00:00Z",
        recipients_accepted=2,
        recipients_rejected=1,
        bytes=48_000,
        renderer="pdf",
        error="not delivered to: ops@example.com: 550 no such user",
        message_id="<tidings.abc@example.com>",
        attempts=1,
        rows=14,
        pages=2,
        attachments=[{"name": "r.pdf", "bytes": 30_000, "sha256": "a" * 64}],
        addresses=sort_addresses(
            {"to": TO, "bcc": BCC}, ["lead@example.com", *BCC], {"ops@example.com": "550 no"}
        ),
    )


def test_a_delivered_run_makes_a_record_with_every_field() -> None:
    record = record_for(delivered())
    meta, spec = record["metadata"], record["spec"]
    assert meta["name"] == "payments-weekly-29412345-0a1b2c3d"
    assert meta["namespace"] == "payments"
    assert "ownerReferences" not in meta  # outlives the report
    assert meta["labels"]["tidings.dev/report"] == "payments-weekly"
    assert meta["labels"]["tidings.dev/report-uid"] == "report-uid-1"
    assert spec["report"] == {
        "name": "payments-weekly",
        "uid": "report-uid-1",
        "title": "Payments weekly",
        "type": "changes_summary",
    }
    assert (spec["trigger"], spec["outcome"], spec["messageId"]) == (
        "Schedule",
        "Delivered",
        "<tidings.abc@example.com>",
    )
    assert spec["window"] == "2026-11-23..2026-11-30"
    assert (spec["startedAt"], spec["finishedAt"]) == (
        "2026-12-01T08:59:00Z",
        "2026-12-01T09:00:00Z",
    )
    assert spec["recipients"]["to"] == {
        "intended": [],  # this Job carries no snapshot
        "accepted": ["lead@example.com"],
        "refused": [{"address": "ops@example.com", "reply": "550 no"}],
    }
    assert spec["recipients"]["bcc"] == {"intended": [], "accepted": BCC, "refused": []}
    assert (spec["recipients"]["accepted"], spec["recipients"]["refused"]) == (2, 1)
    assert spec["attachments"] == [{"name": "r.pdf", "bytes": 30_000, "sha256": "a" * 64}]
    assert (spec["rows"], spec["pages"], spec["bytes"], spec["renderer"]) == (14, 2, 48_000, "pdf")
    assert (spec["attempts"], spec["retentionDays"]) == (1, 90)
    assert "failure" not in spec


def test_a_failed_run_records_the_failure_class_and_who_was_refused() -> None:
    everyone_refused = RunResult(
        outcome="Failed",
        failure="permanent",
        error="every recipient was refused: ...",
        message_id="<tidings.abc@example.com>",
        recipients_rejected=3,
        attempts=1,
        addresses=sort_addresses({"to": TO, "bcc": BCC}, [], dict.fromkeys(TO + BCC, "550 no")),
        exit_code=69,
    )
    record = record_for(everyone_refused, exit_code=69, run_now=True)
    spec = record["spec"]
    assert (spec["outcome"], spec["failure"], spec["trigger"]) == ("Failed", "permanent", "RunNow")
    assert (spec["recipients"]["accepted"], spec["recipients"]["refused"]) == (0, 3)
    assert [r["address"] for r in spec["recipients"]["bcc"]["refused"]] == BCC
    assert spec["messageId"] == "<tidings.abc@example.com>"


def test_the_history_entry_carries_the_message_id_and_all_refused() -> None:
    result = RunResult(
        outcome="Failed", failure="permanent", recipients_rejected=3, message_id="<m@x>"
    )
    outcome = job_outcome(finished_job(complete=False), [pod(result, 69)], NOW)
    assert outcome is not None
    entry = outcome.history_entry()
    assert (entry["messageId"], entry["recipientsRejected"]) == ("<m@x>", 3)


def test_report_label_is_the_name_or_a_prefix_and_hash() -> None:
    assert records.report_label("a" * 63) == "a" * 63
    long_name = "quarterly." + "x" * 200
    value = records.report_label(long_name)
    assert len(value) <= 63
    assert value == "quarterly.xxxxxxxxxxxx-" + hashlib.sha256(long_name.encode()).hexdigest()[:40]
    assert records.report_label(long_name + "y") != value


def test_retention_days_is_the_reports_setting_capped_by_the_maximum() -> None:
    rules = Retention(default_days=90, max_days=365, per_report=10)
    assert records.retention_days(report(), rules) == 90
    assert records.retention_days(report(retentionDays=7), rules) == 7
    assert records.retention_days(report(retentionDays=3000), rules) == 365


def stored(name: str, finished: datetime, days: int = 90, uid: str = "u1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "payments",
            "creationTimestamp": rfc3339(finished),
            "labels": {"tidings.dev/report-uid": uid},
        },
        "spec": {"finishedAt": rfc3339(finished), "retentionDays": days},
    }


@pytest.mark.parametrize(
    ("age", "days", "gone"),
    [
        (timedelta(days=89, hours=23), 90, False),
        (timedelta(days=90), 90, True),
        (timedelta(days=8), 7, True),
        (timedelta(days=400), 3650, True),  # the platform maximum (365) wins
        (timedelta(days=364), 3650, False),
    ],
)
def test_expired_by_age_with_the_clock_injected(age: timedelta, days: int, gone: bool) -> None:
    record = stored("r", NOW - age, days)
    assert (records.expired([record], NOW, Retention()) == [record]) is gone


def test_expired_keeps_only_the_newest_records_per_report() -> None:
    mine = [stored(f"mine-{i}", NOW - timedelta(hours=i)) for i in range(5)]
    other = [stored(f"other-{i}", NOW - timedelta(hours=i), uid="u2") for i in range(2)]
    doomed = records.expired(mine + other, NOW, Retention(per_report=3))
    assert [r["metadata"]["name"] for r in doomed] == ["mine-4", "mine-3"]


def test_window_text() -> None:
    assert records.window_text("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z") == (
        "2026-11-23..2026-11-30"
    )
    assert records.window_text("2026-11-30T07:00:00Z", "2026-12-01T07:00:00Z") == (
        "2026-11-30T07:00Z..2026-12-01T07:00Z"
    )
    assert records.window_text(None, "2026-11-30T00:00:00Z") == ""
