"""Test sends, pure parts: when a test Job starts, what it looks like, and how its outcome is
recorded (nothing but the log and an Event)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tests.support.job_outcomes import RESULT, job_body, pod_body, record_outcome, simple_outcome
from tests.support.report_bodies import condition, report_body, with_status

from tidings import contract
from tidings.controller import cronjob, permissions, run_outcome, testsend
from tidings.controller.settings import Settings

NOW = datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
CRONJOB = {
    **cronjob.desired_cronjob(report_body(), Settings(), suspend=True),
}
CRONJOB["metadata"] = {**CRONJOB["metadata"], "uid": "cj-uid"}


def test_once_per_value_and_again_after_the_annotation_goes() -> None:
    annotations = {testsend.ANNOTATION: " me@example.com "}
    fields, address, refused = testsend.decide(annotations, {}, valid=True)
    assert (address, refused) == ("me@example.com", None)
    assert fields == {"testSendHandled": contract.digest("me@example.com"), "testSendCount": 1}
    assert testsend.decide(annotations, fields, valid=True) == ({}, None, None)
    # Removed: the record is cleared, so the same address can be tested again.
    cleared, address, _ = testsend.decide({}, fields, valid=True)
    assert (cleared, address) == ({"testSendHandled": None}, None)
    again, address, _ = testsend.decide(annotations, {**fields, **cleared}, valid=True)
    assert (again["testSendCount"], address) == (2, "me@example.com")


def test_refused_for_an_invalid_spec_or_a_bad_address() -> None:
    fields, address, refused = testsend.decide({testsend.ANNOTATION: "a@b.example"}, {}, False)
    assert (address, refused, fields) == (
        None,
        "the spec is invalid",
        {"testSendHandled": contract.digest("a@b.example")},
    )
    _, address, refused = testsend.decide({testsend.ANNOTATION: "A <a@example.com>"}, {}, True)
    assert address is None and refused.startswith(f"{testsend.ANNOTATION_PATH} must be a bare")


def test_the_job_goes_to_the_address_only_and_is_named_per_count() -> None:
    job = testsend.test_job(CRONJOB, "me@example.com", 3, NOW)
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env[testsend.RECIPIENT_ENV] == "me@example.com"
    assert env["TIDINGS_SCHEDULED_TIME"] == "2025-03-31T07:00:00Z"
    assert job["metadata"]["annotations"][testsend.ANNOTATION] == "me@example.com"
    assert job["metadata"]["labels"] == CRONJOB["spec"]["jobTemplate"]["metadata"]["labels"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "cj-uid"
    name = job["metadata"]["name"]
    assert name == testsend.test_job(CRONJOB, "me@example.com", 3, NOW)["metadata"]["name"]
    assert name != testsend.test_job(CRONJOB, "me@example.com", 4, NOW)["metadata"]["name"]
    assert testsend.recipient_of(job) == "me@example.com"
    assert testsend.recipient_of(CRONJOB["spec"]["jobTemplate"]) is None


def test_a_test_outcome_touches_nothing_but_the_log() -> None:
    report = with_status(report_body(), phase="Disabled", observedGeneration=1)
    record_outcome(report, simple_outcome("r-1", True, "2025-03-20T07:00:00Z"))
    record_outcome(report, simple_outcome("r-2", False, "2025-03-21T07:00:00Z", error="451 busy"))
    report["status"]["phase"] = "Disabled"
    before = json.loads(json.dumps(report["status"]))
    job = job_body("weekly-tabc", "Failed", reason="PodFailurePolicy")
    job["metadata"]["annotations"][testsend.ANNOTATION] = "me@example.com"
    failed = {**RESULT, "outcome": "Failed", "failure": "permanent", "error": "550 no such user"}
    outcome = run_outcome.job_outcome(
        job, [pod_body(69, json.dumps(failed), "2025-03-31T07:02:00Z")], NOW
    )
    change = record_outcome(report, outcome)
    status = report["status"]
    entry = status["history"][0]
    assert (entry["jobName"], entry["testRecipient"], entry["outcome"]) == (
        "weekly-tabc",
        "me@example.com",
        "Failed",
    )
    for key in ("phase", "lastSentAt", "lastAttemptAt", "lastError", "consecutiveFailures"):
        assert status.get(key) == before.get(key), key
    assert condition(status, "Delivered") == condition(before, "Delivered")
    assert [(e.type, e.reason) for e in change.events] == [("Warning", "TestFailed")]
    assert "me@example.com" in change.events[0].message
    # A later real run ignores the test entry: the success resets only real failures.
    report["status"]["phase"] = "Active"
    record_outcome(report, simple_outcome("r-3", True, "2025-03-31T08:00:00Z"))
    assert report["status"]["consecutiveFailures"] == 0
    assert report["status"]["lastSentAt"] == "2025-03-31T08:00:00Z"


def test_a_delivered_test_is_a_normal_event() -> None:
    report = with_status(report_body(), phase="Active")
    job = job_body("weekly-tdef", "Complete")
    job["metadata"]["annotations"][testsend.ANNOTATION] = "me@example.com"
    outcome = run_outcome.job_outcome(job, [pod_body(0, json.dumps(RESULT))], NOW)
    change = record_outcome(report, outcome)
    assert [(e.type, e.reason) for e in change.events] == [("Normal", "TestSent")]
    assert "lastSentAt" not in report["status"]


def test_external_test_addresses_need_schedule() -> None:
    assert permissions.test_send_needs("me@example.com", ("example.com",)) == []
    assert permissions.test_send_needs("me@gmail.com", ()) == []  # no domains: all internal
    assert permissions.test_send_needs(None, ("example.com",)) == []
    (need,) = permissions.test_send_needs("me@gmail.com", ("example.com",))
    assert need.path == "metadata.annotations[tidings.dev/send-test]"
    assert 'external address "me@gmail.com"' in need.change
