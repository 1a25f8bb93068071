"""Table tests of Job outcome counting (controller.job_outcomes.job_changed) against a fake Kube:
for each finished Job, what the report's status, its ReportDelivery record, its Events and the
Job itself become; a crash after each write, then the Job seen again, counts it once; a Job
seen twice counts once; a second writer's status change in between is kept."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.support.fake_kube import Crash, FakeKube

from tidings import contract, models
from tidings.controller import cronjob
from tidings.controller.job_outcomes import job_changed
from tidings.controller.kube import (
    cronjob_path,
    job_path,
    pods_path,
    report_path,
)
from tidings.controller.reconcile import sync_report
from tidings.controller.settings import Settings
from tidings.controller.state import OperatorState
from tidings.renderer.result import RunResult

NS = "team-payments"
NAME = "payments-weekly"
JOB = "payments-weekly-29412345"
SPEC: dict[str, Any] = {
    "title": "Payments weekly",
    "reportType": "changes_summary",
    "source": {"inline": {"rows": [{"id": 1, "status": "completed", "title": "Deploy"}]}},
    "schedule": "0 9 * * 1",
    "timeZone": "Europe/Berlin",
    "recipients": {"to": ["ciso@example.com"]},
    "failurePolicy": {"disableAfter": 3},
}
DELIVERED = RunResult(
    outcome="Delivered",
    scheduled_time="2026-11-30T08:00:00Z",
    window_start="2026-11-23T00:00:00Z",
    window_end="2026-11-30T00:00:00Z",
    recipients_accepted=1,
    bytes=48_000,
    renderer="pdf",
    message_id="<tidings.abc@example.com>",
    attempts=1,
    attachments=[{"name": "r.pdf", "bytes": 30_000, "sha256": "a" * 64}],
).to_json()
FAILED = RunResult(outcome="Failed", failure="transient", error="relay down", exit_code=75)


def new_state(kube: FakeKube) -> OperatorState:
    return OperatorState(settings=Settings(), kube=kube, instance="test")  # type: ignore[arg-type]


def reconciled(failures: int = 0) -> FakeKube:
    """A report reconciled once (CronJob and status), `failures` failed runs behind it."""
    kube = FakeKube()
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": NAME, "annotations": {}},
        "spec": copy.deepcopy(SPEC),
    }
    kube.put(report_path(NS), body)
    asyncio.run(sync_report(new_state(kube), NS, NAME))
    report(kube)["status"]["consecutiveFailures"] = failures
    kube.writes.clear()
    return kube


def finished_job(kube: FakeKube, complete: bool, message: str, exit_code: int) -> dict[str, Any]:
    """A Job of the report's CronJob, finished, held by our finalizer, with its pod."""
    template = kube.objects[cronjob_path(NS, cronjob.cronjob_name(NAME))]
    job = cronjob.job_from_template(
        template, JOB, {contract.SCHEDULED_TIMESTAMP_ANNOTATION: "2026-11-30T08:00:00Z"}
    )
    job["metadata"]["finalizers"] = [contract.FINALIZER]
    condition = "Complete" if complete else "Failed"
    job["status"] = {
        "startTime": "2026-11-30T08:00:05Z",
        "conditions": [{"type": condition, "status": "True"}],
    }
    if not complete:
        job["status"]["conditions"][0]["reason"] = "BackoffLimitExceeded"
    stored = kube.put(job_path(NS), job)
    terminated = {"exitCode": exit_code, "finishedAt": "2026-11-30T08:01:00Z", "message": message}
    labels = {
        contract.JOB_NAME_LABEL: JOB,
        contract.REPORT_UID_LABEL: report(kube)["metadata"]["uid"],
    }
    owner = {"kind": "Job", "name": JOB, "uid": stored["metadata"]["uid"], "controller": True}
    pod = {
        "metadata": {"name": f"{JOB}-abcde", "labels": labels, "ownerReferences": [owner]},
        "status": {
            "containerStatuses": [{"name": cronjob.CONTAINER, "state": {"terminated": terminated}}]
        },
    }
    kube.put(pods_path(NS), pod)
    return stored


def see(kube: FakeKube, job: dict[str, Any]) -> None:
    asyncio.run(job_changed(new_state(kube), "MODIFIED", copy.deepcopy(job)))


