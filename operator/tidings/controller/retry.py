"""One retry loop for every conditional write: read, decide, write with the resourceVersion
read; when the object changed in between (409), read again and decide again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import kopf
from kubernetes.client.exceptions import ApiException

ATTEMPTS = 8  # conflicting writes (or transient API errors) before giving up on an event

T = TypeVar("T")
log = logging.getLogger("tidings.operator")


class Conflict(Exception):
    """An object changed between read and conditional write: read again and retry."""


def _transient(exc: Exception) -> bool:
    if isinstance(exc, kopf.TemporaryError):
        return True
    return isinstance(exc, ApiException) and (exc.status >= 500 or exc.status in (409, 429))


async def retry_on_conflict(
    step: Callable[[int], Awaitable[T]],
    what: str,
    *,
    transient: bool = False,
    delay: float | None = None,
) -> T:
    """`step(attempt)` until it returns without a Conflict, at most ATTEMPTS times; then
    kopf.TemporaryError("could not <what>: it kept changing"). With `transient`, API errors a
    retry may fix (5xx, 409, 429, kopf.TemporaryError) are retried too, with backoff."""
    for attempt in range(ATTEMPTS):
        try:
            return await step(attempt)
        except Conflict:
            continue
        except Exception as exc:
            if not (transient and _transient(exc)):
                raise
            log.warning("%s failed (%s); retrying", what, exc)
            await asyncio.sleep(min(2**attempt, 30))
    raise kopf.TemporaryError(f"could not {what}: it kept changing", delay=delay)
