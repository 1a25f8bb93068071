"""Whether a Job carrying a report's labels is the operator's own run (run_ownership decides),
and what becomes of one that is not: triggered by a Job event (job_outcomes) or by a run-now
create that finds its Job's name taken (reconcile)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from tidings import contract
from tidings.controller import cronjob, run_ownership
from tidings.controller.kube import Kube, cronjob_path, job_path
from tidings.controller.state import OperatorState
from tidings.controller.status import Event
from tidings.controller.writes import post_events

log = logging.getLogger("tidings.operator")


async def foreign_reason(
    state: OperatorState, job: Mapping[str, Any], report: Mapping[str, Any]
) -> str | None:
    """Why the Job is not a run of the report's the operator can show is its own (None if it
    is): run_ownership decides, against the report's CronJob as read now."""
    meta = report["metadata"]
    key = (meta["namespace"], meta["name"])
    cronjob_obj = await state.kube.get(cronjob_path(key[0], cronjob.cronjob_name(key[1])))
    known = state.templates.get(meta["uid"], ())
    return run_ownership.foreign_reason(job, report, cronjob_obj, state.cronjobs.get(key), known)


async def refuse(
    state: OperatorState, job: Mapping[str, Any], report: Mapping[str, Any], reason: str
) -> None:
    """A Job that is not the operator's run: one Warning on the report naming it (keyed by the
    Job's uid, so posted once), our finalizer dropped if it has it, and nothing counted,
    recorded or measured."""
    meta = job["metadata"]
    state.own_jobs.discard(meta["uid"])
    message = (
        f"Job {meta['name']} (uid {meta['uid']}) carries this report's labels but is not one of "
        f"its runs: {reason}. It is not counted, recorded or measured."
    )
    event = Event("Warning", "ForeignRun", message, key=meta["uid"])
    await post_events(state.kube, state.instance, report, [event], strict=False)
    log.warning("Job %s/%s is not a run of ours: %s", meta["namespace"], meta["name"], reason)
    if contract.FINALIZER not in (meta.get("finalizers") or ()) or await drop_finalizer(
        state.kube, job
    ):
        state.foreign_jobs.add(meta["uid"])  # its later events need no second look


async def drop_finalizer(kube: Kube, job: Mapping[str, Any]) -> bool:
    """Only our finalizer off, nothing else of the Job touched (a merge patch replaces the
    whole list, so it is conditional on the version read). False on a 409: the Job's next
    event brings it back here."""
    meta = job["metadata"]
    kept = [f for f in meta.get("finalizers") or () if f != contract.FINALIZER]
    body = {"metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": kept}}
    try:
        await kube.merge_patch(job_path(meta["namespace"], meta["name"]), body)
    except ApiException as exc:
        if exc.status == 409:
            return False
        if exc.status != 404:
            raise
    return True
