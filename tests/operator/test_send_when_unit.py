"""sendWhen mode changed in the operator, pure: the result line's rowsDigest goes into the
ReportDelivery record and (for a delivered run) status.lastRowsDigest, and from there into the
CronJob's pod env, for that mode only; a malformed digest from a pod is never stored."""

from __future__ import annotations

import dataclasses

from tests.support.job_outcomes import NOW, finished_run, record_outcome, simple_outcome
from tests.support.report_bodies import report_body, with_status

from tidings.contract import LAST_ROWS_DIGEST_ENV
from tidings.controller import cronjob, records
from tidings.controller.records import Retention
from tidings.controller.run_outcome import job_outcome, job_result
from tidings.controller.settings import Settings
from tidings.sendwhen import rows_digest

SETTINGS = Settings(smtp_host="relay.mail.svc", smtp_from="reports@example.com")
DIGEST = rows_digest([{"id": 1}])
OTHER = rows_digest([{"id": 2}])


def env_of(report: dict) -> dict[str, str]:
    cj = cronjob.desired_cronjob(report, SETTINGS, suspend=False)
    (container,) = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_only_mode_changed_gets_the_last_digest_in_its_pod() -> None:
    changed = with_status(
        report_body(delivery={"sendWhen": {"mode": "changed"}}), lastRowsDigest=DIGEST
    )
    assert env_of(changed)[LAST_ROWS_DIGEST_ENV] == DIGEST
    for delivery in ({}, {"sendWhen": {"mode": "always"}}, {"skipIfEmpty": True}):
        other = with_status(report_body(delivery=delivery), lastRowsDigest=DIGEST)
        assert LAST_ROWS_DIGEST_ENV not in env_of(other)  # a delivery does not touch it
    never_sent = report_body(delivery={"sendWhen": {"mode": "changed"}})
    assert LAST_ROWS_DIGEST_ENV not in env_of(never_sent)  # no earlier record: the run sends
    tampered = with_status(
        report_body(delivery={"sendWhen": {"mode": "changed"}}), lastRowsDigest="x\n- y"
    )
    assert LAST_ROWS_DIGEST_ENV not in env_of(tampered)


def test_the_record_and_status_keep_a_delivered_runs_digest() -> None:
    job, pods = finished_run(
        {"outcome": "Delivered", "recipientsAccepted": 1, "rowsDigest": DIGEST}
    )
    outcome = job_outcome(job, pods, NOW)
    assert outcome is not None and outcome.rows_digest == DIGEST
    report = report_body(delivery={"sendWhen": {"mode": "changed"}})
    record = records.delivery_record(report, job, outcome, job_result(pods), Retention())
    assert record["spec"]["rowsDigest"] == DIGEST
    status_report = with_status(report, phase="Active", observedGeneration=1)
    record_outcome(status_report, outcome)
    assert status_report["status"]["lastRowsDigest"] == DIGEST


def test_a_skipped_or_failed_run_does_not_move_the_last_digest() -> None:
    report = with_status(report_body(), phase="Active", observedGeneration=1, lastRowsDigest=DIGEST)
    sent = dataclasses.replace(
        simple_outcome("r-1", True, "2025-03-20T07:00:00Z"), rows_digest=DIGEST
    )
    record_outcome(report, sent)
    skipped = dataclasses.replace(
        simple_outcome("r-2", True, "2025-03-21T07:00:00Z"), skipped=True, rows_digest=OTHER
    )
    failed = dataclasses.replace(
        simple_outcome("r-3", False, "2025-03-22T07:00:00Z"), rows_digest=OTHER
    )
    for outcome in (skipped, failed):
        record_outcome(report, outcome)
        assert report["status"]["lastRowsDigest"] == DIGEST


def test_an_older_delivery_seen_late_does_not_replace_a_newer_digest() -> None:
    report = with_status(report_body(), phase="Active", observedGeneration=1)
    newer = dataclasses.replace(
        simple_outcome("r-2", True, "2025-03-21T07:00:00Z"), rows_digest=OTHER
    )
    older = dataclasses.replace(
        simple_outcome("r-1", True, "2025-03-20T07:00:00Z"), rows_digest=DIGEST
    )
    record_outcome(report, newer)
    record_outcome(report, older)
    assert report["status"]["lastRowsDigest"] == OTHER


def test_a_malformed_digest_from_a_pod_is_not_stored() -> None:
    job, pods = finished_run(
        {"outcome": "Delivered", "recipientsAccepted": 1, "rowsDigest": "nope"}
    )
    outcome = job_outcome(job, pods, NOW)
    assert outcome is not None and outcome.delivered and outcome.rows_digest is None
    record = records.delivery_record(report_body(), job, outcome, job_result(pods), Retention())
    assert "rowsDigest" not in record["spec"]
