"""Report reconcile, triggered by an event of the report or of its CronJob: validate, decide
(status.reconcile), make the CronJob match when something may have changed, start a run-now or
test-send Job, write status, post Events. Level-triggered and idempotent: every event leads to
the same reconcile, and nothing of the spec is kept on the report. A new report costs two
writes: its CronJob and its status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import contract, models
from tidings.controller import capacity, cronjob, run_outcome, status, testsend, zones
from tidings.controller.clock import next_fire, utc_now
from tidings.controller.cronjob_plan import Action, owned, plan_cronjob
from tidings.controller.kube import cronjob_path, job_path, report_path
from tidings.controller.rerun_start import start_chosen_windows
from tidings.controller.retry import Conflict, retry_on_conflict
from tidings.controller.run_checks import foreign_reason, refuse
from tidings.controller.spec_cache import spec_problems
from tidings.controller.state import OperatorState
from tidings.controller.status import Event
from tidings.controller.writes import patch_status, post_events

log = logging.getLogger("tidings.operator")


async def sync_or_retry_later(
    state: OperatorState,
    namespace: str,
    name: str,
    seen: Mapping[str, Any] | None = None,
    check_children: bool = False,
) -> None:
    """sync_report, retried later with backoff on failure: event handlers are not retried by
    kopf, and a level-triggered reconcile only needs to run again, with fresh reads."""
    try:
        await sync_report(state, namespace, name, seen, check_children)
    except Exception as exc:
        log.warning("reconciling %s/%s failed (%s); retrying", namespace, name, exc)
        _retry_later(state, namespace, name, attempt=1)


def _retry_later(state: OperatorState, namespace: str, name: str, attempt: int) -> None:
    key = (namespace, name)
    if key in state.retries:
        return

    async def retry() -> None:
        await asyncio.sleep(min(2**attempt, 60))
        state.retries.pop(key, None)
        try:
            await sync_report(state, namespace, name, check_children=True)
        except Exception as exc:
            log.warning("reconciling %s/%s failed again (%s)", namespace, name, exc)
            _retry_later(state, namespace, name, attempt + 1)

    state.retries[key] = asyncio.create_task(retry())


async def sync_report(
    state: OperatorState,
    namespace: str,
    name: str,
    seen: Mapping[str, Any] | None = None,
    check_children: bool = False,
) -> None:
    """Make the report's CronJob and status match its spec and annotations. Idempotent.

    `seen` is the report as the watch delivered it: the first attempt uses it rather than
    reading it again (the status write is conditional on its resourceVersion, so a stale copy
    costs a 409 and a re-read, never a lost update). The CronJob is read only when something
    may have changed it: a new generation or phase, a missing or edited CronJob, a run-now."""
    kube = state.kube

    async def attempt(number: int) -> None:
        report = seen if number == 0 and seen is not None else None
        if report is None:
            report = await kube.get(report_path(namespace, name))
        if report is None or report["metadata"].get("deletionTimestamp"):
            return  # garbage collection removes the children
        report = zones.effective(report, state.zone_defaults.get(namespace))
        current = report.get("status") or {}
        problems = spec_problems(report)  # once per generation
        pending = status.pending_run_now(report)
        busy = pending is not None and await _run_going(state, report)
        fires = capacity.jittered(
            next_fire, capacity.report_jitter(state.settings, report)
        )  # when runs start
        decision = status.reconcile(report, problems, utc_now(), fires, busy)
        first = current.get("observedGeneration") is None
        changed = report["metadata"].get("generation") != current.get(
            "observedGeneration"
        ) or decision.phase != current.get("phase")
        events: list[Event] = []
        if first or changed or check_children or decision.run_now:
            events += await apply_children(state, report, decision.phase, first)
        if decision.run_now:
            events.append(await start_run_now(state, report, decision.run_now))
        if busy and pending is not None:
            events.append(
                Event(
                    "Normal",
                    "RunNowWaiting",
                    f"{contract.RUN_NOW_ANNOTATION}: waits for the run in progress to end "
                    "(one run per report at a time).",
                    key=contract.digest(pending),
                )
            )
        test_fields, test_events = await start_test_send(state, report, not problems)
        events += test_events
        # run-at and resend (controller/reruns.py); a run-now started above counts as going.
        window_fields, window_events = await start_chosen_windows(
            state,
            report,
            not problems,
            lambda: _busy_after(state, report, bool(decision.run_now)),
            _create_once,
        )
        events += window_events
        if problem := state.zone_problems.get(namespace):
            events.append(Event("Warning", "NamespaceTimeZoneIgnored", problem, key=problem))
        await patch_status(kube, report, {**decision.change.status, **test_fields, **window_fields})
        events += decision.change.events
        await post_events(kube, state.instance, report, events, strict=False)

    async with state.locks[(namespace, name)]:
        await retry_on_conflict(attempt, f"reconcile {namespace}/{name}", delay=5)


async def _busy_after(state: OperatorState, report: Mapping[str, Any], started: bool) -> bool:
    return started or await _run_going(state, report)


async def _run_going(
    state: OperatorState, report: Mapping[str, Any], tests_only: bool = False
) -> bool:
    """Whether a run (`tests_only`: a test send) of this report is still going (not finished,
    not being deleted). Only the operator's own runs (run_ownership): a Job someone made with
    the report's labels cannot hold its run-nows or test sends back."""
    meta = report["metadata"]
    selector = f"{contract.REPORT_UID_LABEL}={meta['uid']}"
    for job in await state.kube.list(job_path(meta["namespace"]), selector):
        job_meta = job["metadata"]
        if run_outcome.job_finished(job) is not None or job_meta.get("deletionTimestamp"):
            continue
        if tests_only and not testsend.recipient_of(job):
            continue
        if job_meta["uid"] in state.own_jobs:
            return True
        if job_meta["uid"] not in state.foreign_jobs and not await foreign_reason(
            state, job, report
        ):
            return True
    return False


