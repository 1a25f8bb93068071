"""Start the Jobs of `tidings.dev/run-at` and `tidings.dev/resend` (controller/reruns.py
decides), from a report's reconcile. Each value is acted on once: the status fields returned
(runAtHandled, resendHandled) are written with the rest of the reconcile's status; a refused
value is handled too, with a Warning naming the field and the rule. A value waits while a run
of the report is going (one run per report at a time), like run-now, and starts at the report's
next reconcile: the finished run's status write is an event of the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tidings import contract, groups
from tidings.controller import cronjob, reruns
from tidings.controller.clock import utc_now
from tidings.controller.kube import delivery_path
from tidings.controller.recipient_groups_store import members_of
from tidings.controller.state import OperatorState
from tidings.controller.status import Event
from tidings.schedule import rfc3339

CreateOnce = Callable[[OperatorState, Mapping[str, Any], dict[str, Any]], Awaitable[str | None]]
Busy = Callable[[], Awaitable[bool]]


async def start_chosen_windows(
    state: OperatorState,
    report: Mapping[str, Any],
    valid: bool,
    busy: Busy,
    create_once: CreateOnce,
) -> tuple[dict[str, Any], list[Event]]:
    """Act on a new run-at and a new resend value; the status fields and Events."""
    fields: dict[str, Any] = {}
    events: list[Event] = []
    run_at = reruns.pending(report, contract.RUN_AT_ANNOTATION, "runAtHandled")
    resend = reruns.pending(report, contract.RESEND_ANNOTATION, "resendHandled")
    if run_at is None and resend is None:
        return fields, events
    going = valid and await busy()
    if run_at is not None:
        done, event = await _run_at(state, report, run_at, valid, going, create_once)
        if done:
            fields["runAtHandled"] = contract.digest(run_at)
            going = going or event.reason == "RunAtStarted"
        events.append(event)
    if resend is not None:
        done, event = await _resend(state, report, resend, valid, going, create_once)
        if done:
            fields["resendHandled"] = contract.digest(resend)
        events.append(event)
    return fields, events


def _template(state: OperatorState, report: Mapping[str, Any]) -> dict[str, Any]:
    return cronjob.desired_cronjob(report, state.settings, suspend=True)  # its jobTemplate


async def _run_at(
    state: OperatorState,
    report: Mapping[str, Any],
    value: str,
    valid: bool,
    going: bool,
    create_once: CreateOnce,
) -> tuple[bool, Event]:
    """(handled, the Event)."""
    key = contract.digest(value)
    annotation = contract.RUN_AT_ANNOTATION
    if not valid:
        return True, Event("Warning", "RunAtRefused", "Not run: the spec is invalid.", key=key)
    try:
        at = reruns.parse_run_at(value, utc_now())
    except ValueError as problem:
        return True, Event("Warning", "RunAtRefused", f"Not run: {problem}.", key=key)
    if going:
        message = f"{annotation}: waits for the run in progress to end (one run at a time)."
        return False, Event("Normal", "RunAtWaiting", message, key=key)
    job = reruns.rerun_job(report, _template(state, report), value, at)
    if taken := await create_once(state, report, job):
        message = f"Not started: {taken}; set {annotation} to a new value to run."
        return True, Event("Warning", "RunAtBlocked", message, key=key)
    message = (
        f"Started Job {job['metadata']['name']} for {annotation}: the window of a run fired at "
        f"{rfc3339(at)}."
    )
    return True, Event("Normal", "RunAtStarted", message, key=key)


async def _resend(
    state: OperatorState,
    report: Mapping[str, Any],
    value: str,
    valid: bool,
    going: bool,
    create_once: CreateOnce,
) -> tuple[bool, Event]:
    key = contract.digest(value)
    annotation = contract.RESEND_ANNOTATION
    if not valid:
        return True, Event("Warning", "ResendRefused", "Not sent: the spec is invalid.", key=key)
    name = reruns.first_word(value)
    namespace = report["metadata"]["namespace"]
    # Only a name is read: the value never becomes a path of its own in the API URL.
    found = reruns.is_object_name(name)
    record = await state.kube.get(delivery_path(namespace, name)) if found else None
    names = groups.named((report.get("spec") or {}).get("recipients"))
    found_groups = await members_of(state.kube, namespace, names) if names else {}
    try:
        plan = reruns.plan_resend(report, record, name, found_groups)
    except ValueError as problem:
        return True, Event("Warning", "ResendRefused", f"Not sent: {problem}.", key=key)
    if going:
        message = f"{annotation}: waits for the run in progress to end (one run at a time)."
        return False, Event("Normal", "ResendWaiting", message, key=key)
    job = reruns.resend_job(report, _template(state, report), value, plan)
    if taken := await create_once(state, report, job):
        message = f"Not started: {taken}; set {annotation} to a new value to send."
        return True, Event("Warning", "ResendBlocked", message, key=key)
    message = (
        f"Started Job {job['metadata']['name']} for {annotation}: the window of {name} again, "
        f"to {', '.join(plan.addresses)} only."
    )
    return True, Event("Normal", "ResendStarted", message[:1000], key=key)
