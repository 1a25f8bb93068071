"""Exit codes and the one-line JSON result of a run: the contract with the operator.

Codes follow sysexits(3), so a retry policy can tell "try again" from "fix the report":
    0  delivered (SMTP accepted the message for at least one recipient), or skipped (an empty
       window with spec.delivery.skipIfEmpty: nothing was sent)
    65 permanent input failure: invalid spec, broken template, bad query, missing column
    69 permanent delivery failure: all recipients refused (5xx), AttachmentTooLarge, SMTP auth
       refused, TLS handshake failure
    75 transient failure: SMTP 4xx, timeout, connection refused, data source unreachable
    1  unexpected internal error (the operator treats it as transient)
    2  command-line usage error (argparse)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from tidings.redaction import redact as redact  # secrets and their base64 forms

EX_OK = 0
EX_SOFTWARE = 1
EX_USAGE = 2
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75

TRANSIENT = "transient"
PERMANENT = "permanent"

RESULT_MAX_BYTES = 4096
REPLY_MAX_CHARS = 100  # an SMTP reply kept per refused address once the line is too long
RECIPIENT_LISTS = ("to", "cc", "bcc")


class TidingsError(Exception):
    """A failure with a known cause; its message is safe to show (no secrets)."""

    exit_code: ClassVar[int] = EX_SOFTWARE
    failure: ClassVar[str] = TRANSIENT


class InputError(TidingsError):
    """The report cannot be rendered as written: fix the spec, template, query or data."""

    exit_code = EX_DATAERR
    failure = PERMANENT


class MissingColumn(InputError):
    """Rows lack a column the report type (or a filter) needs."""


class SourceUnavailable(TidingsError):
    """The data source could not be reached or answered with a server error; a retry may help."""

    exit_code = EX_TEMPFAIL
    failure = TRANSIENT


class DeliveryDeferred(TidingsError):
    """SMTP said "not now" (4xx), timed out or refused the connection; a retry may help."""

    exit_code = EX_TEMPFAIL
    failure = TRANSIENT


class RunTimedOut(TidingsError):
    """The run reached its deadline (failurePolicy.timeoutSeconds) and was stopped."""

    exit_code = EX_TEMPFAIL
    failure = TRANSIENT


class DeliveryRefused(TidingsError):
    """SMTP refused for good (5xx for every recipient, auth, TLS): a retry will not help."""

    exit_code = EX_UNAVAILABLE
    failure = PERMANENT


class AttachmentTooLarge(DeliveryRefused):
    """The encoded message exceeds the size guard or the server's advertised SIZE."""


@dataclass
class RunResult:
    """What one run did; serialized with the keys of models.HistoryEntry, plus what the
    operator's ReportDelivery record needs (addresses, attachments, rows, pages, attempts)."""

    outcome: str  # Delivered | Failed | Skipped (skipIfEmpty and an empty window: exit 0)
    failure: str | None = None  # None | transient | permanent
    scheduled_time: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    recipients_accepted: int = 0
    recipients_rejected: int = 0
    bytes: int = 0
    renderer: str | None = None  # pdf | text | None
    error: str = ""
    message_id: str = ""
    exit_code: int = EX_OK
    attempts: int = 0  # SMTP transactions started
    rows: int | None = None  # rows in the report after filters
    pages: int | None = None  # pages of the PDF
    attachments: list[dict[str, object]] = field(default_factory=list)  # name, bytes, sha256
    # {"to": {"accepted": [address], "refused": {address: reply}}, "cc": ..., "bcc": ...}
    addresses: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        return self.outcome == "Delivered"

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "failure": self.failure,
            "scheduledTime": self.scheduled_time,
            "windowStart": self.window_start,
            "windowEnd": self.window_end,
            "recipientsAccepted": self.recipients_accepted,
            "recipientsRejected": self.recipients_rejected,
            "bytes": self.bytes,
            "renderer": self.renderer,
            "error": self.error,
            "messageId": self.message_id,
            "attempts": self.attempts,
            "rows": self.rows,
            "pages": self.pages,
            "attachments": self.attachments,
            "addresses": self.addresses,
        }

    def to_json(self, max_bytes: int = RESULT_MAX_BYTES) -> str:
        """One line of JSON of at most max_bytes bytes (UTF-8). To fit, `error` is cut first
        (it repeats the refused addresses), then refused replies are shortened, then addresses
        are left out from the end (bcc refused first), counted in `addressesOmitted`."""
        data = self.as_dict()
        data["addresses"] = addresses = json.loads(json.dumps(self.addresses))
        line = _dumps(data)
        excess = len(line.encode()) - max_bytes
        error = self.error
        # JSON escaping can make a character cost more than its UTF-8 size: cut until it fits.
        while excess > 0 and error:
            cut = max(1, excess // 2)
            error = error[: max(0, len(error) - cut - 1)]
            data["error"] = error + "…"
            line = _dumps(data)
            excess = len(line.encode()) - max_bytes
        if excess > 0:
            for lists in addresses.values():
                refused = lists.get("refused") or {}
                for address, reply in refused.items():
                    refused[address] = str(reply)[:REPLY_MAX_CHARS]
            line = _dumps(data)
        omitted = 0
        while len(line.encode()) > max_bytes and _drop_last_address(addresses):
            omitted += 1
            data["addressesOmitted"] = omitted
            line = _dumps(data)
        return line


def _dumps(data: dict[str, object]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _drop_last_address(addresses: dict[str, dict[str, object]]) -> bool:
    """Remove one address, refused before accepted, bcc before cc before to; False if none."""
    for kind in ("refused", "accepted"):
        for name in reversed(RECIPIENT_LISTS):
            listed = (addresses.get(name) or {}).get(kind)
            if isinstance(listed, dict) and listed:
                listed.pop(next(reversed(listed)))
                return True
            if isinstance(listed, list) and listed:
                listed.pop()
                return True
    return False


def sort_addresses(
    lists: dict[str, Iterable[str]], accepted: Iterable[str], refused: dict[str, str]
) -> dict[str, dict[str, object]]:
    """Each of to/cc/bcc split into accepted addresses and refused ones with their reply.
    Addresses neither accepted nor refused (unconfirmed) are in neither."""
    taken = set(accepted)
    return {
        name: {
            "accepted": [a for a in lists.get(name, ()) if a in taken],
            "refused": {a: refused[a] for a in lists.get(name, ()) if a in refused},
        }
        for name in RECIPIENT_LISTS
        if lists.get(name)
    }


def failed(exc: TidingsError, **fields: object) -> RunResult:
    """The result for a run that ended with a known failure."""
    return RunResult(
        outcome="Failed",
        failure=exc.failure,
        error=str(exc),
        exit_code=exc.exit_code,
        **fields,  # type: ignore[arg-type]
    )
