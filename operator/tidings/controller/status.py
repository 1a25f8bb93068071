"""Pure report status: phase, conditions and the fields a reconcile or a finished Job's outcome
(run_outcome.py) gives the report's status.

Everything here takes plain mappings (the objects as the API returns them) and returns the new
status fields plus the Events to post; the handlers do the reading and writing. A finished Job
is applied at most once: its uid in status.countedJobs (or its name in status.history) is the
record that it was counted, until the Job itself carries the counted mark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings import display, models
from tidings.contract import REACTIVATE_ANNOTATION, RUN_NOW_ANNOTATION, digest, handled
from tidings.controller import status_guard, zones
from tidings.controller.objects import count, find_condition, truncate
from tidings.controller.run_outcome import RunOutcome
from tidings.schedule import rfc3339

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
class StatusChange:
    """Status fields to write (merged over the current status) and Events to post after."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)

    @property
    def phase(self) -> str | None:
        return self.status.get("phase")


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
    old = find_condition(conditions, type_)
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


def pending_run_now(report: Mapping[str, Any]) -> str | None:
    """The run-now value not acted on yet (status keeps its digest), or None."""
    annotations = (report.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(RUN_NOW_ANNOTATION, "")
    recorded = (report.get("status") or {}).get("runNowHandled", "")
    return value if value and not handled(value, recorded) else None


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
    written_over = status_guard.phase_written_over_disabled(status)
    disabled = disabled or written_over
    reactivate = annotations.get(REACTIVATE_ANNOTATION, "")
    reactivate_is_new = bool(reactivate) and not handled(
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
    elif written_over:
        message = status_guard.revert_message(meta.get("name", ""), status)
        events.append(Event("Warning", status_guard.EVENT_REASON, message))

    phase = compute_phase(spec, not problems, disabled)
    new["phase"] = phase
    new["observedGeneration"] = generation
    new["nextSendAt"] = _next_send_at(phase, spec, now, next_fire)
    new["timeZone"] = zones.zone_in_effect(spec)  # spec.timeZone or the namespace's (zones.py)
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

    new.update(display.status_fields(spec, {**status, **new}))  # the kubectl get columns

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
    failures = count(status.get("consecutiveFailures"))
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
            if outcome.rows_digest:  # the next run's sendWhen mode changed compares with it
                new["lastRowsDigest"] = outcome.rows_digest
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
    new.update(display.status_fields(spec, {**status, **new}))  # the kubectl get columns
    return StatusChange(new, events)


# ------------------------------------------------------------------------------ stuck runs


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
