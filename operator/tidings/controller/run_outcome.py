"""Pure Job outcomes: what a finished Job of a report tells (its conditions, its pod's exit code
and the renderer's result line, tidings.contract.ResultLine), and why a run has not started.
status.py turns an outcome into the report's new status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tidings import models
from tidings.contract import (
    NOT_STARTED_ANNOTATION,
    PERMANENT_EXIT_CODES,
    SCHEDULED_TIMESTAMP_ANNOTATION,
    MalformedResult,
    ResultLine,
    result_from_message,
)
from tidings.controller import testsend
from tidings.controller.cronjob import CONTAINER
from tidings.controller.objects import (
    condition_is_true,
    count,
    find_condition,
    normalize_time,
    truncate,
)
from tidings.redaction import redact
from tidings.schedule import rfc3339
from tidings.sendwhen import is_digest

MAX_ERROR = 1024


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
    rows_digest: str | None = None  # sha256 of the window's rows (sendWhen mode changed)
    channels: tuple[str, ...] = ()  # each channel's outcome, e.g. "webhook[0] accepted"

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
            channels=list(self.channels),
        )
        dumped = entry.model_dump(by_alias=True, exclude_none=True, mode="json")
        if not dumped["channels"]:
            del dumped["channels"]  # a run without channels reads as before
        return dumped


def channel_summary(result: ResultLine | None) -> tuple[str, ...]:
    """Each channel's outcome in a line for status history: `webhook[0] accepted`."""
    if result is None:
        return ()
    return tuple(
        truncate(f"{c.name} {'accepted' if c.outcome == 'accepted' else 'refused'}", 300)
        for c in result.channels[: models.MAX_CHANNELS]
    )


def job_finished(job: Mapping[str, Any]) -> bool | None:
    """True if the Job completed, False if it failed, None while it is still running."""
    conditions = (job.get("status") or {}).get("conditions")
    if condition_is_true(conditions, "Complete"):
        return True
    if condition_is_true(conditions, "Failed"):
        return False
    return None


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        if container.get("name") == CONTAINER:
            return (container.get("state") or {}).get("terminated") or {}
    return {}


def _scheduled_time(job: Mapping[str, Any], result: ResultLine | None) -> str | None:
    """From the renderer's result; else the CronJob's annotation or the run-now env var."""
    if result and result.scheduled_time:
        return normalize_time(result.scheduled_time)
    meta = job.get("metadata") or {}
    annotated = (meta.get("annotations") or {}).get(SCHEDULED_TIMESTAMP_ANNOTATION)
    if annotated:
        return normalize_time(annotated)
    pod_spec = (((job.get("spec") or {}).get("template") or {}).get("spec")) or {}
    for container in pod_spec.get("containers") or ():
        for env in container.get("env") or ():
            if env.get("name") == "TIDINGS_SCHEDULED_TIME" and env.get("value"):
                return normalize_time(env["value"])
    return normalize_time(meta.get("creationTimestamp"))


