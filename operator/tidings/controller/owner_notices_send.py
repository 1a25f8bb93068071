"""Owner notices (owner_notices decides), triggered by a counted run (job_outcomes): sent in the
background, never in a handler, through the delivery relay like any mail. The operator logs in
with its own projected service-account token (audience tidings.dev/relay) and a login naming
the report; the relay accepts only that report's admitted spec.owners (docs/relay.md).

Then the run's history entry says what became of it, and status.ownerNoticeSentAt moves when
one went. That write touches nothing else: a notice that cannot be sent never changes the
report's counters, phase or lastError. A crash between a run being counted and its notice
being sent loses that notice (logged nowhere else): the run's Events and status still say it.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from pathlib import Path
from typing import Any

from tidings.controller import owner_notices
from tidings.controller.clock import utc_now
from tidings.controller.kube import report_path
from tidings.controller.owner_notices import Notice
from tidings.controller.retry import retry_on_conflict
from tidings.controller.run_outcome import RunOutcome
from tidings.controller.settings import Settings
from tidings.controller.state import OperatorState
from tidings.controller.writes import patch_status
from tidings.schedule import rfc3339

log = logging.getLogger("tidings.operator")
SMTP_TIMEOUT = 30.0
DEFAULT_SENDER = "tidings@localhost"


class NoticeNotSent(Exception):
    """Why the relay did not take the notice (the text goes into the history entry)."""


def notify(
    state: OperatorState, report: dict[str, Any], outcome: RunOutcome, new_phase: str | None
) -> None:
    """Start the notice this counted run calls for, if any; returns at once."""
    notice = owner_notices.decide(report, outcome, new_phase)
    if notice is not None:
        state.spawn(deliver(state, notice))


async def deliver(state: OperatorState, notice: Notice) -> None:
    """Rate limit, send, record: one notice of a report at a time, so the second of two runs
    counted together sees the first one's ownerNoticeSentAt."""
    ns, name = notice.namespace, notice.report
    async with state.locks[(ns, f"{name}/owner-notice")]:
        try:
            report = await state.kube.get(report_path(ns, name))
            if report is None:
                return
            now = utc_now()
            settings = state.settings
            note = owner_notices.rate_limited(
                notice, report.get("status") or {}, now, settings.owner_notice_min_interval
            )
            sent_at = None
            if note is None:
                try:
                    await asyncio.to_thread(send, settings, notice)
                except (NoticeNotSent, OSError, smtplib.SMTPException) as error:
                    note = owner_notices.failed_note(notice, _reason(error))
                    log.warning("owner notice for %s/%s not sent: %s", ns, name, _reason(error))
                else:
                    note, sent_at = owner_notices.sent_note(notice), rfc3339(now)
                    log.info("owner notice %s for %s/%s sent", notice.kind, ns, name)
            await record(state, notice, note, sent_at)
        except Exception:  # a background task: say so, never take the operator down
            log.exception("owner notice for %s/%s failed", ns, name)


def send(settings: Settings, notice: Notice) -> None:
    """One SMTP transaction with the delivery relay (blocking: run in a thread)."""
    if not settings.relay_host:
        raise NoticeNotSent("no delivery relay (TIDINGS_RELAY_SERVICE or TIDINGS_RELAY_HOST)")
    try:
        token = Path(settings.owner_notice_token_file).read_text().strip()
    except OSError as error:
        raise NoticeNotSent(f"the operator's relay token is not readable: {error}") from None
    sender = settings.smtp_from or DEFAULT_SENDER
    mail = owner_notices.message(notice, sender, utc_now())
    with smtplib.SMTP(settings.relay_host, settings.relay_port, timeout=SMTP_TIMEOUT) as smtp:
        smtp.ehlo()
        smtp.login(notice.login, token)  # AUTH PLAIN: the token is the password
        refused = smtp.send_message(mail, from_addr=sender, to_addrs=list(notice.owners))
    if refused:
        shown = ", ".join(f"<{a}> {code}" for a, (code, _) in refused.items())
        raise NoticeNotSent(f"refused by the relay: {shown}")


def _reason(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = ", ".join(
            f"<{a}> {c} {t.decode(errors='replace')}" for a, (c, t) in error.recipients.items()
        )
        return f"refused by the relay: {codes}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code} {error.smtp_error.decode(errors='replace')}"
    return str(error) or type(error).__name__


async def record(state: OperatorState, notice: Notice, note: str, sent_at: str | None) -> None:
    """The run's history entry says it; ownerNoticeSentAt when one went. Nothing else."""
    ns, name = notice.namespace, notice.report

    async def attempt(_: int) -> None:
        report = await state.kube.get(report_path(ns, name))
        if report is None:
            return
        status = report.get("status") or {}
        history = [dict(h) for h in status.get("history") or ()]
        for entry in history:
            if entry.get("jobName") == notice.job:
                entry["ownerNotice"] = note[:512]
        fields: dict[str, Any] = {"history": history}
        if sent_at is not None:
            fields["ownerNoticeSentAt"] = sent_at
        await patch_status(state.kube, report, fields)

    async with state.locks[(ns, name)]:
        await retry_on_conflict(attempt, f"record the owner notice of {ns}/{name}")
