"""delivery.deliver's decisions, with scripted transactions (pure: the SMTP I/O is tested
against real servers in test_smtp.py and test_smtp_faults.py). The property: whatever the
server does, no recipient gets more than two copies, and nobody is dropped silently."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.renderer.delivery import Delivery, deliver
from tidings.renderer.mail import Transaction
from tidings.renderer.result import DeliveryDeferred, DeliveryRefused

EVERYONE = ["a@example.com", "b@example.com", "c@example.com"]

# What a server may do with one transaction: refuse it before DATA, or answer each RCPT
# (ok / 4xx / 5xx) and then confirm, drop after DATA, or answer 4xx to DATA.
Step = tuple[str, dict[str, str]]


class Script:
    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.copies: Counter[str] = Counter()  # full transmissions per recipient
        self.calls: list[list[str]] = []

    def __call__(self, pending: Sequence[str]) -> Transaction:
        self.calls.append(list(pending))
        kind, rcpt = self.steps.pop(0) if self.steps else ("ok", {})
        if kind == "refuse-4xx":
            raise DeliveryDeferred("421 busy")
        if kind == "refuse-5xx":
            raise DeliveryRefused("554 go away")
        done = Transaction(accepted=[])
        for address in pending:
            reply = rcpt.get(address, "250")
            if reply == "250":
                done.accepted.append(address)
            elif reply.startswith("4"):
                done.temporary[address] = reply
            else:
                done.permanent[address] = reply
        if not done.accepted:
            return done
        if kind == "data-4xx":
            raise DeliveryDeferred("451 after DATA")
        self.copies.update(done.accepted)
        if kind == "drop":
            done.unconfirmed = "closed the connection"
        else:
            done.confirmed = True
        return done


def run(script: Script, retries: int) -> Delivery | Exception:
    try:
        return deliver(script, EVERYONE, retries, time.monotonic() + 3600, lambda s: None)
    except (DeliveryDeferred, DeliveryRefused) as error:
        return error


def test_drop_after_data_is_resent_once_and_never_again() -> None:
    script = Script([("drop", {})] * 10)
    done = run(script, retries=10)
    assert isinstance(done, Delivery)
    assert done.unconfirmed == EVERYONE and done.accepted == []
    assert set(script.copies.values()) == {2} and done.transmissions == 2


def test_a_greylisted_recipient_is_retried_alone() -> None:
    script = Script([("ok", {"b@example.com": "451 greylisted"}), ("ok", {})])
    done = run(script, retries=2)
    assert isinstance(done, Delivery) and sorted(done.accepted) == EVERYONE
    assert script.calls == [EVERYONE, ["b@example.com"]]
    assert set(script.copies.values()) == {1}


def test_still_refused_after_the_retries_is_named() -> None:
    script = Script(
        [("ok", {"b@example.com": "451 busy"})] + [("ok", {"b@example.com": "452 full"})] * 5
    )
    done = run(script, retries=2)
    assert isinstance(done, Delivery)
    assert done.refused == {"b@example.com": "452 full"} and len(script.calls) == 3


def test_nobody_reached_raises_the_classified_error() -> None:
    refused = run(Script([("ok", dict.fromkeys(EVERYONE, "550 no"))]), retries=3)
    assert isinstance(refused, DeliveryRefused)
    deferred = run(Script([("refuse-4xx", {})] * 5), retries=2)
    assert isinstance(deferred, DeliveryDeferred) and str(deferred) == "421 busy"


steps = st.lists(
    st.tuples(
        st.sampled_from(["ok", "drop", "data-4xx", "refuse-4xx", "refuse-5xx"]),
        st.dictionaries(
            st.sampled_from(EVERYONE), st.sampled_from(["250", "451 later", "550 no"]), max_size=3
        ),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, retries=st.integers(0, 10))
def test_no_recipient_ever_gets_a_third_copy_and_nobody_is_lost(
    steps: list[Step], retries: int
) -> None:
    script = Script(list(steps))
    done = run(script, retries)
    assert max(script.copies.values(), default=0) <= 2
    if isinstance(done, Delivery):
        # Every recipient is accounted for exactly once.
        outcome = done.accepted + list(done.refused) + done.unconfirmed
        assert sorted(outcome) == EVERYONE, done
        # Only one resend after an unknown outcome, ever.
        assert sum("one resend allowed" in note for note in done.notes) <= 1
        assert set(done.accepted).isdisjoint(done.unconfirmed)
    else:
        assert script.copies == Counter()  # nobody got it, and the error says why
