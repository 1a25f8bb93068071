"""One deadline over a whole run: sockets, reads, template rendering and PDF alike.

Per-operation timeouts cannot bound a peer that drips one byte a second, nor a runaway
template, so the run arms a real-time timer: at the deadline SIGALRM raises DeadlineExceeded in
the main thread, which interrupts a blocking socket read, a sleep or any Python loop. It is a
BaseException so that no library's `except Exception` swallows it. Code that must know whether
it was interrupted mid-way (SMTP after DATA, a running SQL query) catches it, records what it
knows, and re-raises.

The pod is killed at `timeoutSeconds` after the Job started, which includes scheduling and
container start, so the run keeps a reserve (`budget`) to write its result line first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType


class DeadlineExceeded(BaseException):
    """The run's time is up."""


def budget(timeout_seconds: float) -> float:
    """Seconds the run itself may take out of failurePolicy.timeoutSeconds: 10% (at least 5 s,
    at most 30 s) is kept for pod start-up and writing the result before the Job's deadline."""
    reserve = min(30.0, max(5.0, timeout_seconds * 0.1))
    return max(1.0, timeout_seconds - reserve)


def hard_limit(timeout_seconds: float) -> float:
    """When the watchdog ends a run that the deadline could not interrupt (stuck in C code):
    halfway between the run's budget and the Job's deadline."""
    return (budget(timeout_seconds) + timeout_seconds) / 2


def watchdog(seconds: float, last_words: Callable[[], None], exit_code: int) -> threading.Timer:
    """A daemon timer that, if the run is still going after `seconds`, calls `last_words` (write
    the result line) and ends the process at once with `exit_code`."""

    def fire() -> None:
        try:
            last_words()
        finally:
            os._exit(exit_code)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def remaining(deadline: float) -> float:
    """Seconds left until `deadline` (a time.monotonic() value), never negative."""
    return max(0.0, deadline - time.monotonic())


def check(deadline: float) -> None:
    """Raise DeadlineExceeded once the deadline has passed (for loops without blocking I/O)."""
    if time.monotonic() >= deadline:
        raise DeadlineExceeded


@contextlib.contextmanager
def enforced(deadline: float) -> Iterator[None]:
    """Raise DeadlineExceeded in this (main) thread at `deadline`. Outside the main thread no
    signal can be delivered, and only the cooperative checks and socket timeouts apply."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, interrupt)
    # A deadline already past still interrupts, at once.
    signal.setitimer(signal.ITIMER_REAL, max(0.001, remaining(deadline)))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