async def apply_children(
    state: OperatorState, report: Mapping[str, Any], phase: str, first: bool = False
) -> list[Event]:
    """Create or correct the CronJob (cronjob_plan decides); returns Events worth posting. A
    spec change updates it silently; only a CronJob someone else changed or deleted is worth a
    Warning. Conflict when the CronJob changed between read and write."""
    kube = state.kube
    namespace, report_name = report["metadata"]["namespace"], report["metadata"]["name"]
    name = cronjob.cronjob_name(report_name)
    path = cronjob_path(namespace, name)
    if phase == models.Phase.INVALID:
        # An invalid spec cannot be turned into a pod; just make sure nothing runs.
        existing = await kube.get(path)
        if existing and owned(existing, report) and not existing["spec"].get("suspend"):
            await kube.merge_patch(path, {"spec": {"suspend": True}})
        return []
    desired = cronjob.desired_cronjob(report, state.settings, status.suspends_cronjob(phase))
    # A report never reconciled has no CronJob yet: create at once, read only on a conflict.
    actual = None if first else await kube.get(path)
    if actual is None:
        plan = plan_cronjob(desired, None)
        try:
            created = await kube.create(cronjob_path(namespace), plan.body or {})
        except ApiException as exc:
            if exc.status != 409:
                raise
            actual = await kube.get(path)
            if actual is None:
                raise Conflict() from None
        else:
            # Known at once: the report's next event need not wait for the CronJob's.
            state.cronjobs[(namespace, report_name)] = created["metadata"]["uid"]
            state.remember_template(created)
            if first:
                return []
            message = f"CronJob {name} was deleted outside the ScheduledReport; recreated it."
            return [Event("Warning", "CronJobRecreated", message)]
    if not owned(actual, report):
        message = f"CronJob {name} already exists and is not owned by this report; rename one"
        events = [Event("Warning", "NameConflict", message)]
        await post_events(kube, state.instance, report, events, strict=False)
        raise kopf.TemporaryError(message, delay=60)
    plan = plan_cronjob(desired, actual)
    if plan.action is Action.LEAVE:
        return []
    try:
        state.remember_template(await kube.merge_patch(path, plan.body or {}))
    except ApiException as exc:
        if exc.status == 409:
            raise Conflict() from None
        raise
    if plan.reverts_hand_edit:
        message = (
            f"CronJob {name} was changed outside the ScheduledReport; restored it. "
            "Edit the ScheduledReport instead."
        )
        return [Event("Warning", "CronJobReverted", message)]
    return []


