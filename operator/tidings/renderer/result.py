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
from dataclasses import dataclass
from typing import ClassVar

EX_OK = 0
EX_SOFTWARE = 1
EX_USAGE = 2
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75

TRANSIENT = "transient"
PERMANENT = "permanent"

RESULT_MAX_BYTES = 4096


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


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret (longest first) with ***."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


@dataclass
class RunResult:
    """What one run did; serialized with the keys of models.HistoryEntry."""

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
        }

    def to_json(self, max_bytes: int = RESULT_MAX_BYTES) -> str:
        """One line of JSON of at most max_bytes bytes (UTF-8); `error` is cut to fit."""
        data = self.as_dict()
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        excess = len(line.encode()) - max_bytes
        if excess > 0:
            error = self.error
            # JSON escaping can make a character cost more than its UTF-8 size: cut until it fits.
            while excess > 0 and error:
                cut = max(1, excess // 2)
                error = error[: max(0, len(error) - cut - 1)]
                data["error"] = error + "…"
                line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
                excess = len(line.encode()) - max_bytes
        return line


def failed(exc: TidingsError, **fields: object) -> RunResult:
    """The result for a run that ended with a known failure."""
    return RunResult(
        outcome="Failed",
        failure=exc.failure,
        error=str(exc),
        exit_code=exc.exit_code,
        **fields,  # type: ignore[arg-type]
    )
