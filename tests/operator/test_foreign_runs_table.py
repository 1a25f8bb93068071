"""Table tests: only the operator's own runs count (controller.run_ownership, run_checks).

A Job with a report's labels that the operator cannot show is its own (not owned by the report
or its CronJob, or with another pod template) gets one Warning naming it, is never counted,
recorded or measured, and loses our finalizer; a pod that is not the Job's supplies no result
line; a run-now whose Job name is taken by such a Job is not read as started."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.fake_kube import FakeKube

from tidings import contract, models
from tidings.controller import cronjob, metrics
from tidings.controller.job_outcomes import job_changed
from tidings.controller.kube import cronjob_path, job_path, pods_path, report_path
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
}
DELIVERED = RunResult(
    outcome="Delivered", recipients_accepted=1, message_id="<forged@example.com>"
).to_json()
FAILED = RunResult(outcome="Failed", failure="transient", error="relay down").to_json()


def new_state(kube: FakeKube) -> OperatorState:
    return OperatorState(settings=Settings(), kube=kube, instance="test")  # type: ignore[arg-type]


def reconciled(state: OperatorState) -> FakeKube:
    kube: FakeKube = state.kube  # type: ignore[assignment]
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": NAME, "annotations": {}},
        "spec": copy.deepcopy(SPEC),
    }
    kube.put(report_path(NS), body)
    asyncio.run(sync_report(state, NS, NAME))
    kube.writes.clear()
    return kube


def report(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[report_path(NS, NAME)]


def the_cronjob(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[cronjob_path(NS, cronjob.cronjob_name(NAME))]


def pod(
    kube: FakeKube, job: dict[str, Any], message: str, exit_code: int = 0, owned: bool = True
) -> None:
    """A finished renderer pod of `job` (owned: as the Job controller makes it)."""
    meta = job["metadata"]
    labels = {contract.JOB_NAME_LABEL: meta["name"], **meta["labels"]}
    refs = [{"kind": "Job", "name": meta["name"], "uid": meta["uid"], "controller": True}]
    terminated = {"exitCode": exit_code, "finishedAt": "2026-11-30T08:01:00Z", "message": message}
    kube.put(
        pods_path(NS),
        {
            "metadata": {
                "name": f"{meta['name']}-{'ok' if owned else 'hand'}",
                "labels": labels,
                "ownerReferences": refs if owned else [],
            },
            "status": {
                "containerStatuses": [
                    {"name": cronjob.CONTAINER, "state": {"terminated": terminated}}
                ]
            },
        },
    )


def finished(kube: FakeKube, change: Callable[[dict[str, Any]], None] = lambda _: None) -> dict:
    """A Job of the report's CronJob, finished and held, changed by `change` before it is
    created (a forgery), with its pod ending Delivered."""
    job = cronjob.job_from_template(the_cronjob(kube), JOB, {})
    job["metadata"]["finalizers"] = [contract.FINALIZER]
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    change(job)
    stored = kube.put(job_path(NS), job)
    pod(kube, stored, DELIVERED)
    return stored


def see(state: OperatorState, job: dict[str, Any]) -> None:
    asyncio.run(job_changed(state, "MODIFIED", copy.deepcopy(job)))


def warnings(kube: FakeKube) -> list[str]:
    return [e["message"] for e in kube.of_kind("events") if e["reason"] == "ForeignRun"]


def container(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]["containers"][0]


def not_owned(job: dict[str, Any]) -> None:
    job["metadata"]["ownerReferences"] = []


def other_command(job: dict[str, Any]) -> None:
    container(job)["command"] = ["sh", "-c", f"echo '{DELIVERED}' > /dev/termination-log"]


def other_recipients(job: dict[str, Any]) -> None:
    annotations = job["spec"]["template"]["metadata"]["annotations"]
    snapshot = annotations[contract.SNAPSHOT_ANNOTATION]
    annotations[contract.SNAPSHOT_ANNOTATION] = snapshot.replace("ciso@example.com", "x@evil.io")


def an_extra_field(job: dict[str, Any]) -> None:
    job["spec"]["template"]["spec"]["hostAliases"] = [
        {"ip": "203.0.113.9", "hostnames": ["smtp.example.com"]}
    ]


def owned_by_report_with_new_env(job: dict[str, Any]) -> None:
    job["metadata"]["ownerReferences"][0].update(
        kind=models.KIND, uid=job["metadata"]["labels"][contract.REPORT_UID_LABEL]
    )
    container(job)["env"].append({"name": contract.TEST_RECIPIENT_ENV, "value": "x@evil.io"})


FORGERIES = {
    "owned by nobody": (not_owned, "owned neither by the report nor by the report's CronJob"),
    "another command": (other_command, "not the one the operator wrote"),
    "other recipients in the snapshot": (other_recipients, "not the one the operator wrote"),
    "a field added to the pod spec": (an_extra_field, "not the one the operator wrote"),
    "owned by the report, a test address added": (
        owned_by_report_with_new_env,
        "not the one the operator wrote",
    ),
}


@pytest.mark.parametrize("forgery", FORGERIES, ids=list(FORGERIES))
def test_a_forged_job_is_named_once_and_never_counted(forgery: str) -> None:
    change, why = FORGERIES[forgery]
    state = new_state(FakeKube())
    kube = reconciled(state)
    status_before = copy.deepcopy(report(kube)["status"])
    runs_before = metrics.RUNS.collect()[0].samples
    forged = finished(kube, change)
    see(state, forged)
    see(new_state(kube), kube.objects[job_path(NS, JOB)])  # after a restart: no second Event
    assert report(kube)["status"] == status_before
    assert kube.of_kind(models.DELIVERY_PLURAL) == []
    assert metrics.RUNS.collect()[0].samples == runs_before
    [message] = warnings(kube)
    assert f"Job {JOB} (uid {forged['metadata']['uid']})" in message and why in message
    meta = kube.objects[job_path(NS, JOB)]["metadata"]
    assert contract.FINALIZER not in meta["finalizers"]
    assert contract.COUNTED_ANNOTATION not in (meta.get("annotations") or {})


def test_the_genuine_job_still_counts() -> None:
    state = new_state(FakeKube())
    kube = reconciled(state)
    see(state, finished(kube))
    assert [h["outcome"] for h in report(kube)["status"]["history"]] == ["Delivered"]
    assert warnings(kube) == []


def test_a_hand_made_pod_with_the_job_name_label_supplies_no_result_line() -> None:
    state = new_state(FakeKube())
    kube = reconciled(state)
    job = cronjob.job_from_template(the_cronjob(kube), JOB, {})
    job["metadata"]["finalizers"] = [contract.FINALIZER]
    job["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    stored = kube.put(job_path(NS), job)
    pod(kube, stored, FAILED, exit_code=75)
    pod(kube, stored, DELIVERED, owned=False)  # newer-looking, but not the Job's
    see(state, stored)
    [entry] = report(kube)["status"]["history"]
    assert (entry["outcome"], entry["error"]) == ("Failed", "relay down")


def test_a_run_started_before_a_spec_change_is_still_its_own() -> None:
    state = new_state(FakeKube())
    kube = reconciled(state)
    job = finished(kube)  # from the template as it was
    report(kube)["spec"]["title"] = "Payments weekly, renamed"
    report(kube)["metadata"]["generation"] = 2
    asyncio.run(sync_report(state, NS, NAME))  # the CronJob gets the new template
    assert "renamed" in str(the_cronjob(kube)["spec"]["jobTemplate"])
    see(state, job)
    assert [h["outcome"] for h in report(kube)["status"]["history"]] == ["Delivered"]


def test_a_running_forged_job_is_not_held() -> None:
    state = new_state(FakeKube())
    kube = reconciled(state)
    job = cronjob.job_from_template(the_cronjob(kube), JOB, {})
    other_command(job)
    stored = kube.put(job_path(NS), job)
    see(state, stored)
    assert kube.objects[job_path(NS, JOB)]["metadata"].get("finalizers") is None
    assert len(warnings(kube)) == 1
    assert stored["metadata"]["uid"] in state.foreign_jobs


def test_a_run_now_whose_job_name_is_taken_is_not_read_as_started() -> None:
    state = new_state(FakeKube())
    kube = reconciled(state)
    name = cronjob.run_now_job_name(NAME, "now")
    squatter = cronjob.job_from_template(the_cronjob(kube), name, {})
    other_command(squatter)
    kube.put(job_path(NS), squatter)  # running: it must not hold the run-now back either
    report(kube)["metadata"]["annotations"][contract.RUN_NOW_ANNOTATION] = "now"
    asyncio.run(sync_report(state, NS, NAME))
    reasons = {e["reason"] for e in kube.of_kind("events")}
    assert {"RunNowBlocked", "ForeignRun"} <= reasons
    assert "RunNowStarted" not in reasons and "RunNowWaiting" not in reasons
    assert report(kube)["status"]["runNowHandled"] == contract.digest("now")
