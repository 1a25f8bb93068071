"""Releasing runs held by the concurrent-run cap, triggered by an event of one of our Jobs (a
run ending frees a slot; a held one arrives) and every RELEASE_SECONDS: capacity.releases
decides, this module keeps what it decides from and writes `spec.suspend: false`.

What it decides from is the operator's own unfinished runs, kept from the Job watch: a Job
enters only once job_outcomes has shown it to be ours (state.own_jobs), so a namespace
editor's look-alike Jobs neither take a slot nor get released. Before the watch has brought
every Job (start-up, a leader hand-over), the unsuspended Jobs listed then count as running:
a slot is never given twice, at worst a run waits one event longer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from tidings import contract
from tidings.controller import capacity, metrics, run_outcome
from tidings.controller.clock import utc_now
from tidings.controller.kube import job_path
from tidings.controller.state import OperatorState

RELEASE_SECONDS = 5.0  # a release that failed, or a slot freed without an event, waits this

log = logging.getLogger("tidings.operator")


def _all_jobs_path(namespace: str) -> str:
    return job_path(namespace) if namespace else "/apis/batch/v1/jobs"


class Releaser:
    """The held runs of one operator process and the decision's inputs."""

    def __init__(self, caps: capacity.Caps, holds: tuple[capacity.Hold, ...] = ()) -> None:
        self.caps = caps
        self.holds = list(holds)  # other rules that keep a run suspended (add_hold)
        self.runs: dict[str, capacity.Run] = {}  # by Job uid: our unfinished runs
        # Jobs this process released: an event from before the release, handled after it,
        # still shows them suspended, and must not free their slot again.
        self.released: set[str] = set()
        self.lock = asyncio.Lock()

    def add_hold(self, hold: capacity.Hold) -> None:
        """Another rule that keeps a run suspended whatever the caps say."""
        self.holds.append(hold)

    async def resync(self, state: OperatorState) -> None:
        """The index from the Jobs that exist now (at start-up, and on becoming the leader,
        when events were missed): runs shown to be ours as they are, and every other
        unsuspended unfinished Job of ours counted as running until its event says whether
        it is ours. Nothing is released meanwhile."""
        async with self.lock:
            found: dict[str, capacity.Run] = {}
            for namespace in state.settings.namespaces or ("",):
                path = _all_jobs_path(namespace)
                async for page in state.kube.list_pages(path, contract.MANAGED_SELECTOR):
                    for job in page:
                        meta = job["metadata"]
                        if run_outcome.job_finished(job) is not None or meta.get(
                            "deletionTimestamp"
                        ):
                            continue
                        run = capacity.run_of(job)
                        if run.uid in self.released:
                            run = capacity.released(run)
                        if run.uid in state.own_jobs or not (
                            run.suspended or run.uid in state.foreign_jobs
                        ):
                            found[run.uid] = run
            self.runs = found
            self.released &= set(found)

    def seen(self, state: OperatorState, event_type: str | None, job: Mapping[str, Any]) -> None:
        """Keep the index as the Job is now (after job_outcomes has looked at it)."""
        meta = job["metadata"]
        uid = meta["uid"]
        ended = run_outcome.job_finished(job) is not None or meta.get("deletionTimestamp")
        if event_type == "DELETED" or ended or uid not in state.own_jobs:
            self.runs.pop(uid, None)
            self.released.discard(uid)
            return
        run = capacity.run_of(job)
        self.runs[uid] = capacity.released(run) if uid in self.released else run

    async def release_due(self, state: OperatorState) -> None:
        """Release what the decision says, each write before the next decision."""
        if not self.caps.on and not any(r.releasable for r in self.runs.values()):
            return
        if not metrics.LEADERSHIP.leading:
            return  # a paused replica acts on nothing
        async with self.lock:
            for run in capacity.releases(self.runs.values(), self.caps, utc_now(), self.holds):
                try:
                    await state.kube.merge_patch(
                        job_path(run.namespace, run.name), {"spec": {"suspend": False}}
                    )
                except ApiException as exc:
                    if exc.status == 404:
                        self.runs.pop(run.uid, None)
                        continue
                    log.warning("releasing run %s/%s failed: %s", run.namespace, run.name, exc)
                    return  # the next pass tries again, still in fire order
                log.info("released run %s/%s (fire time %s)", run.namespace, run.name, run.due)
                if run.uid in self.runs:
                    self.runs[run.uid] = capacity.released(run)
                    self.released.add(run.uid)

    async def forever(self, state: OperatorState) -> None:
        while True:
            await asyncio.sleep(RELEASE_SECONDS)
            try:
                await self.release_due(state)
            except Exception as exc:  # the loop outlives any one failure
                log.warning("releasing held runs failed: %s", exc)


async def job_changed(
    releaser: Releaser, state: OperatorState, event_type: str | None, job: Mapping[str, Any]
) -> None:
    releaser.seen(state, event_type, job)
    await releaser.release_due(state)