async def start_run_now(state: OperatorState, report: Mapping[str, Any], value: str) -> Event:
    """One Job from the CronJob's template, named from the value so retries cannot double it."""
    template = cronjob.desired_cronjob(report, state.settings, suspend=True)  # its jobTemplate
    job = cronjob.run_now_job(report, template, value, utc_now())
    if taken := await _create_once(state, report, job):
        return Event(
            "Warning",
            "RunNowBlocked",
            f"Not started: {taken}; set {contract.RUN_NOW_ANNOTATION} to a new value to run.",
            key=contract.digest(value),
        )
    return Event(
        "Normal",
        "RunNowStarted",
        f"Started Job {job['metadata']['name']} for {contract.RUN_NOW_ANNOTATION}.",
        key=contract.digest(value),
    )


async def start_test_send(
    state: OperatorState, report: Mapping[str, Any], valid: bool
) -> tuple[dict[str, Any], list[Event]]:
    """tidings.dev/send-test (controller.testsend): one Job to that address only, once per value,
    one at a time per report, at most TIDINGS_TEST_SENDS_PER_NAMESPACE_PER_HOUR per namespace.
    Returns the status fields that record it and the Events to post."""
    meta = report["metadata"]
    namespace = meta["namespace"]
    if valid and testsend.pending(report) and await _run_going(state, report, tests_only=True):
        address = testsend.requested(meta)
        message = (
            f"{testsend.ANNOTATION}={address}: waits for the test send in progress to end "
            "(one at a time per report)."
        )
        return {}, [Event("Normal", "TestSendWaiting", message, key=contract.digest(address))]
    fields, address, refused = testsend.decide(
        meta.get("annotations") or {}, report.get("status") or {}, valid
    )
    if refused:
        return fields, [Event("Warning", "TestSendRefused", f"Not sent: {refused}.")]
    if address is None:
        return fields, []
    limit = state.settings.test_sends_per_hour
    if not state.take_test_send(namespace, utc_now()):
        del fields["testSendCount"]  # handled, but nothing started
        message = (
            f"Not sent to {address}: namespace {namespace} started {limit} test sends in the "
            "last hour (operator.testSends.perNamespacePerHour); set the annotation again later."
        )
        return fields, [Event("Warning", "TestSendRateLimited", message)]
    template = await state.kube.get(cronjob_path(namespace, cronjob.cronjob_name(meta["name"])))
    if template is None:
        state.give_back_test_send(namespace)
        raise kopf.TemporaryError("the CronJob is not there yet", delay=2)
    test_job = testsend.test_job(template, address, fields["testSendCount"], utc_now())
    job = cronjob.owned_by_report(test_job, report)
    try:
        taken = await _create_once(state, report, job)
    except Exception:
        state.give_back_test_send(namespace)
        raise
    if taken:
        return fields, [Event("Warning", "TestSendRefused", f"Not sent: {taken}.")]
    name = job["metadata"]["name"]
    return fields, [Event("Normal", "TestSendStarted", f"Started Job {name}: to {address} only.")]


async def _create_once(
    state: OperatorState, report: Mapping[str, Any], job: dict[str, Any]
) -> str | None:
    """Create the Job. One of that name already there is the same run (a retry) only when it
    passes the ownership check; otherwise it is refused (run_checks) and why is returned."""
    namespace, name = report["metadata"]["namespace"], job["metadata"]["name"]
    try:
        await state.kube.create(job_path(namespace), job)
    except ApiException as exc:
        if exc.status != 409:
            raise
        existing = await state.kube.get(job_path(namespace, name))
        if existing is None:
            raise Conflict() from None  # gone since: the next attempt creates it
        if reason := await foreign_reason(state, existing, report):
            await refuse(state, existing, report, reason)
            return f"Job {name} already exists and is not a run of this report ({reason})"
    return None
