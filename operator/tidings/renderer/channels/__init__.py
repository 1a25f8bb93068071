"""Destinations besides email (spec.delivery.channels), behind one interface: a Channel sends
one run's Summary once; `deliver_all` retries each with the SMTP failure classes (transient:
408, 429 and 5xx answers, timeouts, dropped connections; permanent: any other 4xx) within the
run's retries and deadline, honouring Retry-After. The kinds: webhook.py, slack.py, teams.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidings.renderer import delivery
from tidings.renderer.deadline import DeadlineExceeded, remaining
from tidings.renderer.mail import Attachment
from tidings.renderer.result import PERMANENT, TRANSIENT

log = logging.getLogger("tidings.renderer.channels")


def quiet_client_logs() -> None:
    """httpx logs each request's URL at INFO: a Teams workflow URL is a credential (its sig
    query) and a Slack upload URL is one for a while, so its request logs stay off."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


MAX_REPLY = 300  # characters of a destination's answer kept per channel


@dataclass(frozen=True)
class Summary:
    """What every channel says about one run: the report, its window, its figures, and how
    the email went (the outcome the channel reports)."""

    namespace: str
    report: str
    report_uid: str
    title: str
    report_type: str
    scheduled: str  # RFC 3339
    window_start: str
    window_end: str
    rows: int
    figures: dict[str, float | None]
    outcome: str  # the email's: Delivered | Failed
    attachments: list[Attachment] = field(default_factory=list)
    mailed: int = 0  # recipients that accepted the mail
    run: str = ""  # the Job's name: its ReportDelivery record is <run>-<uid start>

    def idempotency_key(self, channel: str) -> str:
        """The same for every attempt and every retried run of this report, window and
        channel; different for any other."""
        text = "|".join(
            (
                self.report_uid or f"{self.namespace}/{self.report}",
                self.window_start,
                self.window_end,
                channel,
            )
        )
        return "tidings-" + hashlib.sha256(text.encode()).hexdigest()[:40]

    def facts(self) -> list[tuple[str, str]]:
        """The summary as label/value lines, for the chat channels (Slack, Teams)."""
        shown = [
            ("Report", f"{self.title} ({self.namespace}/{self.report}, {self.report_type})"),
            ("Window", f"{self.window_start} to {self.window_end}"),
            ("Rows", str(self.rows)),
        ]
        shown += [
            (name, "-" if value is None else f"{value:g}")
            for name, value in self.figures.items()
            if name != "rows"
        ]
        mail = f"{self.outcome}, mailed to {self.mailed} recipient(s)"
        if self.run:
            mail += f"; record: the ReportDelivery of run {self.run}"
        return [*shown, ("Email", mail)]

    def document(self, channel: str) -> dict[str, Any]:
        return {
            "report": {
                "namespace": self.namespace,
                "name": self.report,
                "uid": self.report_uid,
                "title": self.title,
                "type": self.report_type,
            },
            "scheduledTime": self.scheduled,
            "window": {"start": self.window_start, "end": self.window_end},
            "rows": self.rows,
            "figures": self.figures,
            "outcome": self.outcome,
            "attachments": [
                {"name": a.filename, "bytes": len(a.content), "type": f"{a.maintype}/{a.subtype}"}
                for a in self.attachments
            ],
            "idempotencyKey": self.idempotency_key(channel),
        }


class ChannelFailed(Exception):
    """One attempt failed: `failure` transient or permanent, `retry_after` seconds asked by the
    destination (Retry-After), if any. The message is safe to show (no key, no body)."""

    def __init__(self, message: str, failure: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.retry_after = retry_after


class Channel(Protocol):
    """One destination of a run."""

    name: str  # e.g. webhook[0], as in spec.delivery.channels
    kind: str  # webhook | slack | teams
    destination: str  # the host, for status and the record

    def send(self, summary: Summary, deadline: float) -> str:
        """Deliver once; the destination's reply on success, ChannelFailed otherwise."""
        ...


@dataclass
class ChannelOutcome:
    """What one channel did in a run: the result line and the record carry it."""

    name: str
    kind: str
    destination: str
    accepted: bool
    reply: str
    attempts: int
    failure: str | None = None  # transient | permanent when not accepted
    idempotency_key: str = ""

    def line(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "destination": self.destination,
            "outcome": "accepted" if self.accepted else "refused",
            "failure": self.failure,
            "reply": self.reply[:MAX_REPLY],
            "attempts": self.attempts,
            "idempotencyKey": self.idempotency_key,
        }


def deliver_one(
    channel: Channel,
    summary: Summary,
    retries: int,
    deadline: float,
    sleep: Callable[[float], None],
) -> ChannelOutcome:
    """Send with retries of transient failures: the destination's Retry-After when it gives
    one, else the run's backoff; never past the deadline."""
    attempt = 0
    key = summary.idempotency_key(channel.name)
    while True:
        attempt += 1
        try:
            reply = channel.send(summary, deadline)
        except DeadlineExceeded:  # the mail's outcome must still reach the result line
            return ChannelOutcome(
                channel.name,
                channel.kind,
                channel.destination,
                False,
                "the run's deadline came while posting: not confirmed",
                attempt,
                TRANSIENT,
                key,
            )
        except ChannelFailed as error:
            delay = (
                error.retry_after if error.retry_after is not None else delivery.backoff(attempt)
            )
            last = error.failure != TRANSIENT or attempt > retries
            if last or remaining(deadline) <= delay:
                why = str(error)
                if not last:
                    why += f" (a retry in {delay:.0f}s would pass the run's deadline)"
                return ChannelOutcome(
                    channel.name,
                    channel.kind,
                    channel.destination,
                    False,
                    why[:MAX_REPLY],
                    attempt,
                    error.failure,
                    key,
                )
            log.warning(
                "%s: %s; retry %d/%d in %.0fs", channel.name, error, attempt, retries, delay
            )
            sleep(delay)
            continue
        return ChannelOutcome(
            channel.name,
            channel.kind,
            channel.destination,
            True,
            reply[:MAX_REPLY],
            attempt,
            None,
            key,
        )


def deliver_all(
    channels: Sequence[Channel],
    summary: Summary,
    retries: int,
    deadline: float,
    sleep: Callable[[float], None],
) -> list[ChannelOutcome]:
    """Every channel in turn (each one's failure is its own); none is started once the run's
    deadline has passed."""
    outcomes = []
    for channel in channels:
        if remaining(deadline) <= 0:
            outcomes.append(
                ChannelOutcome(
                    channel.name,
                    channel.kind,
                    channel.destination,
                    False,
                    "not tried: the run's deadline had passed",
                    0,
                    TRANSIENT,
                    summary.idempotency_key(channel.name),
                )
            )
            continue
        outcomes.append(deliver_one(channel, summary, retries, deadline, sleep))
    return outcomes


def note(outcomes: Sequence[ChannelOutcome]) -> str:
    """The refused channels, for the run's error line."""
    return "; ".join(
        f"channel {o.name} ({o.destination}) not delivered: {o.reply}"
        for o in outcomes
        if not o.accepted
    )


def worst_failure(outcomes: Sequence[ChannelOutcome]) -> str:
    """transient if any refused channel may succeed on a retry, else permanent."""
    refused = [o for o in outcomes if not o.accepted]
    return TRANSIENT if any(o.failure == TRANSIENT for o in refused) else PERMANENT
