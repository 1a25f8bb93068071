"""Job outcome counting, triggered by an event of one of our Jobs.

A running Job is held with the outcome finalizer (if the admission policy did not add it at
creation) and watched for a pod that never starts (run_start.py). A finished Job's outcome is
applied to its report's status once, then the Job is let go (docs/operator.md, "Each run
counted once"). Order matters for a crash at any point: the ReportDelivery record (named from
the Job, so a second write is a 409) and the Events (named after the Job) go first, then the
conditional status write that adds the Job's uid to status.countedJobs, then the release. Run
again, each step is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import contract, models
from tidings.controller import (
    cronjob,
    metrics,
    owner_notices_send,
    record_store,
    records,
    run_outcome,
    run_ownership,
    status,
    testsend,
    zones,
)
from tidings.controller.clock import next_fire, utc_now
from tidings.controller.kube import Kube, job_path, namespace_terminating, pods_path, report_path
from tidings.controller.reconcile import apply_children, sync_or_retry_later
from tidings.controller.retry import Conflict, retry_on_conflict
from tidings.controller.run_checks import foreign_reason, refuse
from tidings.controller.run_start import watch_start
from tidings.controller.state import OperatorState
from tidings.controller.status import Event
from tidings.controller.writes import patch_status, post_events

log = logging.getLogger("tidings.operator")


async def job_changed(state: OperatorState, event_type: str | None, job: Mapping[str, Any]) -> None:
    """What a watch event of one of our Jobs leads to."""
    meta = job["metadata"]
    annotations = meta.get("annotations") or {}
    report_name = annotations.get(contract.REPORT_NAME_ANNOTATION)
    running = run_outcome.job_finished(job) is None and not meta.get("deletionTimestamp")
    if not running and (check := state.start_checks.pop(meta["uid"], None)):
        check.cancel()  # no idle polling for runs that ended
    if not report_name or event_type == "DELETED" or contract.COUNTED_ANNOTATION in annotations:
        state.own_jobs.discard(meta["uid"])
        return  # a held Job is never gone before it is counted; a counted one is done
    if meta["uid"] in state.foreign_jobs:
        return
    namespace = meta["namespace"]
    if running:
        if meta["uid"] not in state.own_jobs:
            report = await state.kube.get(report_path(namespace, report_name))
            if report is None:
                return  # nothing it could count for; looked at again once it finishes
            if reason := await foreign_reason(state, job, report):
                await refuse(state, job, report, reason)
                return
            state.own_jobs.add(meta["uid"])
        if contract.FINALIZER not in (meta.get("finalizers") or ()):
            # Born without it (the admission policy is not installed): hold it from now on.
            await hold(state.kube, job)
        if contract.NOT_STARTED_ANNOTATION not in annotations:
            watch_start(state, job, report_name)
        if event_type in (None, "ADDED"):
            # A new run means the previous fire time passed: nextSendAt moves on.
            await sync_or_retry_later(state, namespace, report_name)
        return

    async def attempt(_: int) -> None:
        await record_outcome(state, namespace, report_name, job)

    try:
        await retry_on_conflict(attempt, f"record Job {meta['name']}", transient=True)
    except kopf.TemporaryError:
        log.error("gave up recording Job %s; it stays held and is retried on restart", meta["name"])


async def hold(kube: Kube, job: Mapping[str, Any]) -> None:
    """Add the outcome finalizer, so the Job stays until it is counted."""
    meta = job["metadata"]
    body = {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "finalizers": [*(meta.get("finalizers") or ()), contract.FINALIZER],
        }
    }
    try:
        await kube.merge_patch(job_path(meta["namespace"], meta["name"]), body)
    except ApiException as exc:
        if exc.status not in (404, 409):  # 409: a newer version comes with its own event
            raise


async def release(kube: Kube, job: Mapping[str, Any]) -> None:
    """Mark the Job counted and drop our finalizer, in one write: from then on it is done."""
    current = job

    async def attempt(number: int) -> None:
        nonlocal current
        if number:
            found = await kube.get(job_path(job["metadata"]["namespace"], job["metadata"]["name"]))
            if found is None:
                return
            current = found
        meta = current["metadata"]
        body = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "finalizers": [f for f in meta.get("finalizers") or () if f != contract.FINALIZER],
                "annotations": {contract.COUNTED_ANNOTATION: "true"},
            }
        }
        try:
            await kube.merge_patch(job_path(meta["namespace"], meta["name"]), body)
        except ApiException as exc:
            if exc.status == 404:
                return
            if exc.status == 409:
                raise Conflict() from None
            raise

    await retry_on_conflict(attempt, f"release Job {job['metadata']['name']}")


async def record_outcome(
    state: OperatorState, namespace: str, report_name: str, job: Mapping[str, Any]
) -> None:
    """Apply a finished Job to its report's status exactly once, then let the Job go."""
    kube = state.kube
    job_meta = job["metadata"]
    job_report_uid = (job_meta.get("labels") or {}).get(contract.REPORT_UID_LABEL)

    async def attempt(_: int) -> Mapping[str, Any] | None:
        """The report as updated, or None when there was nothing (more) to count."""
        report = await kube.get(report_path(namespace, report_name))
        if report is None or report["metadata"]["uid"] != job_report_uid:
            await release(kube, job)  # the report is gone (or is a new one, same name)
            return None
        report = zones.effective(report, state.zone_defaults.get(namespace))
        current = report.get("status") or {}
        if status.already_recorded(current, job_meta["name"], job_meta.get("uid", "")):
            if current.get("phase") == models.Phase.DISABLED:
                # Counted, but the operator may have died before suspending the CronJob:
                # no later event of the report would (its phase does not change again).
                await suspend_disabled(state, report)
            await release(kube, job)
            return None
        if reason := await foreign_reason(state, job, report):
            await refuse(state, job, report, reason)
            return None
        listed = await kube.list(pods_path(namespace), run_ownership.pod_selector(job))
        pods = [dict(p) for p in run_ownership.own_pods(job, listed)]
        now = utc_now()
        outcome = run_outcome.job_outcome(job, pods, now)
        if outcome is None:
            return None
        change = status.apply_outcome(report, outcome, now, next_fire)
        notice = None
        if change is not None:
            notice = owner_notices_send.owed_by(report, outcome, change.status, change.phase)
        try:
            await write_record(state, report, job, outcome, pods)
            if change is None:
                return None
            events = [
                Event(e.type, e.reason, e.message, key=outcome.job_uid) for e in change.events
            ]
            await post_events(kube, state.instance, report, events, strict=True)
        except ApiException as exc:
            if not namespace_terminating(exc):
                raise
            # Nothing can be created there any more, and the namespace waits for this Job.
            log.warning(
                "namespace %s is being deleted: Job %s let go without its record or Events",
                namespace,
                job_meta["name"],
            )
            await release(kube, job)
            state.own_jobs.discard(job_meta["uid"])
            return None
        await patch_status(kube, report, change.status)
        metrics.observe_run(outcome)
        updated = {**report, "status": {**current, **change.status}}
        if notice is not None:
            owner_notices_send.start(state, notice)  # in the background
        if change.phase == models.Phase.DISABLED:
            await suspend_disabled(state, updated)
        await release(kube, job)
        state.own_jobs.discard(job_meta["uid"])
        return updated

    async with state.locks[(namespace, report_name)]:
        updated = await retry_on_conflict(attempt, f"record Job {job_meta['name']}")
    if updated is not None and (
        status.pending_run_now(updated) is not None or testsend.pending(updated)
    ):
        await sync_or_retry_later(state, namespace, report_name)  # what waited may start
    if updated is not None and cronjob.last_digest_env(updated):
        # sendWhen mode changed: the next run must see this run's rowsDigest in its template.
        await sync_or_retry_later(state, namespace, report_name, check_children=True)


async def write_record(
    state: OperatorState,
    report: Mapping[str, Any],
    job: Mapping[str, Any],
    outcome: run_outcome.RunOutcome,
    pods: list[dict[str, Any]],
) -> None:
    """The Job's ReportDelivery, before status counts it: a crash in between leaves a record
    whose second write is a 409. A refusal other than a server error is logged and does not
    stop status from being recorded."""
    retention = record_store.retention(state.settings)
    record = records.delivery_record(report, job, outcome, run_outcome.job_result(pods), retention)
    try:
        await record_store.create_record(state.kube, record)
    except ApiException as exc:
        if exc.status >= 500 or exc.status == 429 or namespace_terminating(exc):
            raise
        log.error("ReportDelivery %s was refused: %s", record["metadata"]["name"], exc.body)


async def suspend_disabled(state: OperatorState, report: Mapping[str, Any]) -> None:
    """The CronJob of a report just Disabled: suspended, whatever else is writing it."""

    async def attempt(_: int) -> None:
        await apply_children(state, report, models.Phase.DISABLED.value)

    await retry_on_conflict(attempt, "suspend the CronJob of a Disabled report")
