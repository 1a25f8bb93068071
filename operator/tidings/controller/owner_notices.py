"""Pure: whether a counted run tells the report's spec.owners, and the mail that does.

Three kinds: the report turned Disabled (always sent), a run failed permanently, recipients
were refused. The last two are rate-limited per report: none within the minimum interval
(TIDINGS_OWNER_NOTICE_MIN_INTERVAL_SECONDS, default 6 h) after status.ownerNoticeSentAt, which
lives in the report's status so the limit holds across operator restarts and leader changes.

Where a notice shows: the history entry of the run that caused it (`ownerNotice`). Not a
ReportDelivery: those are immutable evidence of a run, written before status counts it, and a
notice is decided and sent after that, asynchronously; the run's history entry is where its
outcome already is, so `kubectl tidings status` shows both together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from tidings import models
from tidings.contract import REACTIVATE_ANNOTATION, RUN_NOW_ANNOTATION
from tidings.controller.run_outcome import RunOutcome
from tidings.schedule import parse_rfc3339

DISABLED = "Disabled"
PERMANENT = "PermanentFailure"
REFUSED = "RecipientsRefused"


@dataclass(frozen=True)
class Notice:
    """One notice to a report's owners about one counted run."""

    kind: str  # DISABLED | PERMANENT | REFUSED
    namespace: str
    report: str
    job: str
    owners: tuple[str, ...]
    failures: int
    limit: int
    error: str

    @property
    def notice_id(self) -> str:
        """The relay's dedupe key for it: one notice of a kind per run."""
        return f"{self.job}:{self.kind}"

    @property
    def login(self) -> str:
        """The AUTH login naming the report (relay.policy.NOTICE_LOGIN_PREFIX)."""
        return f"owner-notice:{self.namespace}/{self.report}/{self.notice_id}"


def kind_of(outcome: RunOutcome, new_phase: str | None) -> str | None:
    """Which notice a counted run calls for, if any (test sends: none)."""
    if outcome.test_recipient:
        return None
    if new_phase == models.Phase.DISABLED:
        return DISABLED
    if not outcome.delivered and outcome.failure == "permanent":
        return PERMANENT
    if outcome.recipients_rejected > 0:
        return REFUSED
    return None


def decide(report: Mapping[str, Any], outcome: RunOutcome, new_phase: str | None) -> Notice | None:
    """The notice this run calls for (before the rate limit), or None."""
    spec = report.get("spec") or {}
    owners = tuple(str(a) for a in spec.get("owners") or ())
    kind = kind_of(outcome, new_phase)
    if not owners or kind is None:
        return None
    status = report.get("status") or {}
    meta = report.get("metadata") or {}
    limit = (spec.get("failurePolicy") or {}).get("disableAfter")
    return Notice(
        kind=kind,
        namespace=str(meta.get("namespace") or ""),
        report=str(meta.get("name") or ""),
        job=outcome.job_name,
        owners=owners,
        failures=int(status.get("consecutiveFailures") or 0),
        limit=limit if isinstance(limit, int) else models.FailurePolicy().disable_after,
        error=outcome.error or str(status.get("lastError") or ""),
    )


def rate_limited(
    notice: Notice, status: Mapping[str, Any], now: datetime, min_interval: int
) -> str | None:
    """Why the notice waits (a sentence for the history entry), or None when it goes."""
    if notice.kind == DISABLED:
        return None
    last = status.get("ownerNoticeSentAt")
    if not last:
        return None
    try:
        sent = parse_rfc3339(str(last))
    except ValueError:
        return None
    if now - sent >= timedelta(seconds=min_interval):
        return None
    return (
        f"{notice.kind}: not sent, rate-limited (the last notice went at {last}; at most one "
        f"per {min_interval}s, the Disabled notice excepted)"
    )


_SUBJECTS = {
    DISABLED: "is Disabled",
    PERMANENT: "failed permanently",
    REFUSED: "had recipients refused",
}


