"""The renderer's failures and its result: each failure class carries its exit code and failure
kind; the line and the codes themselves are tidings.contract's.

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

from collections.abc import Iterable
from typing import ClassVar

from pydantic import ConfigDict, Field

from tidings.contract import (
    EX_DATAERR,
    EX_OK,
    EX_SOFTWARE,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    RECIPIENT_LISTS,
    ResultLine,
)
from tidings.redaction import redact as redact  # secrets and their base64 forms

TRANSIENT = "transient"
PERMANENT = "permanent"


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


class RunResult(ResultLine):
    """A run's result line (tidings.contract.ResultLine) and the exit code the process ends
    with, which is not on the line."""

    model_config = ConfigDict(extra="forbid")  # a misspelled field is a bug here, not news

    exit_code: int = Field(default=EX_OK, exclude=True)


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
