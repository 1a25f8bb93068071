"""Pure status logic: what a report's status should become after a reconcile or a finished Job.

Everything here takes plain mappings (the objects as the API returns them) and returns the new
status fields plus the Events to post; the handlers do the reading and writing. A finished Job
is applied at most once: its uid in status.countedJobs (or its name in status.history) is the
record that it was counted, until the Job itself carries the counted mark.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings import display, models
from tidings.controller import testsend
from tidings.controller.cronjob import (
    CONTAINER,
    NOT_STARTED_ANNOTATION,
    PERMANENT_EXIT_CODES,
    REACTIVATE_ANNOTATION,
    RUN_NOW_ANNOTATION,
    SCHEDULED_TIMESTAMP_ANNOTATION,
    digest,
)
from tidings.schedule import parse_rfc3339, rfc3339

READY = "Ready"
DELIVERED = "Delivered"
RUN_NOT_STARTED = "RunNotStarted"
# Delivered condition reason of a failed run, by failure kind.
FAILURE_REASONS = {
    "permanent": "PermanentFailure",
    "timeout": "Timeout",
    "notStarted": RUN_NOT_STARTED,
    "cancelled": "Cancelled",
}
MAX_ERROR = 1024
MAX_MESSAGE = 2048

# (schedule, time zone, after) -> next fire time; tidings.schedule.next_fire_time in production.
NextFire = Callable[[str, str, datetime], datetime | None]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the report: type Normal or Warning. Events with the same
    `key` and reason are one Event (posted at most once); no key means each is new."""

    type: str
    reason: str
    message: str
    key: str = ""


@dataclass(frozen=True)
class RunOutcome:
    """What one finished Job tells: taken from its pod's termination message where possible."""

    job_name: str
    delivered: bool
    failure: str | None  # transient | permanent | timeout | notStarted | cancelled; None if ok
    finished_at: str
    error: str = ""
    scheduled_time: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    recipients_accepted: int = 0
    recipients_rejected: int = 0
    bytes: int = 0
    renderer: str | None = None
    skipped: bool = False  # skipIfEmpty and an empty window: nothing sent, nothing failed
    test_recipient: str | None = (
        None  # a test send (tidings.controller.testsend): changes nothing else
    )
    message_id: str = ""
    job_uid: str = ""

    def history_entry(self) -> dict[str, Any]:
        entry = models.HistoryEntry(
            job_name=self.job_name,
            scheduled_time=self.scheduled_time,
            window_start=self.window_start,
            window_end=self.window_end,
            finished_at=self.finished_at,
            outcome=models.Outcome.SKIPPED
            if self.skipped
            else models.Outcome.DELIVERED
            if self.delivered
            else models.Outcome.FAILED,
            recipients_accepted=self.recipients_accepted,
            recipients_rejected=self.recipients_rejected,
            bytes=self.bytes,
            renderer=self.renderer,
            error=self.error,
            test_recipient=self.test_recipient,
            message_id=self.message_id,
        )
        return entry.model_dump(by_alias=True, exclude_none=True, mode="json")


@dataclass(frozen=True)
class StatusChange:
    """Status fields to write (merged over the current status) and Events to post after."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")


# ------------------------------------------------------------------------------ small helpers


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _normalize_time(text: str | None) -> str | None:
    """RFC 3339 UTC `Z` form; None for missing or unparsable input (status is informative)."""
    try:
        return rfc3339(parse_rfc3339(text)) if text else None
    except ValueError:
        return None


def _is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or ())


def _condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any]:
    return next((c for c in conditions or () if c.get("type") == type_), {})


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions with `type_` replaced; lastTransitionTime moves only when status flips.
    `status` None is Unknown."""
    value = "Unknown" if status is None else "True" if status else "False"
    old = _condition(conditions, type_)
    new = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": truncate(message, MAX_MESSAGE),
        "lastTransitionTime": old.get("lastTransitionTime")
        if old.get("status") == value and old.get("lastTransitionTime")
        else rfc3339(now),
        "observedGeneration": generation,
    }
    kept = [dict(c) for c in conditions or () if c.get("type") != type_]
    merged = [*kept, new]
    order = {READY: 0, DELIVERED: 1}
    return sorted(merged, key=lambda c: order.get(c.get("type", ""), 2))


