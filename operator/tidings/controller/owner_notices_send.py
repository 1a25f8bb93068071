"""Owner notices (owner_notices decides), triggered by a counted run (job_outcomes): sent in the
background, never in a handler, through the delivery relay like any mail. The operator logs in
with its own projected service-account token (audience tidings.dev/relay) and a login naming
the report; the relay accepts only that report's admitted spec.owners (docs/relay.md).

Then the run's history entry says what became of it, and status.ownerNoticeSentAt moves when
one went. That write touches nothing else: a notice that cannot be sent never changes the
report's counters, phase or lastError. What is owed is marked in the same status write that
counts the run (`<kind>: pending` in its history entry), so a notice the operator did not get
to send before it stopped is sent on the report's next event (every report has one at start).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Mapping
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


def owed_by(
    report: Mapping[str, Any], outcome: RunOutcome, change: dict[str, Any], new_phase: str | None
) -> Notice | None:
    """The notice this run calls for, marked pending in `change`'s history (so the status
    write that counts the run also records what is owed: a restart sends it still)."""
    after = {**report, "status": {**(report.get("status") or {}), **change}}
    notice = owner_notices.decide(after, outcome, new_phase)
    if notice is not None and "history" in change:
        change["history"] = owner_notices.mark_pending(change["history"], notice)
    return notice


def start(state: OperatorState, notice: Notice) -> None:
    """Send it in the background (once per process: a report event may find it owed too)."""
    key = f"{notice.namespace}/{notice.report}/{notice.notice_id}"
    if key in state.notices_in_flight:
        return
    state.notices_in_flight.add(key)

    async def run() -> None:
        try:
            await deliver(state, notice)
        finally:
            state.notices_in_flight.discard(key)

    state.spawn(run())


def resume(state: OperatorState, report: Mapping[str, Any]) -> None:
    """A report event: any notice its history still owes (an operator stopped between counting
    a run and sending) is sent now; the relay's dedupe stops a second copy."""
    for notice in owner_notices.owed(report):
        start(state, notice)


async def deliver(state: OperatorState, notice: Notice) -> None:
    """Rate limit, send, record: one notice of a report at a time, so the second of two runs
    counted together sees the first one's ownerNoticeSentAt."""
    ns, name = notice.namespace, notice.report
    async with state.locks[(ns, f"{name}/owner-notice")]:
        try:
            report = await state.kube.get(report_path(ns, name))
            if report is None or not _still_owed(report, notice):
                return  # gone, or its outcome is written already (a stale event's resume)
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


def _still_owed(report: Mapping[str, Any], notice: Notice) -> bool:
    history = (report.get("status") or {}).get("history") or ()
    entry = next((h for h in history if h.get("jobName") == notice.job), {})
    return bool(entry.get("ownerNotice") == owner_notices.pending_note(notice))


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
