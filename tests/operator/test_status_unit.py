"""Status decisions: phases, reactivation, run-now bookkeeping and Job outcomes, counted once."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from tests.support.job_outcomes import (
    NOW,
    RESULT,
    job_body,
    pod_body,
    record_outcome,
    simple_outcome,
)
from tests.support.report_bodies import condition, report_body, with_status

from tidings import contract
from tidings.contract import digest
from tidings.controller import run_outcome
from tidings.controller import status as st
from tidings.schedule import next_fire_time


def _reconciled(report: dict, problems: tuple[str, ...] = ()) -> st.Reconciliation:
    return st.reconcile(report, problems, NOW, next_fire_time)


# --------------------------------------------------------------------------------- reconcile


def test_active_report_next_send_at_crosses_dst_in_its_zone() -> None:
    result = _reconciled(report_body(schedule="0 9 * * *"))
    assert result.phase == "Active"
    # Sunday 30 March 09:00 in Berlin is already summer time (UTC+2): 07:00Z, not 08:00Z.
    assert result.change.status["nextSendAt"] == "2025-03-30T07:00:00Z"
    ready = condition(result.change.status, "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "True",
        "Scheduled",
        1,
    )
    assert result.change.status["observedGeneration"] == 1
    assert result.run_now is None


def test_phases_for_manual_paused_and_invalid() -> None:
    manual = _reconciled(report_body(schedule=""))
    assert (manual.phase, manual.change.status["nextSendAt"]) == ("Manual", None)
    paused = _reconciled(report_body(suspend=True))
    assert paused.phase == "Paused"
    assert condition(paused.change.status, "Ready")["reason"] == "Paused"
    assert [e.reason for e in paused.change.events] == ["Paused"]
    invalid = _reconciled(report_body(), ("spec.schedule: not a cron expression",))
    assert invalid.phase == "Invalid"
    ready = condition(invalid.change.status, "Ready")
    assert (ready["status"], ready["message"]) == ("False", "spec.schedule: not a cron expression")
    assert invalid.change.events[0].type == "Warning"


def test_resuming_recomputes_next_send_at_and_says_so() -> None:
    report = with_status(report_body(), phase="Paused", observedGeneration=1)
    result = _reconciled(report)
    assert result.phase == "Active"
    assert result.change.status["nextSendAt"] == "2025-03-31T07:00:00Z"  # Monday 09:00 CEST
    assert [e.reason for e in result.change.events] == ["Resumed"]


def test_disabled_sticks_until_the_spec_changes() -> None:
    report = with_status(
        report_body(), phase="Disabled", observedGeneration=1, consecutiveFailures=3
    )
    assert _reconciled(report).phase == "Disabled"
    assert _reconciled(report).change.status["nextSendAt"] is None
    report["metadata"]["generation"] = 2
    result = _reconciled(report)
    assert result.phase == "Active"
    assert result.change.status["consecutiveFailures"] == 0
    assert [e.reason for e in result.change.events] == ["Reactivated"]


def test_reactivate_annotation_acts_once_per_value() -> None:
    report = with_status(
        report_body(), phase="Disabled", observedGeneration=1, consecutiveFailures=3
    )
    report["metadata"]["annotations"]["tidings.dev/reactivate"] = "monday"
    result = _reconciled(report)
    assert result.phase == "Active"
    assert result.change.status["reactivateHandled"] == digest("monday")
    # Disabled again later: the same annotation value must not reactivate it a second time.
    report["status"].update(phase="Disabled", reactivateHandled=digest("monday"))
    assert _reconciled(report).phase == "Disabled"


def test_values_recorded_before_digests_are_not_acted_on_again() -> None:
    """An operator upgraded from one that kept the values themselves must not rerun them."""
    report = with_status(report_body(), phase="Disabled", observedGeneration=1)
    report["metadata"]["annotations"].update(
        {"tidings.dev/run-now": "v1", "tidings.dev/reactivate": "monday"}
    )
    report["status"].update(runNowHandled="v1", reactivateHandled="monday")
    result = _reconciled(report)
    assert (result.run_now, result.phase) == (None, "Disabled")


def test_a_long_reactivate_value_acts_once() -> None:
    value = "r" * 300
    report = with_status(report_body(), phase="Disabled", observedGeneration=1)
    report["metadata"]["annotations"]["tidings.dev/reactivate"] = value
    handled = _reconciled(report).change.status["reactivateHandled"]
    report["status"].update(phase="Disabled", reactivateHandled=handled)
    assert _reconciled(report).phase == "Disabled"


def test_run_now_once_per_value_and_never_for_invalid() -> None:
    report = report_body()
    report["metadata"]["annotations"]["tidings.dev/run-now"] = "v1"
    result = _reconciled(report)
    assert (result.run_now, result.change.status["runNowHandled"]) == ("v1", digest("v1"))
    report["status"] = {"runNowHandled": digest("v1")}
    assert _reconciled(report).run_now is None
    report["metadata"]["annotations"]["tidings.dev/run-now"] = "v2"
    refused = _reconciled(report, ("spec.recipients: at least one",))
    assert refused.run_now is None
    assert refused.change.status["runNowHandled"] == digest("v2")
    assert [e.reason for e in refused.change.events] == ["InvalidSpec", "RunNowRefused"]


def test_run_now_waits_while_a_run_is_going() -> None:
    report = report_body()
    report["metadata"]["annotations"]["tidings.dev/run-now"] = "v" * 300
    waiting = st.reconcile(report, (), NOW, next_fire_time, busy=True)
    assert waiting.run_now is None
    assert "runNowHandled" not in waiting.change.status
    assert st.reconcile(report, (), NOW, next_fire_time, busy=False).run_now == "v" * 300


def test_ready_transition_time_moves_only_when_status_flips() -> None:
    first = _reconciled(report_body()).change.status
    later = datetime(2025, 4, 1, tzinfo=UTC)
    report = with_status(report_body(), **first)
    again = st.reconcile(report, (), later, next_fire_time).change.status
    assert condition(again, "Ready")["lastTransitionTime"] == "2025-03-29T12:00:00Z"
    report = with_status(report_body(suspend=True), **first)
    paused = st.reconcile(report, (), later, next_fire_time).change.status
    assert condition(paused, "Ready")["lastTransitionTime"] == "2025-04-01T00:00:00Z"


# ------------------------------------------------------------------------------ job outcomes


def test_running_job_has_no_outcome() -> None:
    assert run_outcome.job_outcome(job_body("r-1", None), [], NOW) is None


def test_delivered_job_reads_the_termination_message() -> None:
    outcome = run_outcome.job_outcome(
        job_body("r-1", "Complete"), [pod_body(0, json.dumps(RESULT))], NOW
    )
    assert outcome is not None and outcome.delivered
    entry = outcome.history_entry()
    assert entry == {
        "jobName": "r-1",
        "scheduledTime": "2025-03-31T07:00:00Z",
        "windowStart": "2025-03-24T08:00:00Z",
        "windowEnd": "2025-03-31T07:00:00Z",
        "finishedAt": "2025-03-31T07:02:00Z",
        "outcome": "Delivered",
        "recipientsAccepted": 3,
        "recipientsRejected": 1,
        "bytes": 48213,
        "renderer": "pdf",
        "error": "",
        "messageId": "<x@tidings>",  # to look up in the relay's log
    }


def test_failures_are_classified() -> None:
    permanent = {**RESULT, "outcome": "Failed", "failure": "permanent", "error": "550 no such user"}
    job = job_body("r-2", "Failed", reason="PodFailurePolicy")
    outcome = run_outcome.job_outcome(job, [pod_body(69, json.dumps(permanent))], NOW)
    assert (outcome.failure, outcome.error) == ("permanent", "550 no such user")

    job = job_body("r-3", "Failed", reason="DeadlineExceeded")
    outcome = run_outcome.job_outcome(job, [], NOW)
    assert outcome.failure == "timeout" and "600s" in outcome.error
    assert outcome.scheduled_time == "2025-03-31T07:00:00Z"  # from the CronJob's annotation
    assert outcome.finished_at == "2025-03-31T07:03:00Z"

    job = job_body("r-4", "Failed", reason="BackoffLimitExceeded", failed=3)
    crashed = run_outcome.job_outcome(job, [pod_body(1, "Traceback ...\nKeyError: 'x'")], NOW)
    assert crashed.failure == "transient"
    assert crashed.error == (
        "no result line (the renderer exited with code 1): Traceback ...\nKeyError: 'x' "
        "(after 3 attempts)"
    )

    bare = run_outcome.job_outcome(job_body("r-5", "Failed"), [pod_body(137, "")], NOW)
    assert bare.error == "no result line (the renderer exited with code 137)"


def test_a_partial_delivery_names_who_is_missing_in_status() -> None:
    note = "partially delivered to 2 of 3; not delivered to: b@example.com: 451 4.3.0 busy"
    result = {**RESULT, "recipientsAccepted": 2, "error": note}
    outcome = run_outcome.job_outcome(
        job_body("r-6", "Complete"), [pod_body(0, json.dumps(result))], NOW
    )
    assert outcome.delivered and outcome.history_entry()["error"] == note
    report = with_status(report_body(), phase="Active")
    change = record_outcome(report, outcome)
    delivered = condition(report["status"], "Delivered")
    assert (delivered["status"], delivered["reason"]) == ("True", "PartiallyDelivered")
    assert note in delivered["message"]
    assert [(e.type, e.reason) for e in change.events] == [("Warning", "Delivered")]


def test_three_failures_disable_and_success_resets() -> None:
    report = with_status(report_body(), phase="Active", observedGeneration=1)
    for i in (1, 2):
        change = record_outcome(report, simple_outcome(f"r-{i}", False, f"2025-03-2{i}T07:00:00Z"))
        assert change.phase is None
        assert [e.reason for e in change.events] == ["RunFailed"]
    assert report["status"]["consecutiveFailures"] == 2
    assert report["status"]["lastError"] == "boom"
    assert condition(report["status"], "Delivered")["reason"] == "TransientFailure"

    change = record_outcome(report, simple_outcome("r-3", False, "2025-03-23T07:00:00Z"))
    assert change.phase == "Disabled"
    assert [e.reason for e in change.events] == ["RunFailed", "Disabled"]
    assert "tidings.dev/reactivate" in change.events[-1].message
    assert report["status"]["nextSendAt"] is None
    assert condition(report["status"], "Ready")["reason"] == "Disabled"

    report["status"]["phase"] = "Active"
    record_outcome(report, simple_outcome("r-4", True, "2025-03-24T07:00:00Z"))
    status = report["status"]
    assert (status["consecutiveFailures"], status["lastError"]) == (0, "")
    assert status["lastSentAt"] == status["lastAttemptAt"] == "2025-03-24T07:00:00Z"
    assert [h["jobName"] for h in status["history"]] == ["r-4", "r-3", "r-2", "r-1"]
    assert status["nextSendAt"] == "2025-03-31T07:00:00Z"


def test_a_job_is_counted_once() -> None:
    report = with_status(report_body(), phase="Active")
    assert record_outcome(report, simple_outcome("r-1", False, "2025-03-21T07:00:00Z")) is not None
    assert record_outcome(report, simple_outcome("r-1", False, "2025-03-21T07:00:00Z")) is None
    assert report["status"]["consecutiveFailures"] == 1


def test_counted_uids_outlive_the_history() -> None:
    """A Job that finished long ago never enters the 20-entry history, yet counts once."""
    report = with_status(report_body(), phase="Active")
    for week in range(20):
        record_outcome(
            report, simple_outcome(f"new-{week}", True, f"2025-03-{week + 1:02d}T07:00:00Z")
        )
    old = dataclasses.replace(
        simple_outcome("old", False, "2025-01-01T07:00:00Z"), job_uid="uid-old"
    )
    assert record_outcome(report, old) is not None
    assert "old" not in {h["jobName"] for h in report["status"]["history"]}
    assert record_outcome(report, old) is None
    assert report["status"]["countedJobs"][0] == "uid-old"


def test_out_of_order_arrival_follows_finish_times() -> None:
    report = with_status(report_body(), phase="Active")
    record_outcome(
        report, simple_outcome("late-fail", False, "2025-03-22T07:00:00Z", error="newest")
    )
    record_outcome(report, simple_outcome("early-ok", True, "2025-03-21T07:00:00Z"))
    status = report["status"]
    assert status["consecutiveFailures"] == 1  # the failure came after the success
    assert status["lastError"] == "newest"
    assert status["lastSentAt"] == "2025-03-21T07:00:00Z"
    assert status["lastAttemptAt"] == "2025-03-22T07:00:00Z"
    assert condition(status, "Delivered")["status"] == "False"


def test_history_is_bounded_newest_first() -> None:
    report = with_status(report_body(), phase="Active")
    for i in range(25):
        record_outcome(report, simple_outcome(f"r-{i:02d}", True, f"2025-03-01T07:{i:02d}:00Z"))
    names = [h["jobName"] for h in report["status"]["history"]]
    assert len(names) == 20 and names[0] == "r-24" and names[-1] == "r-05"


def test_termination_message_takes_the_last_json_line() -> None:
    line = contract.result_from_message('warning: x\n{"outcome": "Delivered"}\n')
    assert line == contract.ResultLine(outcome="Delivered")
    assert contract.result_from_message("no json here") is None
    assert contract.result_from_message(None) is None


def test_runs_finishing_in_the_same_second_follow_their_scheduled_order() -> None:
    # Finish times have second resolution: a success and a later-scheduled failure can share one.
    same_second = "2025-03-31T07:05:00Z"
    success = run_outcome.RunOutcome(
        "r-1", True, None, same_second, scheduled_time="2025-03-24T07:00:00Z"
    )
    failure = run_outcome.RunOutcome(
        "r-2", False, "transient", same_second, "relay down", "2025-03-31T07:00:00Z"
    )
    for order in ((success, failure), (failure, success)):
        report = with_status(report_body(), phase="Active")
        for outcome in order:
            record_outcome(report, outcome)
        status = report["status"]
        assert (status["consecutiveFailures"], status["lastError"]) == (1, "relay down")
        assert [h["jobName"] for h in status["history"]] == ["r-2", "r-1"]
        assert condition(status, "Delivered")["status"] == "False"


def test_a_skipped_run_is_neither_a_delivery_nor_a_failure() -> None:
    report = with_status(report_body(), phase="Active", observedGeneration=1)
    record_outcome(report, simple_outcome("r-1", True, "2025-03-20T07:00:00Z"))
    record_outcome(report, simple_outcome("r-2", False, "2025-03-21T07:00:00Z", error="451 busy"))
    skipped = {
        **RESULT,
        "outcome": "Skipped",
        "recipientsAccepted": 0,
        "recipientsRejected": 0,
        "bytes": 0,
        "renderer": None,
        "error": "nothing sent: No rows in this window. (spec.delivery.skipIfEmpty)",
    }
    job = job_body("r-3", "Complete")
    pod = pod_body(0, json.dumps(skipped), finished="2025-03-31T07:02:00Z")
    outcome = run_outcome.job_outcome(job, [pod], NOW)
    assert outcome is not None and outcome.skipped
    before = dict(report["status"])
    change = record_outcome(report, outcome)
    status = report["status"]
    # The failure counter is not reset (a skip proves nothing about delivery), not raised, and
    # lastSentAt stays at the last real delivery; the attempt and the log entry are recorded.
    assert status["consecutiveFailures"] == before["consecutiveFailures"] == 1
    assert status["lastSentAt"] == before["lastSentAt"] == "2025-03-20T07:00:00Z"
    assert status["lastError"] == "451 busy"
    assert status["lastAttemptAt"] == "2025-03-31T07:02:00Z"
    assert status["history"][0]["outcome"] == "Skipped"
    assert status["history"][0]["jobName"] == "r-3"
    assert condition(status, "Delivered") == condition(before, "Delivered")
    assert [(e.type, e.reason) for e in change.events] == [("Normal", "Skipped")]
    assert "skipIfEmpty" in change.events[0].message


# ------------------------------------------------------------------------------ stuck runs


def test_a_pod_waiting_on_its_image_gives_its_own_reason() -> None:
    job = {"metadata": {"name": "r-1"}, "status": {}}
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}
    pod = {
        "metadata": {"creationTimestamp": "2025-03-31T07:00:05Z"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"name": "renderer", "state": {"waiting": waiting}}],
        },
    }
    reason = run_outcome.not_started_reason(job, [pod])
    assert reason == 'ImagePullBackOff: Back-off pulling image "x"'
    unscheduled = {
        "metadata": {},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        },
    }
    assert run_outcome.not_started_reason(job, [unscheduled]).startswith("Unschedulable")
    assert run_outcome.not_started_reason(job, []).startswith("NoPod")
    running = {"metadata": {}, "status": {"phase": "Running"}}
    assert run_outcome.not_started_reason(job, [running]) is None
    change = st.run_not_started(report_body(), "r-1", reason, 120, NOW)
    delivered = condition(change.status, "Delivered")
    assert (delivered["status"], delivered["reason"]) == ("Unknown", "RunNotStarted")
    assert "ImagePullBackOff" in delivered["message"]
    assert [(e.type, e.reason) for e in change.events] == [("Warning", "RunNotStarted")]


def test_a_run_that_never_started_fails_with_that_reason() -> None:
    job = job_body("r-1", "Failed", reason="DeadlineExceeded")
    job["metadata"]["annotations"]["tidings.dev/not-started"] = "ImagePullBackOff: no such image"
    outcome = run_outcome.job_outcome(job, [], NOW)
    assert outcome.failure == "notStarted"
    assert outcome.error == "the run never started: ImagePullBackOff: no such image"
    change = st.apply_outcome(
        with_status(report_body(), phase="Active"), outcome, NOW, next_fire_time
    )
    assert condition(change.status, "Delivered")["reason"] == "RunNotStarted"