def compute_phase(spec: Mapping[str, Any], valid: bool, disabled: bool) -> str:
    if not valid:
        return models.Phase.INVALID.value
    if disabled:
        return models.Phase.DISABLED.value
    if spec.get("suspend"):
        return models.Phase.PAUSED.value
    if not (spec.get("schedule") or "").strip():
        return models.Phase.MANUAL.value
    return models.Phase.ACTIVE.value


def suspends_cronjob(phase: str) -> bool:
    return phase != models.Phase.ACTIVE.value


def _disable_after(spec: Mapping[str, Any]) -> int:
    value = (spec.get("failurePolicy") or {}).get("disableAfter")
    return value if isinstance(value, int) and value > 0 else models.FailurePolicy().disable_after


def _ready(
    phase: str, spec: Mapping[str, Any], status: Mapping[str, Any], problems: Sequence[str]
) -> tuple[bool, str, str]:
    """(status, reason, message) of the Ready condition for a phase."""
    tz = spec.get("timeZone") or "UTC"
    if phase == models.Phase.ACTIVE:
        return True, "Scheduled", f"Runs on schedule '{spec.get('schedule')}' in {tz}."
    if phase == models.Phase.MANUAL:
        return True, "Manual", f"No schedule: runs when annotated {RUN_NOW_ANNOTATION}=<value>."
    if phase == models.Phase.PAUSED:
        return False, "Paused", "spec.suspend is true: no scheduled runs until it is false."
    if phase == models.Phase.INVALID:
        return False, "InvalidSpec", "; ".join(problems) or "the spec is invalid"
    failures = status.get("consecutiveFailures", 0)
    return (
        False,
        "Disabled",
        f"Disabled after {failures} consecutive failed runs (last error: "
        f"{status.get('lastError') or 'unknown'}). Fix the cause, then change the spec or set "
        f"the annotation {REACTIVATE_ANNOTATION}=<new value>.",
    )


def _next_send_at(phase: str, spec: Mapping[str, Any], now: datetime, next_fire: NextFire) -> Any:
    if phase != models.Phase.ACTIVE:
        return None
    moment = next_fire(spec.get("schedule") or "", spec.get("timeZone") or "UTC", now)
    return rfc3339(moment) if moment else None