def report(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[report_path(NS, NAME)]


def job(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[job_path(NS, JOB)]


def reasons(kube: FakeKube) -> list[str]:
    return sorted(e["reason"] for e in kube.of_kind("events"))


def released(kube: FakeKube) -> bool:
    meta = job(kube)["metadata"]
    return contract.FINALIZER not in meta.get("finalizers", ()) and (
        meta["annotations"].get(contract.COUNTED_ANNOTATION) == "true"
    )


# --------------------------------------------------------------------------------- the table


@dataclass
class Case:
    name: str
    complete: bool
    message: str
    exit_code: int = 0
    failures_before: int = 0
    writes: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = "Delivered"
    failures: int = 0
    phase: str = "Active"
    events: list[str] = field(default_factory=list)
    attachments: int = 0


CASES = [
    Case(
        "a delivered run: record, Event, status, release",
        complete=True,
        message=DELIVERED,
        writes=[
            ("POST", "reportdeliveries"),
            ("POST", "events"),
            ("PATCH", "status"),
            ("PATCH", "jobs"),
        ],
        events=["Delivered"],
        attachments=1,
    ),
    Case(
        "a failed run counts one failure",
        complete=False,
        message=FAILED.to_json(),
        exit_code=75,
        writes=[
            ("POST", "reportdeliveries"),
            ("POST", "events"),
            ("PATCH", "status"),
            ("PATCH", "jobs"),
        ],
        outcome="Failed",
        failures=1,
        events=["RunFailed"],
    ),
    Case(
        "the failure at disableAfter disables the report and suspends its CronJob",
        complete=False,
        message=FAILED.to_json(),
        exit_code=75,
        failures_before=2,
        writes=[
            ("POST", "reportdeliveries"),
            ("POST", "events"),
            ("POST", "events"),
            ("PATCH", "status"),
            ("PATCH", "cronjobs"),
            ("PATCH", "jobs"),
        ],
        outcome="Failed",
        failures=3,
        phase="Disabled",
        events=["Disabled", "RunFailed"],
    ),
    Case(
        "a result line without an attachment's sha256 is malformed: one failure, released",
        complete=True,
        message='{"outcome":"Delivered","attachments":[{"name":"r.pdf","bytes":1}]}',
        writes=[
            ("POST", "reportdeliveries"),
            ("POST", "events"),
            ("PATCH", "status"),
            ("PATCH", "jobs"),
        ],
        outcome="Failed",
        failures=1,
        events=["RunFailed"],
    ),
    Case(
        "a pod that died before its result line: the log tail is the error",
        complete=False,
        message="Traceback (most recent call last):\nMemoryError",
        exit_code=1,
        writes=[
            ("POST", "reportdeliveries"),
            ("POST", "events"),
            ("PATCH", "status"),
            ("PATCH", "jobs"),
        ],
        outcome="Failed",
        failures=1,
        events=["RunFailed"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_finished_job(case: Case) -> None:
    kube = reconciled(case.failures_before)
    see(kube, finished_job(kube, case.complete, case.message, case.exit_code))
    assert kube.summary() == case.writes
    status = report(kube)["status"]
    assert [h["outcome"] for h in status["history"]] == [case.outcome]
    assert status["countedJobs"] == [job(kube)["metadata"]["uid"]]
    assert (status["consecutiveFailures"], status["phase"]) == (case.failures, case.phase)
    cronjob_spec = kube.objects[cronjob_path(NS, NAME)]["spec"]
    assert cronjob_spec["suspend"] is (case.phase == "Disabled")
    assert reasons(kube) == case.events
    [record] = kube.of_kind(models.DELIVERY_PLURAL)
    assert record["spec"]["outcome"] == case.outcome
    assert len(record["spec"]["attachments"]) == case.attachments
    assert released(kube)


def test_a_job_seen_twice_is_counted_once() -> None:
    kube = reconciled()
    seen = finished_job(kube, False, FAILED.to_json(), 75)
    see(kube, seen)
    kube.writes.clear()
    see(kube, seen)  # the same event again, with the Job as it was (a stale resourceVersion)
    assert set(kube.summary()) == {("PATCH", "jobs")}  # its uid is counted: only let go again
    kube.writes.clear()
    see(kube, job(kube))  # as it is now: its counted mark says it is done
    assert kube.summary() == []
    status = report(kube)["status"]
    assert (len(status["history"]), status["consecutiveFailures"]) == (1, 1)
    assert len(kube.of_kind(models.DELIVERY_PLURAL)) == 1
    assert reasons(kube) == ["RunFailed"]


def test_a_job_of_a_report_gone_is_let_go() -> None:
    kube = reconciled()
    seen = finished_job(kube, True, DELIVERED, 0)
    del kube.objects[report_path(NS, NAME)]
    see(kube, seen)
    assert kube.summary() == [("PATCH", "jobs")]
    assert released(kube) and kube.of_kind(models.DELIVERY_PLURAL) == []


def test_a_running_job_born_without_the_finalizer_is_held() -> None:
    kube = reconciled()
    finished_job(kube, True, DELIVERED, 0)
    job(kube)["status"] = {}  # not finished after all
    job(kube)["metadata"]["finalizers"] = []
    running = job(kube)
    state = new_state(kube)

    async def seen_added() -> None:
        await job_changed(state, "MODIFIED", copy.deepcopy(running))
        for check in state.start_checks.values():
            check.cancel()  # the pod-start watch is run_start's, tested on a cluster

    asyncio.run(seen_added())
    assert kube.summary() == [("PATCH", "jobs")]
    assert job(kube)["metadata"]["finalizers"] == [contract.FINALIZER]
    assert "history" not in report(kube)["status"]


# ------------------------------------------------------------------------ a crash after each step


def disabling_writes() -> int:
    kube = reconciled(failures=2)
    see(kube, finished_job(kube, False, FAILED.to_json(), 75))
    return len(kube.writes)


@pytest.mark.parametrize("crash_after", range(disabling_writes()))
def test_a_crash_after_each_write_counts_the_run_once(crash_after: int) -> None:
    kube = reconciled(failures=2)
    seen = finished_job(kube, False, FAILED.to_json(), 75)
    kube.crash_after(crash_after)
    with pytest.raises(Crash):
        see(kube, seen)
    # After the restart kopf lists the Job (still held) and the report, whose CronJob the
    # start-up list has: the report event does not read it (check_children is False).
    see(kube, job(kube))
    asyncio.run(sync_report(new_state(kube), NS, NAME))
    status = report(kube)["status"]
    assert (len(status["history"]), status["consecutiveFailures"]) == (1, 3)
    assert status["phase"] == "Disabled"
    assert kube.objects[cronjob_path(NS, NAME)]["spec"]["suspend"] is True
    assert len(kube.of_kind(models.DELIVERY_PLURAL)) == 1
    assert len(reasons(kube)) == len(set(reasons(kube)))  # keyed by the Job: never twice
    assert released(kube)


# -------------------------------------------------------------------------- two writers in conflict


def test_a_status_write_from_a_stale_read_is_retried_and_counts_once() -> None:
    kube = reconciled()
    seen = finished_job(kube, True, DELIVERED, 0)
    status_path = report_path(NS, NAME) + "/status"

    def reconcile_in_between(other: FakeKube) -> None:
        stored = other.objects[report_path(NS, NAME)]
        stored["status"]["testSendHandled"] = "me@example.com"
        stored["metadata"]["resourceVersion"] = "999"

    kube.before_next_write(status_path, reconcile_in_between)
    see(kube, seen)
    assert kube.summary().count(("PATCH", "status")) == 2  # a 409, then again after a read
    status = report(kube)["status"]
    assert [h["jobName"] for h in status["history"]] == [JOB]
    assert status["testSendHandled"] == "me@example.com"  # the other writer's field stays
    assert len(kube.of_kind(models.DELIVERY_PLURAL)) == 1
    assert reasons(kube) == ["Delivered"]
    assert released(kube)


def test_a_job_changed_before_its_release_is_read_again() -> None:
    kube = reconciled()
    seen = finished_job(kube, True, DELIVERED, 0)

    def job_controller(other: FakeKube) -> None:
        other.objects[job_path(NS, JOB)]["metadata"]["resourceVersion"] = "997"

    kube.before_next_write(job_path(NS, JOB), job_controller)
    see(kube, seen)
    assert kube.summary().count(("PATCH", "jobs")) == 2
    assert released(kube)
