"""Delivery decisions over SMTP transactions: what to retry, what never to send again.

The budget, in any failure sequence: each recipient receives at most one copy more than its
first full transmission.

- A transaction that failed before the whole message went out (connection refused, 4xx to
  MAIL or DATA, a drop mid-send) transmitted nothing: it is retried with backoff, up to
  failurePolicy.retries times, while time remains.
- Recipients refused with 4xx at RCPT are retried alone, with the same message and Message-ID,
  under the same retry budget. Still refused at the end: the run is partially delivered and
  names them.
- A whole message sent without a reply (dropped connection or timeout after DATA) has an
  unknown outcome. The decision is made once: it is resent once, with the same Message-ID (mail
  clients show one copy), and never again; if that copy is unconfirmed too, the run says so.
- The Job starts no second pod (backoffLimit 0), so these are all the attempts there are.

`transmit` does the I/O (mail.transmit); everything here is decisions, testable with a fake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tidings.renderer.deadline import DeadlineExceeded
from tidings.renderer.deadline import remaining as deadline_remaining
from tidings.renderer.mail import Transaction
from tidings.renderer.result import TRANSIENT, DeliveryDeferred, DeliveryRefused, TidingsError

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


def backoff(attempt: int) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): 2, 4, 8, ... at most 60."""
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))


@dataclass
class Delivery:
    """What happened to each recipient, after every attempt the run made."""

    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # address -> last reply or reason
    # Never answered by a server (the connection or the transaction failed before RCPT): not
    # delivered, but not refused either, so not counted in recipientsRejected.
    unreached: dict[str, str] = field(default_factory=dict)  # address -> why
    unconfirmed: list[str] = field(default_factory=list)  # sent in full twice, never confirmed
    attempts: int = 0  # transactions started
    transmissions: int = 0  # transactions in which the whole message went out
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [*self.refused, *self.unreached, *self.unconfirmed]


def deliver(
    transmit: Callable[[Sequence[str]], Transaction],
    recipients: Sequence[str],
    retries: int,
    deadline: float,
    sleep: Callable[[float], None],
    log: Callable[[str], None] = lambda message: None,
    done: Delivery | None = None,
) -> Delivery:
    """Send to every recipient within `retries` retries and the deadline. Raises the last
    TidingsError only when nobody received or may have received the message; pass `done` to
    still see who was refused then (the delivery record lists them)."""
    done = done if done is not None else Delivery()
    pending = list(recipients)
    sent_unconfirmed: set[str] = set()  # may already hold a copy
    answered: set[str] = set()  # a server refused it at RCPT at least once
    resent = False  # the one resend after an unknown outcome has been used
    retried = 0
    last_error: TidingsError | None = None

    def may_retry(reason: str) -> bool:
        nonlocal retried
        delay = backoff(retried + 1)
        if retried >= retries or deadline_remaining(deadline) <= delay:
            return False
        retried += 1
        log(f"{reason}; retry {retried}/{retries} in {delay:.0f}s")
        sleep(delay)
        return True

    def give_up(reasons: dict[str, str], default: str) -> None:
        for address in pending:
            if address in sent_unconfirmed:
                done.unconfirmed.append(address)
            elif address in reasons or address in answered:
                done.refused[address] = reasons.get(address, default)
            else:
                done.unreached[address] = default

    try:
        while pending:
            done.attempts += 1
            try:
                outcome = transmit(pending)
            except TidingsError as error:  # nothing was transmitted in full
                last_error = error
                if error.failure == TRANSIENT and may_retry(str(error)):
                    continue
                give_up({}, str(error))
                break
            done.transmissions += outcome.transmitted
            for address, reply in outcome.permanent.items():
                if address in sent_unconfirmed:
                    done.unconfirmed.append(address)
                else:
                    done.refused[address] = reply
            pending = list(outcome.temporary)
            answered.update(outcome.temporary)
            if outcome.confirmed:
                done.accepted.extend(outcome.accepted)
            elif outcome.unconfirmed and not resent:
                resent = True  # decided once: one more copy, the same Message-ID
                sent_unconfirmed.update(outcome.accepted)
                pending = [*outcome.accepted, *pending]
                done.notes.append(f"outcome unknown ({outcome.unconfirmed}): one resend allowed")
            elif outcome.unconfirmed:
                sent_unconfirmed.update(outcome.accepted)
                done.unconfirmed.extend(outcome.accepted)
                done.notes.append(f"outcome unknown again ({outcome.unconfirmed}): not resent")
            if pending and not may_retry(f"{len(pending)} recipient(s) not delivered yet"):
                give_up(outcome.temporary, "not delivered")
                break
    except DeadlineExceeded:
        give_up({}, "not sent: the run's deadline came first")
        if not done.accepted and not done.unconfirmed:
            raise
    if not done.accepted and not done.unconfirmed:
        raise _nobody({**done.refused, **done.unreached}, last_error)
    return done


def _nobody(refused: dict[str, str], last_error: TidingsError | None) -> TidingsError:
    """Nobody received it: 69 when every refusal is final, else 75."""
    if last_error is not None and len(set(refused.values())) == 1:
        return last_error  # one cause for all, e.g. the relay is down
    details = "; ".join(f"{address}: {reply}" for address, reply in refused.items())
    if refused and all(reply[:1] == "5" for reply in refused.values()):
        return DeliveryRefused(f"every recipient was refused: {details}")
    return DeliveryDeferred(f"every recipient was refused, some temporarily: {details}")
