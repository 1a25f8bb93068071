"""Runs that do not start, triggered by a running Job of ours: once the bound
(TIDINGS_RUN_START_TIMEOUT_SECONDS) has passed since the Job started (or was created) without
its pod starting, the report's Delivered condition turns Unknown with the pod's reason
(RunNotStarted), and the Job is annotated so that its failure is counted with that reason, even
after a restart.

A run waiting for capacity (capacity.capacity_wait: the node full, containers being created)
is not that: no RunNotStarted, and its deadline is pushed on while it waits and set, once its
pod starts, to the wait plus its timeout, so the timeout counts from the pod's start. A
suspended Job (held by the cap or by Kueue) is not watched at all: Kubernetes starts its clock
when it is resumed, and the resume's event brings it back here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import contract
from tidings.controller import capacity, run_outcome, run_ownership, status
from tidings.controller.clock import utc_now
from tidings.controller.kube import job_path, pods_path, report_path
from tidings.controller.retry import retry_on_conflict
from tidings.controller.state import OperatorState
from tidings.controller.status import Event
from tidings.controller.writes import patch_status, post_events
from tidings.schedule import parse_rfc3339

log = logging.getLogger("tidings.operator")


def watch_start(state: OperatorState, job: Mapping[str, Any], report_name: str) -> None:
    """Check, once the bound has passed since the Job started, that its pod started."""
    meta = job["metadata"]
    uid = meta["uid"]
    job_status = job.get("status") or {}
    if uid in state.start_checks or (job.get("spec") or {}).get("suspend"):
        return
    if not job_status.get("startTime") and capacity.was_held(job):
        return  # just released: its clock starts with the Job controller's next write
    now = utc_now()
    try:
        started = parse_rfc3339(job_status.get("startTime") or meta.get("creationTimestamp") or "")
    except ValueError:
        started = now
    bound = state.settings.run_start_timeout
    # The first look comes before a capacity wait could use up the run's timeout.
    first = min(bound, (capacity.job_timeout(job) or bound) / 2)
    delay = max(0.0, (started - now).total_seconds() + first)
    task = asyncio.create_task(
        _check_start(state, meta["namespace"], meta["name"], report_name, delay, started)
    )
    state.start_checks[uid] = task
    task.add_done_callback(lambda _: state.start_checks.pop(uid, None))


async def _check_start(
    state: OperatorState,
    namespace: str,
    job_name: str,
    report_name: str,
    delay: float,
    started: datetime,
) -> None:
    bound = state.settings.run_start_timeout
    poll = min(bound, 30)
    await asyncio.sleep(delay)
    told = None
    while True:
        try:
            job = await state.kube.get(job_path(namespace, job_name))
            if job is None or job["metadata"].get("deletionTimestamp"):
                return
            if run_outcome.job_finished(job) is not None or (job.get("spec") or {}).get("suspend"):
                return
            listed = await state.kube.list(pods_path(namespace), run_ownership.pod_selector(job))
            pods = run_ownership.own_pods(job, listed)  # a hand-made pod says nothing
            reason = run_outcome.not_started_reason(job, pods)
            now = utc_now()
            if reason is None:  # started: its timeout counts from the pod's start
                if started_at := capacity.pod_started_at(pods):
                    await _push_deadline(state, job, now, started_at)
                return
            if wait := capacity.capacity_wait(job, pods, now, bound):
                log.info("run %s/%s is %s", namespace, job_name, wait)
                await _push_deadline(state, job, now, None, ahead=2 * poll)
            elif (now - started).total_seconds() >= bound and reason != told:
                await _report_not_started(state, job, report_name, reason)
                told = reason
        except (ApiException, kopf.TemporaryError) as exc:
            log.warning("checking that Job %s started failed: %s", job_name, exc)
        await asyncio.sleep(poll)


async def _push_deadline(
    state: OperatorState,
    job: Mapping[str, Any],
    now: datetime,
    pod_started: datetime | None,
    ahead: float = 0,
) -> None:
    """activeDeadlineSeconds as capacity.pushed_deadline says (it is mutable on a running
    Job), the run's own timeout kept beside it."""
    seconds = capacity.pushed_deadline(job, now, ahead, pod_started)
    timeout = capacity.job_timeout(job)
    if seconds is None or timeout is None:
        return
    meta = job["metadata"]
    body = {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {capacity.TIMEOUT_ANNOTATION: str(timeout)},
        },
        "spec": {"activeDeadlineSeconds": seconds},
    }
    try:
        await state.kube.merge_patch(job_path(meta["namespace"], meta["name"]), body)
    except ApiException as exc:
        if exc.status not in (404, 409):  # 409: the next look reads it again
            raise


async def _report_not_started(
    state: OperatorState, job: Mapping[str, Any], report_name: str, reason: str
) -> None:
    kube = state.kube
    meta = job["metadata"]
    namespace = meta["namespace"]
    # On the Job, so its failure is counted with this reason even after a restart.
    body = {"metadata": {"annotations": {contract.NOT_STARTED_ANNOTATION: reason}}}
    await kube.merge_patch(job_path(namespace, meta["name"]), body)
    report_uid = (meta.get("labels") or {}).get(contract.REPORT_UID_LABEL)

    async def attempt(_: int) -> None:
        report = await kube.get(report_path(namespace, report_name))
        if report is None or report["metadata"]["uid"] != report_uid:
            return
        change = status.run_not_started(
            report, meta["name"], reason, state.settings.run_start_timeout, utc_now()
        )
        await patch_status(kube, report, change.status)
        key = f"{meta['uid']}/{reason}"
        events = [Event(e.type, e.reason, e.message, key=key) for e in change.events]
        await post_events(kube, state.instance, report, events, strict=False)

    async with state.locks[(namespace, report_name)]:
        await retry_on_conflict(attempt, f"mark Job {meta['name']} not started")