def _last_terminated(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    return max(
        (t for t in map(_terminated, pods) if t),
        key=lambda t: t.get("finishedAt") or "",
        default={},
    )


def read_result(pods: Sequence[Mapping[str, Any]]) -> tuple[ResultLine | None, str]:
    """The renderer's result line from the Job's newest terminated pod, and, when there is
    none to use, why: "malformed result line: <reason>" or "no result line (...)". Both
    empty when no pod ended at all (the Job's own reason says why)."""
    terminated = _last_terminated(pods)
    try:
        result = result_from_message(terminated.get("message"))
    except MalformedResult as exc:
        return None, str(exc)
    if result is not None or not terminated:
        return result, ""
    reason, code = terminated.get("reason") or "", terminated.get("exitCode")
    if reason and reason not in ("Error", "Completed"):
        return None, f"no result line (pod killed: {reason})"
    return None, f"no result line (the renderer exited with code {code})"


def job_result(pods: Sequence[Mapping[str, Any]]) -> ResultLine | None:
    """The renderer's result line, or None when there is none or it is malformed."""
    return read_result(pods)[0]


def job_outcome(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: datetime
) -> RunOutcome | None:
    """The outcome of a finished Job (None while it runs), from its newest terminated pod.
    A Job deleted before it finished counts as a failed run (cancelled). A run without a
    usable result line (none, or malformed) fails, whatever its exit code, saying which."""
    meta = job.get("metadata") or {}
    finished = job_finished(job)
    if finished is None and not meta.get("deletionTimestamp"):
        return None
    job_status = job.get("status") or {}
    failed_condition = find_condition(job_status.get("conditions"), "Failed")
    terminated = _last_terminated(pods)
    result, problem = read_result(pods)
    if finished and result is None:
        problem = problem or "no result line (no pod of the Job was found)"
    exit_code = terminated.get("exitCode")
    finished_at = (
        normalize_time(terminated.get("finishedAt"))
        or normalize_time(job_status.get("completionTime"))
        or normalize_time(failed_condition.get("lastTransitionTime"))
        or rfc3339(now)
    )
    delivered = bool(finished) and not problem
    failure: str | None = None
    # A delivered run's `error` says who is missing ("partially delivered: ...") or notes an
    # unknown SMTP outcome; it belongs in status too.
    error = result.error if delivered and result else ""
    not_started = (meta.get("annotations") or {}).get(NOT_STARTED_ANNOTATION)
    if not delivered:
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
        elif result and result.failure in ("transient", "permanent"):
            failure = result.failure
        elif exit_code in PERMANENT_EXIT_CODES or job_reason == "PodFailurePolicy":
            failure = "permanent"
        else:
            failure = "transient"
        if not error and result:
            error = result.error
        if not error and problem:
            tail = (terminated.get("message") or "").strip()
            malformed = problem.startswith("malformed")
            error = f"{problem}: {tail[-MAX_ERROR:]}" if tail and not malformed else problem
        if not error:
            error = failed_condition.get("message") or "the run failed"
        attempts = count(job_status.get("failed"))
        if failure == "transient" and attempts > 1:
            error = f"{error} (after {attempts} attempts)"
    return RunOutcome(
        job_name=meta["name"],
        job_uid=meta.get("uid", ""),
        delivered=delivered,
        failure=failure,
        finished_at=finished_at,
        # A relay may quote what it was sent (an AUTH PLAIN blob in a 535 reply): masked even
        # without knowing the secret, before status, Events and the record see it.
        error=truncate(redact(error, ()), MAX_ERROR),
        scheduled_time=_scheduled_time(job, result),
        window_start=normalize_time(result.window_start) if result else None,
        window_end=normalize_time(result.window_end) if result else None,
        recipients_accepted=result.recipients_accepted if result else 0,
        recipients_rejected=result.recipients_rejected if result else 0,
        bytes=result.bytes if result else 0,
        renderer=result.renderer if result and result.renderer in ("pdf", "text") else None,
        skipped=bool(delivered and result and result.outcome == models.Outcome.SKIPPED),
        test_recipient=testsend.recipient_of(job),
        message_id=result.message_id[:998] if result else "",
        rows_digest=result.rows_digest if result and is_digest(result.rows_digest) else None,
        channels=channel_summary(result),
    )


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
    ending = any(condition_is_true(conditions, t) for t in ("FailureTarget", "SuccessCriteriaMet"))
    if ending or job_finished(job) is not None or any(map(_pod_started, pods)):
        return None
    if not pods:
        # No pod at all: a quota, an admission policy or a missing service account.
        detail = next((c.get("message") for c in conditions or () if c.get("message")), None)
        return f"NoPod: {detail or 'the Job controller has created no pod (quota or admission?)'}"
    newest = max(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    return truncate(_pod_reason(newest), 512)