def message(notice: Notice, sender: str, now: datetime) -> EmailMessage:
    """The short mail: what failed, the last error, how to fix it and reactivate."""
    where = f"{notice.namespace}/{notice.report}"
    mail = EmailMessage()
    mail["Subject"] = f"[Tidings] report {where} {_SUBJECTS[notice.kind]}"
    mail["From"] = sender
    mail["To"] = ", ".join(notice.owners)
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = make_msgid("owner-notice")
    ns, name = notice.namespace, notice.report
    lines = [f"You are listed in spec.owners of the ScheduledReport {where}.", ""]
    if notice.kind == DISABLED:
        lines += [
            f"It is Disabled after {notice.failures} consecutive failed runs "
            f"(failurePolicy.disableAfter {notice.limit}): its CronJob is suspended, nothing "
            "is sent until it is reactivated.",
        ]
    elif notice.kind == PERMANENT:
        lines += [
            f"Run {notice.job} failed permanently: retrying will not help until the cause is "
            f"fixed ({notice.failures} of {notice.limit} failures before it is disabled)."
        ]
    else:
        lines += [f"Run {notice.job}: the mail server refused some recipients."]
    lines += [
        "",
        f"Run: {notice.job}",
        f"Last error: {notice.error or 'none recorded'}",
        "",
        "How to fix:",
        f"  kubectl tidings status {name} -n {ns}      # the error, the history, the Events",
        f"  kubectl describe sr {name} -n {ns}",
        "  Fix the cause (the recipients, a Secret, the query, the SMTP relay), then try one run:",
        f'  kubectl annotate sr {name} -n {ns} --overwrite {RUN_NOW_ANNOTATION}="$(date +%s)"',
    ]
    if notice.kind == DISABLED:
        lines += [
            "",
            "To reactivate (the failure count returns to 0, the schedule resumes):",
            f"  kubectl tidings reactivate {name} -n {ns}",
            f"  (or set the annotation {REACTIVATE_ANNOTATION}=<new value>, or change the spec)",
        ]
    lines += [
        "",
        "-- Tidings (at most one such mail per report in the rate-limit interval,",
        "   the Disabled notice excepted)",
    ]
    mail.set_content("\n".join(lines) + "\n")
    return mail


PENDING = "pending"


def pending_note(notice: Notice) -> str:
    """Written with the run's count: the notice is owed until its outcome replaces this."""
    return f"{notice.kind}: {PENDING}"


def mark_pending(history: list[dict[str, Any]], notice: Notice) -> list[dict[str, Any]]:
    """History with the run's entry marked as owing its notice."""
    return [
        {**h, "ownerNotice": pending_note(notice)} if h.get("jobName") == notice.job else h
        for h in history
    ]


def owed(report: Mapping[str, Any]) -> list[Notice]:
    """The notices a report's history still owes (counted, then the operator stopped before
    sending them): rebuilt from the entry, the current owners and status."""
    spec = report.get("spec") or {}
    owners = tuple(str(a) for a in spec.get("owners") or ())
    status = report.get("status") or {}
    meta = report.get("metadata") or {}
    limit = (spec.get("failurePolicy") or {}).get("disableAfter")
    found = []
    for entry in status.get("history") or ():
        kind, _, state = str(entry.get("ownerNotice") or "").partition(": ")
        if state != PENDING or kind not in _SUBJECTS or not owners:
            continue
        found.append(
            Notice(
                kind=kind,
                namespace=str(meta.get("namespace") or ""),
                report=str(meta.get("name") or ""),
                job=str(entry.get("jobName") or ""),
                owners=owners,
                failures=int(status.get("consecutiveFailures") or 0),
                limit=limit if isinstance(limit, int) else models.FailurePolicy().disable_after,
                error=str(entry.get("error") or status.get("lastError") or ""),
            )
        )
    return found


def sent_note(notice: Notice) -> str:
    return f"{notice.kind}: sent to {len(notice.owners)} owner(s)"


def failed_note(notice: Notice, reason: str) -> str:
    return f"{notice.kind}: not sent ({reason[:300]}); the counters are unchanged"
