"""A send that reached no SMTP server refused nobody: a newcomer saw `recipientsRejected: 3` for a
connection refused on README's `tidings send`. Refusals are what a server answered at RCPT."""

from __future__ import annotations

import time

import pytest
from tests.support.renderer_cli import send
from tests.support.renderer_reports import small_report

from tidings.renderer.delivery import deliver
from tidings.renderer.mail import Transaction
from tidings.renderer.result import EX_TEMPFAIL, DeliveryDeferred
from tidings_dev.procs import free_port

EVERYONE = ["a@example.com", "b@example.com", "c@example.com"]


def test_connection_refused_counts_no_recipient_as_rejected(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, None, small_report(), port=free_port())
    assert code == EX_TEMPFAIL
    assert "cannot connect to SMTP 127.0.0.1" in result["error"]
    assert (result["recipientsAccepted"], result["recipientsRejected"]) == (0, 0)
    for kind in ("to", "cc", "bcc"):
        assert result["addresses"][kind] == {"accepted": [], "refused": {}}, kind


def test_refused_at_rcpt_then_unreachable_stays_refused() -> None:
    """b was refused (451) by a server, then the retry found none: b is refused, with the
    server's reply; a and c, accepted at first, are delivered."""
    calls: list[list[str]] = []

    def transmit(pending):
        calls.append(list(pending))
        if len(calls) == 1:
            accepted = [a for a in pending if a != "b@example.com"]
            return Transaction(accepted, {"b@example.com": "451 later"}, confirmed=True)
        raise DeliveryDeferred("cannot connect")

    done = deliver(transmit, EVERYONE, 1, time.monotonic() + 60, lambda s: None)
    assert sorted(done.accepted) == ["a@example.com", "c@example.com"]
    assert done.refused == {"b@example.com": "cannot connect"} and done.unreached == {}
