"""ReportDelivery records say what happened (issue 20): a skip is Skipped, a test send has
trigger Test, every record names whom the run was for (to/cc/bcc of the spec its Job carried),
and a run without a usable result line is a Failed record saying why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tidings import contract
from tidings.controller import records
from tidings.controller.records import Retention
from tidings.controller.run_outcome import job_outcome, job_result
from tidings.renderer.result import RunResult
from tidings.snapshot import report_snapshot

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RECIPIENTS = {"to": ["lead@example.com"], "cc": ["@finance"], "bcc": ["archive@example.com"]}
REPORT: dict[str, Any] = {
    "metadata": {"name": "weekly", "namespace": "payments", "uid": "report-uid-1"},
    "spec": {"title": "Weekly", "reportType": "changes_summary", "recipients": RECIPIENTS},
}


def job(complete: bool, test_address: str = "") -> dict[str, Any]:
    annotations = {contract.TEST_SEND_ANNOTATION: test_address} if test_address else {}
    snapshot = {contract.SNAPSHOT_ANNOTATION: report_snapshot(REPORT)}
    return {
        "metadata": {
            "name": "weekly-29412345",
            "namespace": "payments",
            "uid": "0a1b2c3d-aaaa",
            "annotations": annotations,
            "labels": {contract.REPORT_UID_LABEL: "report-uid-1"},
        },
        "spec": {"template": {"metadata": {"annotations": snapshot}}},
        "status": {
            "conditions": [{"type": "Complete" if complete else "Failed", "status": "True"}]
        },
    }


def pod(exit_code: int, message: str, reason: str = "") -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "finishedAt": "2026-12-01T09:00:00Z", "message": message}
    if reason:
        terminated["reason"] = reason
    return {
        "status": {"containerStatuses": [{"name": "renderer", "state": {"terminated": terminated}}]}
    }


def record(the_job: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    outcome = job_outcome(the_job, pods, NOW)
    assert outcome is not None
    return records.delivery_record(REPORT, the_job, outcome, job_result(pods), Retention())["spec"]


def intended(spec: dict[str, Any]) -> dict[str, list[str]]:
    return {name: spec["recipients"][name]["intended"] for name in ("to", "cc", "bcc")}


def test_a_skipped_run_is_recorded_skipped_with_whom_it_was_for() -> None:
    skipped = RunResult(outcome="Skipped", error="skipIfEmpty: no rows in the window")
    spec = record(job(True), [pod(0, skipped.to_json())])
    assert spec["outcome"] == "Skipped"
    assert intended(spec) == RECIPIENTS


def test_a_test_send_has_trigger_test_and_names_only_its_address() -> None:
    sent = RunResult(outcome="Delivered", recipients_accepted=1)
    spec = record(job(True, "tester@example.com"), [pod(0, sent.to_json())])
    assert spec["trigger"] == "Test"
    assert intended(spec) == {"to": ["tester@example.com"], "cc": [], "bcc": []}


def test_a_pod_killed_before_its_result_line_is_one_failed_record_naming_the_recipients() -> None:
    spec = record(job(False), [pod(137, "", reason="OOMKilled")])
    assert (spec["outcome"], spec["failure"]) == ("Failed", "transient")
    assert spec["error"] == "no result line (pod killed: OOMKilled)"
    assert intended(spec) == RECIPIENTS


def test_a_malformed_line_is_a_failed_record_saying_so_even_with_exit_code_0() -> None:
    line = '{"outcome":"Delivered","attachments":[{"name":"r.pdf","bytes":1}]}'
    spec = record(job(True), [pod(0, line)])
    assert spec["outcome"] == "Failed"
    assert spec["error"].startswith("malformed result line: attachments.0.sha256")
    assert intended(spec) == RECIPIENTS


def test_a_completed_run_without_a_result_line_fails() -> None:
    spec = record(job(True), [pod(0, "")])
    assert (spec["outcome"], spec["error"]) == (
        "Failed",
        "no result line (the renderer exited with code 0)",
    )
