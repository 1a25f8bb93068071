"""The release loop's bookkeeping (controller/run_release.py) over the in-memory Kube: the
cap holds when Job events arrive late, and only runs shown to be the operator's count."""

from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace

from tests.support.fake_kube import FakeKube

from tidings import contract
from tidings.controller import capacity, run_release
from tidings.controller.kube import job_path
from tidings.controller.settings import Settings

NS = "team"


def held_job(kube: FakeKube, name: str, second: int) -> dict:
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {contract.MANAGED_BY_LABEL: contract.MANAGED_BY},
            "annotations": {
                capacity.CAPACITY_HOLD_ANNOTATION: "true",
                contract.SCHEDULED_TIMESTAMP_ANNOTATION: f"2026-11-30T09:00:{second:02d}Z",
            },
        },
        "spec": {"suspend": True},
    }
    return kube.put(job_path(NS), body)


def suspended(kube: FakeKube, name: str) -> bool:
    return bool(kube.objects[job_path(NS, name)]["spec"].get("suspend"))


def test_a_late_event_from_before_a_release_does_not_free_its_slot() -> None:
    kube = FakeKube()
    # The first to arrive takes the slot; the second is due earlier (the CronJob controller
    # creates a burst's Jobs in no particular order), so it is first in line after it.
    first, second = held_job(kube, "first", 5), held_job(kube, "second", 1)
    stale = copy.deepcopy(first)  # as the watch still has it, queued before the release
    state = SimpleNamespace(
        kube=kube, own_jobs={first["metadata"]["uid"], second["metadata"]["uid"]},
        foreign_jobs=set(), settings=Settings(max_runs_cluster=1),
    )  # fmt: skip
    releaser = run_release.Releaser(capacity.Caps(cluster=1))

    async def scenario() -> None:
        await run_release.job_changed(releaser, state, "ADDED", first)
        assert not suspended(kube, "first")
        await run_release.job_changed(releaser, state, "ADDED", second)
        await run_release.job_changed(releaser, state, "MODIFIED", stale)
        assert suspended(kube, "second"), "released over the cap on a stale event"
        done = copy.deepcopy(kube.objects[job_path(NS, "first")])
        done["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
        await run_release.job_changed(releaser, state, "MODIFIED", done)
        assert not suspended(kube, "second")  # the slot it freed goes to the next in line

    asyncio.run(scenario())


def test_a_job_not_shown_to_be_ours_takes_no_slot_and_is_never_released() -> None:
    kube = FakeKube()
    hers, ours = held_job(kube, "hers", 0), held_job(kube, "ours", 1)
    going = copy.deepcopy(hers)
    going["spec"]["suspend"] = False
    state = SimpleNamespace(
        kube=kube, own_jobs={ours["metadata"]["uid"]},
        foreign_jobs={hers["metadata"]["uid"]}, settings=Settings(max_runs_cluster=1),
    )  # fmt: skip
    releaser = run_release.Releaser(capacity.Caps(cluster=1))

    async def scenario() -> None:
        await run_release.job_changed(releaser, state, "ADDED", hers)
        await run_release.job_changed(releaser, state, "MODIFIED", going)
        await run_release.job_changed(releaser, state, "ADDED", ours)

    asyncio.run(scenario())
    assert suspended(kube, "hers") and not suspended(kube, "ours")


def test_a_just_released_run_is_not_checked_from_its_creation() -> None:
    """Released without its startTime yet (the Job controller writes it next): its start bound
    counts from that, not from when the held Job was created minutes ago (RunNotStarted)."""
    from tidings.controller import run_start

    state = SimpleNamespace(start_checks={}, settings=Settings(run_start_timeout=120))
    job = {
        "metadata": {
            "name": "r-1",
            "namespace": NS,
            "uid": "u1",
            "creationTimestamp": "2026-11-30T09:00:00Z",
            "annotations": {capacity.CAPACITY_HOLD_ANNOTATION: "true"},
        },
        "spec": {"suspend": False, "activeDeadlineSeconds": 600},
        "status": {},
    }

    async def scenario() -> None:
        run_start.watch_start(state, job, "report")
        assert state.start_checks == {}
        job["status"]["startTime"] = "2026-11-30T09:05:00Z"
        run_start.watch_start(state, job, "report")
        assert list(state.start_checks) == ["u1"]
        state.start_checks["u1"].cancel()

    asyncio.run(scenario())
