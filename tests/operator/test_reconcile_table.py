"""Table tests of the report reconcile (controller.reconcile.sync_report) against a fake Kube,
in the style of the Kubernetes CronJob controller's syncCronJob tests: for each case, the
objects before, then the writes made and the objects after; a crash after each write, then a
re-run, converges with nothing doubled; a second writer's change in between is kept."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest
from tests.support.fake_kube import Crash, FakeKube

from tidings import contract, models
from tidings.controller import cronjob
from tidings.controller.kube import cronjob_path, report_path
from tidings.controller.reconcile import sync_report
from tidings.controller.retry import ATTEMPTS
from tidings.controller.settings import Settings
from tidings.controller.state import OperatorState

NS = "team-payments"
NAME = "payments-weekly"
SETTINGS = Settings()
SPEC: dict[str, Any] = {
    "title": "Payments weekly",
    "reportType": "changes_summary",
    "source": {"inline": {"rows": [{"id": 1, "status": "completed", "title": "Deploy"}]}},
    "schedule": "0 9 * * 1",
    "timeZone": "Europe/Berlin",
    "recipients": {"to": ["ciso@example.com"]},
}


def new_state(kube: FakeKube) -> OperatorState:
    return OperatorState(settings=SETTINGS, kube=kube, instance="test")  # type: ignore[arg-type]


def put_report(kube: FakeKube, annotations: dict[str, str] | None = None, **spec: Any) -> None:
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": NAME, "annotations": annotations or {}},
        "spec": {**copy.deepcopy(SPEC), **spec},
    }
    kube.put(report_path(NS), body)


def report(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[report_path(NS, NAME)]


def sync(kube: FakeKube, check_children: bool = False) -> None:
    asyncio.run(sync_report(new_state(kube), NS, NAME, check_children=check_children))


def synced(**spec: Any) -> FakeKube:
    """A report reconciled once: its CronJob and status written."""
    kube = FakeKube()
    put_report(kube, **spec)
    sync(kube)
    kube.writes.clear()
    return kube


def the_cronjob(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[cronjob_path(NS, cronjob.cronjob_name(NAME))]


def reasons(kube: FakeKube) -> list[str]:
    return sorted(e["reason"] for e in kube.of_kind("events"))


# --------------------------------------------------------------------------------- the table


def edit_schedule_by_hand(kube: FakeKube) -> None:
    asyncio.run(kube.merge_patch(cronjob_path(NS, NAME), {"spec": {"schedule": "*/5 * * * *"}}))
    kube.writes.clear()


def delete_cronjob(kube: FakeKube) -> None:
    del kube.objects[cronjob_path(NS, NAME)]


def annotate(key: str, value: str):
    def change(kube: FakeKube) -> None:
        report(kube)["metadata"]["annotations"][key] = value

    return change


def change_spec(**spec: Any):
    def change(kube: FakeKube) -> None:
        report(kube)["spec"].update(spec)
        report(kube)["metadata"]["generation"] += 1

    return change


@dataclass
class Case:
    name: str
    spec: dict[str, Any] = field(default_factory=dict)  # of the report before the first sync
    then: Any = None  # a change between the first sync and the one under test
    check_children: bool = False
    writes: list[tuple[str, str]] = field(default_factory=list)  # (method, plural or status)
    phase: str = "Active"
    suspended: bool = False
    events: list[str] = field(default_factory=list)
    jobs: int = 0
    stamped: bool = True  # the CronJob's generation is the one our last write stamped


CASES = [
    Case(
        "an unchanged report writes nothing",
        check_children=True,
    ),
    Case(
        "suspend pauses: the CronJob is suspended, one Event",
        then=change_spec(suspend=True),
        writes=[("PATCH", "cronjobs"), ("PATCH", "status"), ("POST", "events")],
        phase="Paused",
        suspended=True,
        events=["Paused"],
    ),
    Case(
        "a deleted CronJob is recreated, with a Warning",
        then=delete_cronjob,
        check_children=True,
        writes=[("POST", "cronjobs"), ("POST", "events")],
        events=["CronJobRecreated"],
    ),
    Case(
        "a CronJob edited by hand is restored, with a Warning",
        then=edit_schedule_by_hand,
        writes=[("PATCH", "cronjobs"), ("POST", "events")],
        check_children=True,
        events=["CronJobReverted"],
    ),
    Case(
        "an invalid spec: Invalid, the CronJob suspended, one Warning",
        then=change_spec(schedule="every monday"),
        writes=[("PATCH", "cronjobs"), ("PATCH", "status"), ("POST", "events")],
        phase="Invalid",
        suspended=True,
        events=["InvalidSpec"],
        # Only `suspend` is patched, without a stamp: the spec is not ours to render.
        stamped=False,
    ),
    Case(
        "run-now starts one Job, named from the value",
        then=annotate(contract.RUN_NOW_ANNOTATION, "2026-12-01"),
        writes=[("POST", "jobs"), ("PATCH", "status"), ("POST", "events")],
        events=["RunNowStarted"],
        jobs=1,
    ),
    Case(
        "a Manual report keeps a suspended CronJob",
        then=change_spec(schedule=""),
        writes=[("PATCH", "cronjobs"), ("PATCH", "status")],
        phase="Manual",
        suspended=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sync_report(case: Case) -> None:
    kube = synced(**case.spec)
    if case.then:
        case.then(kube)
    sync(kube, check_children=case.check_children)
    assert kube.summary() == case.writes
    assert report(kube)["status"]["phase"] == case.phase
    assert the_cronjob(kube)["spec"]["suspend"] is case.suspended
    assert reasons(kube) == case.events
    assert len(kube.of_kind("jobs")) == case.jobs
    stamp = the_cronjob(kube)["metadata"]["annotations"][contract.WRITTEN_GENERATION]
    assert (stamp == str(the_cronjob(kube)["metadata"]["generation"])) is case.stamped
    kube.writes.clear()
    sync(kube, check_children=True)
    assert kube.writes == []  # converged: a second reconcile writes nothing


def test_a_new_report_costs_two_writes() -> None:
    kube = FakeKube()
    put_report(kube)
    sync(kube)
    assert kube.summary() == [("POST", "cronjobs"), ("PATCH", "status")]
    assert the_cronjob(kube)["metadata"]["annotations"][contract.WRITTEN_GENERATION] == "1"
    status = report(kube)["status"]
    assert (status["phase"], status["observedGeneration"]) == ("Active", 1)
    assert reasons(kube) == []


def test_a_cronjob_of_that_name_owned_by_another_is_left_alone() -> None:
    kube = synced()
    the_cronjob(kube)["metadata"]["ownerReferences"] = [{"uid": "someone-else", "controller": True}]
    with pytest.raises(kopf.TemporaryError, match="not owned by this report"):
        sync(kube, check_children=True)
    assert kube.summary() == [("POST", "events")]
    assert reasons(kube) == ["NameConflict"]


# ------------------------------------------------------------------------ a crash after each step


def run_now_report() -> FakeKube:
    kube = FakeKube()
    put_report(kube, annotations={contract.RUN_NOW_ANNOTATION: "first"})
    return kube


def count_writes(make: Any) -> int:
    kube = make()
    sync(kube)
    return len(kube.writes)


@pytest.mark.parametrize("crash_after", range(count_writes(run_now_report)))
def test_a_crash_after_each_write_converges_with_nothing_doubled(crash_after: int) -> None:
    kube = run_now_report()
    kube.crash_after(crash_after)
    with pytest.raises(Crash):
        sync(kube)
    sync(kube)  # the restarted operator reconciles again (kopf lists every report)
    sync(kube)
    assert len(kube.of_kind("cronjobs")) == 1
    assert len(kube.of_kind("jobs")) == 1  # the run-now Job's name comes from the value
    assert len(reasons(kube)) == len(set(reasons(kube)))  # no Event twice
    assert report(kube)["status"]["phase"] == "Active"
    kube.writes.clear()
    sync(kube, check_children=True)
    assert [w for w in kube.writes if "/events" not in w.path] == []  # converged


# -------------------------------------------------------------------------- two writers in conflict


def test_a_status_write_from_a_stale_read_is_retried_and_keeps_the_other_writer() -> None:
    kube = synced()
    report(kube)["metadata"]["generation"] += 1  # a spec change: status must be written
    status_path = report_path(NS, NAME) + "/status"

    def job_outcome_writer(other: FakeKube) -> None:
        body = {"status": {"lastAttemptAt": "2026-12-01T09:00:00Z"}}
        other.objects[report_path(NS, NAME)]["status"].update(body["status"])
        other.objects[report_path(NS, NAME)]["metadata"]["resourceVersion"] = "999"

    kube.before_next_write(status_path, job_outcome_writer)
    sync(kube)
    status_writes = [w for w in kube.writes if w.path == status_path]
    assert len(status_writes) == 2  # 409 on the stale resourceVersion, then again after a read
    status = report(kube)["status"]
    assert status["observedGeneration"] == 2
    assert status["lastAttemptAt"] == "2026-12-01T09:00:00Z"  # the other writer's field stays


def test_a_cronjob_changed_between_read_and_patch_is_read_again() -> None:
    kube = synced()
    change_spec(suspend=True)(kube)

    def someone_else(other: FakeKube) -> None:
        other.objects[cronjob_path(NS, NAME)]["metadata"]["resourceVersion"] = "998"

    kube.before_next_write(cronjob_path(NS, NAME), someone_else)
    sync(kube)
    cronjob_writes = [w for w in kube.writes if w.path == cronjob_path(NS, NAME)]
    assert len(cronjob_writes) == 2
    assert the_cronjob(kube)["spec"]["suspend"] is True
    assert report(kube)["status"]["phase"] == "Paused"


def test_a_report_that_keeps_changing_gives_up_for_a_later_retry() -> None:
    kube = synced()
    report(kube)["metadata"]["generation"] += 1
    status_path = report_path(NS, NAME) + "/status"

    def bump(other: FakeKube) -> None:
        other.objects[report_path(NS, NAME)]["metadata"]["resourceVersion"] += "x"
        other.before_next_write(status_path, bump)

    kube.before_next_write(status_path, bump)
    with pytest.raises(kopf.TemporaryError, match="it kept changing"):
        sync(kube)
    assert kube.summary().count(("PATCH", "status")) == ATTEMPTS