# ---------------------------------------------------------------------------------- reconcile


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of looking at a report: its phase, the status to write, Events, and the
    run-now value to act on (None when there is nothing new to run)."""

    change: StatusChange
    run_now: str | None

    @property
    def phase(self) -> str:
        return self.change.status["phase"]


def _handled(value: str, recorded: str) -> bool:
    """Whether `recorded` (status) says `value` was acted on: its digest, or, as an operator
    before digests kept it, the value itself (so an upgrade does not act on it again)."""
    return recorded in (digest(value), value[:253])


def pending_run_now(report: Mapping[str, Any]) -> str | None:
    """The run-now value not acted on yet (status keeps its digest), or None."""
    annotations = (report.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(RUN_NOW_ANNOTATION, "")
    handled = (report.get("status") or {}).get("runNowHandled", "")
    return value if value and not _handled(value, handled) else None


def reconcile(
    report: Mapping[str, Any],
    problems: Sequence[str],
    now: datetime,
    next_fire: NextFire,
    busy: bool = False,
) -> Reconciliation:
    """Phase, Ready condition, nextSendAt, reactivation and run-now bookkeeping for a report.

    Disabled sticks until the spec changes (metadata.generation moves past observedGeneration)
    or the reactivate annotation carries a value not handled before; either resets the counter.
    Annotation values are compared by digest, so a value of any length acts exactly once.
    `busy`: a run of this report is still going, so a new run-now waits for it.
    """
    meta = report.get("metadata") or {}
    spec = report.get("spec") or {}
    status = report.get("status") or {}
    annotations = meta.get("annotations") or {}
    generation = meta.get("generation")
    old_phase = status.get("phase")
    events: list[Event] = []
    new: dict[str, Any] = {}

    disabled = old_phase == models.Phase.DISABLED
    reactivate = annotations.get(REACTIVATE_ANNOTATION, "")
    reactivate_is_new = bool(reactivate) and not _handled(
        reactivate, status.get("reactivateHandled", "")
    )
    if reactivate_is_new:
        new["reactivateHandled"] = digest(reactivate)
    if disabled and (generation != status.get("observedGeneration") or reactivate_is_new):
        why = (
            f"annotation {REACTIVATE_ANNOTATION}={truncate(reactivate, 80)}"
            if reactivate_is_new
            else "the spec changed"
        )
        disabled = False
        new["consecutiveFailures"] = 0
        events.append(Event("Normal", "Reactivated", f"Reactivated because {why}."))

    phase = compute_phase(spec, not problems, disabled)
    new["phase"] = phase
    new["observedGeneration"] = generation
    new["nextSendAt"] = _next_send_at(phase, spec, now, next_fire)
    ready, reason, message = _ready(phase, spec, {**status, **new}, problems)
    new["conditions"] = set_condition(
        status.get("conditions"), READY, ready, reason, message, now, generation
    )

    if phase != old_phase:
        if phase == models.Phase.INVALID:
            events.append(Event("Warning", "InvalidSpec", message))
        elif phase == models.Phase.PAUSED:
            events.append(Event("Normal", "Paused", "Paused: the CronJob is suspended."))
        elif old_phase == models.Phase.PAUSED:
            events.append(Event("Normal", "Resumed", f"Resumed; next run at {new['nextSendAt']}."))

    new.update(display.status_fields(spec, {**status, **new}))  # issue 15: printer columns

    run_now = pending_run_now(report)
    act_on: str | None = None
    if run_now is not None:
        if phase == models.Phase.INVALID:
            new["runNowHandled"] = digest(run_now)
            events.append(
                Event("Warning", "RunNowRefused", f"Not run: the spec is invalid ({message}).")
            )
        elif not busy:
            # Marked handled in the same status write that follows the Job's creation.
            new["runNowHandled"] = digest(run_now)
            act_on = run_now
    return Reconciliation(StatusChange(new, events), act_on)


# ------------------------------------------------------------------------------ Job outcomes


def parse_termination_message(text: str | None) -> dict[str, Any] | None:
    """The renderer's result: the last line of the termination message that is a JSON object."""
    for line in reversed((text or "").strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def job_finished(job: Mapping[str, Any]) -> bool | None:
    """True if the Job completed, False if it failed, None while it is still running."""
    conditions = (job.get("status") or {}).get("conditions")
    if _is_true(conditions, "Complete"):
        return True
    if _is_true(conditions, "Failed"):
        return False
    return None


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        if container.get("name") == CONTAINER:
            return (container.get("state") or {}).get("terminated") or {}
    return {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _scheduled_time(job: Mapping[str, Any], result: Mapping[str, Any]) -> str | None:
    """From the renderer's result; else the CronJob's annotation or the run-now env var."""
    if result.get("scheduledTime"):
        return _normalize_time(result["scheduledTime"])
    meta = job.get("metadata") or {}
    annotated = (meta.get("annotations") or {}).get(SCHEDULED_TIMESTAMP_ANNOTATION)
    if annotated:
        return _normalize_time(annotated)
    pod_spec = (((job.get("spec") or {}).get("template") or {}).get("spec")) or {}
    for container in pod_spec.get("containers") or ():
        for env in container.get("env") or ():
            if env.get("name") == "TIDINGS_SCHEDULED_TIME" and env.get("value"):
                return _normalize_time(env["value"])
    return _normalize_time(meta.get("creationTimestamp"))


def _last_terminated(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    return max(
        (t for t in map(_terminated, pods) if t),
        key=lambda t: t.get("finishedAt") or "",
        default={},
    )


def job_result(pods: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The renderer's result line from the Job's newest terminated pod ({} if none)."""
    return parse_termination_message(_last_terminated(pods).get("message")) or {}


def job_outcome(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: datetime
) -> RunOutcome | None:
    """The outcome of a finished Job (None while it runs), from its newest terminated pod.
    A Job deleted before it finished counts as a failed run (cancelled)."""
    meta = job.get("metadata") or {}
    finished = job_finished(job)
    if finished is None and not meta.get("deletionTimestamp"):
        return None
    job_status = job.get("status") or {}
    failed_condition = _condition(job_status.get("conditions"), "Failed")
    terminated = _last_terminated(pods)
    result = job_result(pods)
    exit_code = terminated.get("exitCode")
    finished_at = (
        _normalize_time(terminated.get("finishedAt"))
        or _normalize_time(job_status.get("completionTime"))
        or _normalize_time(failed_condition.get("lastTransitionTime"))
        or rfc3339(now)
    )
    failure: str | None = None
    # A delivered run's `error` says who is missing ("partially delivered: ...") or notes an
    # unknown SMTP outcome; it belongs in status too.
    error = str(result.get("error") or "") if finished else ""
    not_started = (meta.get("annotations") or {}).get(NOT_STARTED_ANNOTATION)
    if not finished:
        job_reason = failed_condition.get("reason", "")
        if not_started and not terminated:
            # The pod never ran: say why, not "exceeded its timeout" (the run was not slow).
            failure = "notStarted"
            error = f"the run never started: {not_started}"
        elif finished is None:
            failure = "cancelled"
            error = "the Job was deleted before it finished"
        elif job_reason == "DeadlineExceeded":
            failure = "timeout"
            deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
            error = f"the run exceeded its timeout of {deadline}s (failurePolicy.timeoutSeconds)"
        elif result.get("failure") in ("transient", "permanent"):
            failure = result["failure"]
        elif exit_code in PERMANENT_EXIT_CODES or job_reason == "PodFailurePolicy":
            failure = "permanent"
        else:
            failure = "transient"
        if not error:
            error = str(result.get("error") or "")
        if not error and terminated.get("message") and not result:
            error = terminated["message"].strip()[-MAX_ERROR:]  # log tail fallback
        if not error:
            error = (
                f"the renderer exited with code {exit_code}"
                + (f" ({terminated['reason']})" if terminated.get("reason") else "")
                if exit_code is not None
                else failed_condition.get("message") or "the run failed"
            )
        attempts = _int(job_status.get("failed"))
        if failure == "transient" and attempts > 1:
            error = f"{error} (after {attempts} attempts)"
    return RunOutcome(
        job_name=meta["name"],
        job_uid=meta.get("uid", ""),
        delivered=bool(finished),
        failure=failure,
        finished_at=finished_at,
        error=truncate(error, MAX_ERROR),
        scheduled_time=_scheduled_time(job, result),
        window_start=_normalize_time(result.get("windowStart")),
        window_end=_normalize_time(result.get("windowEnd")),
        recipients_accepted=_int(result.get("recipientsAccepted")),
        recipients_rejected=_int(result.get("recipientsRejected")),
        bytes=_int(result.get("bytes")),
        renderer=result.get("renderer") if result.get("renderer") in ("pdf", "text") else None,
        skipped=finished and result.get("outcome") == models.Outcome.SKIPPED,
        test_recipient=testsend.recipient_of(job),
        message_id=str(result.get("messageId") or "")[:998],
    )


def testsend_event(outcome: RunOutcome) -> Event:
    where = f"Test send {outcome.job_name} to {outcome.test_recipient}"
    if outcome.delivered:
        return Event("Normal", "TestSent", f"{where} delivered{_note(outcome.error)}.")
    return Event("Warning", "TestFailed", f"{where} failed ({outcome.failure}): {outcome.error}")


def _note(error: str) -> str:
    return f"; {error}" if error else ""


def _run_order(entry: Mapping[str, Any]) -> tuple[str, str]:
    """A history entry's place in time: finish, then scheduled time (both RFC 3339 UTC)."""
    return (entry.get("finishedAt") or "", entry.get("scheduledTime") or "")


def already_recorded(status: Mapping[str, Any] | None, job_name: str, job_uid: str = "") -> bool:
    status = status or {}
    if job_uid and job_uid in (status.get("countedJobs") or ()):
        return True
    return any(h.get("jobName") == job_name for h in status.get("history") or ())


def apply_outcome(
    report: Mapping[str, Any], outcome: RunOutcome, now: datetime, next_fire: NextFire
) -> StatusChange | None:
    """The status after one finished run, or None if this Job was already counted.

    Runs may be seen out of order (after a restart both Jobs are listed at once), so the
    counter and the "last" fields follow finish times, not the order of arrival; runs that
    finished in the same second (times have second resolution) are ordered by scheduled time.
    """
    status = report.get("status") or {}
    if already_recorded(status, outcome.job_name, outcome.job_uid):
        return None
    spec = report.get("spec") or {}
    meta = report.get("metadata") or {}
    name = meta.get("name", "")
    generation = status.get("observedGeneration")
    everything = status.get("history") or ()
    entry = outcome.history_entry()
    history = sorted([entry, *everything], key=_run_order, reverse=True)
    new: dict[str, Any] = {"history": history[: models.MAX_HISTORY]}
    if outcome.job_uid:
        counted = [outcome.job_uid, *(status.get("countedJobs") or ())]
        new["countedJobs"] = counted[: models.MAX_COUNTED]
    if outcome.test_recipient:
        return StatusChange(new, [testsend_event(outcome)])
    # Test sends are in the log but count for nothing below.
    earlier = [h for h in everything if not h.get("testRecipient")]
    history = [h for h in history if not h.get("testRecipient")]

    this_run = _run_order(entry)
    last_attempt = max(map(_run_order, earlier), default=("", ""))
    last_attempt = max(last_attempt, (status.get("lastAttemptAt") or "", ""))
    delivered_before = (h for h in earlier if h.get("outcome") == models.Outcome.DELIVERED)
    last_sent = max(map(_run_order, delivered_before), default=("", ""))
    last_sent = max(last_sent, (status.get("lastSentAt") or "", ""))
    failures = _int(status.get("consecutiveFailures"))
    newest = this_run >= last_attempt
    if newest:
        new["lastAttemptAt"] = outcome.finished_at
    events: list[Event] = []

    if outcome.skipped:
        # Neither a delivery nor a failure: lastSentAt, the counter and lastError stay.
        events.append(Event("Normal", "Skipped", f"Run {outcome.job_name}: {outcome.error}."))
    elif outcome.delivered:
        if this_run > last_sent:
            new["lastSentAt"] = outcome.finished_at
            # Failures that finished after this success still count.
            later = sum(
                1
                for h in history
                if h.get("outcome") == models.Outcome.FAILED and _run_order(h) > this_run
            )
            new["consecutiveFailures"] = min(failures, later)
            if newest:
                new["lastError"] = ""
        accepted, rejected = outcome.recipients_accepted, outcome.recipients_rejected
        summary = f"Run {outcome.job_name} delivered to {accepted} recipient(s)"
        if rejected:
            summary += f", {rejected} rejected"
        if outcome.renderer == "text":
            summary += "; plain-text attachment (PDF renderer unavailable)"
        if outcome.error:
            summary += f"; {outcome.error}"
        partial = outcome.error.startswith("partially delivered")
        events.append(Event("Warning" if partial else "Normal", "Delivered", summary + "."))
        reason = "PartiallyDelivered" if partial else "Delivered"
        delivered_condition = (True, reason, summary + ".")
    else:
        if this_run > last_sent:
            failures += 1
            new["consecutiveFailures"] = failures
            if newest:
                new["lastError"] = outcome.error
        limit = _disable_after(spec)
        reason = FAILURE_REASONS.get(outcome.failure or "", "TransientFailure")
        message = f"Run {outcome.job_name} failed ({outcome.failure}): {outcome.error}"
        events.append(
            Event("Warning", "RunFailed", f"{message} [{failures}/{limit} before disable]")
        )
        delivered_condition = (False, reason, message)
        phase = status.get("phase")
        if failures >= limit and phase not in (models.Phase.DISABLED, models.Phase.INVALID):
            new["phase"] = models.Phase.DISABLED.value
            new["nextSendAt"] = None
            disabled_status = {**status, **new}
            ready, why, text = _ready(models.Phase.DISABLED.value, spec, disabled_status, ())
            new["conditions"] = set_condition(
                status.get("conditions"), READY, ready, why, text, now, generation
            )
            events.append(Event("Warning", "Disabled", f"{name}: {text}"))

    if newest and not outcome.skipped:
        ok, reason, message = delivered_condition
        base = new.get("conditions", status.get("conditions"))
        new["conditions"] = set_condition(base, DELIVERED, ok, reason, message, now, generation)
    phase = new.get("phase", status.get("phase"))
    if phase == models.Phase.ACTIVE:
        new["nextSendAt"] = _next_send_at(phase, spec, now, next_fire)
    new.update(display.status_fields(spec, {**status, **new}))  # issue 15: printer columns
    return StatusChange(new, events)


# ------------------------------------------------------------------------------ stuck runs


def _pod_started(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") in ("Running", "Succeeded", "Failed"):
        return True
    return any(
        (c.get("state") or {}).keys() & {"running", "terminated"}
        for c in status.get("containerStatuses") or ()
    )


def _pod_reason(pod: Mapping[str, Any]) -> str:
    """Why a pod is not running, in the pod's own words (reason: message)."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or ():
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return f"{waiting['reason']}: {waiting.get('message') or 'no message'}"
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = condition.get("reason") or "Unschedulable"
            return f"{reason}: {condition.get('message') or 'no message'}"
    return f"Pending: {status.get('reason') or 'the pod has not been scheduled or started yet'}"


def not_started_reason(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the Job's run has not started (its newest pod's reason), or None if it has, or if
    the Job is ending (the Job controller removes the pods of a Job past its deadline first)."""
    conditions = (job.get("status") or {}).get("conditions")
    ending = _is_true(conditions, "FailureTarget") or _is_true(conditions, "SuccessCriteriaMet")
    if ending or job_finished(job) is not None or any(map(_pod_started, pods)):
        return None
    if not pods:
        # No pod at all: a quota, an admission policy or a missing service account.
        detail = next((c.get("message") for c in conditions or () if c.get("message")), None)
        return f"NoPod: {detail or 'the Job controller has created no pod (quota or admission?)'}"
    newest = max(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    return truncate(_pod_reason(newest), 512)


def run_not_started(
    report: Mapping[str, Any], job_name: str, reason: str, bound: int, now: datetime
) -> StatusChange:
    """Delivered=Unknown with the pod's reason, and one Warning."""
    status = report.get("status") or {}
    message = f"Run {job_name} has not started after {bound}s: {reason}"
    conditions = set_condition(
        status.get("conditions"),
        DELIVERED,
        None,
        RUN_NOT_STARTED,
        message,
        now,
        status.get("observedGeneration"),
    )
    return StatusChange({"conditions": conditions}, [Event("Warning", RUN_NOT_STARTED, message)])
