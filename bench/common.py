"""What every benchmark shares: child processes measured on their own (wall time and peak RSS
from wait4, so one measurement's memory never leaks into the next), Markdown tables, and the
entry appended to docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks.md"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Child:
    seconds: float  # wall time from fork to exit
    peak_mib: float  # the child's own peak RSS (ru_maxrss of that pid alone)
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        """The last stdout line, which child modes print as JSON."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_child(
    argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900
) -> Child:
    """Run argv to completion and measure it alone. wait4 gives this pid's rusage, unlike
    RUSAGE_CHILDREN, which keeps the maximum over every child reaped so far."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=err
        )
        peak_mib = reap(process, timeout)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    child = Child(seconds, peak_mib, process.returncode, stdout, stderr)
    if child.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {child.returncode}:\n{stderr[-3000:]}")
    return child


def reap(process: subprocess.Popen, timeout: float) -> float:
    """Wait for `process` (killed after `timeout` s), set its returncode and return its own
    peak RSS in MiB. Reaped with wait4: Popen.wait() would discard the rusage."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, body: str, *, append: bool = True) -> None:
    """Print the result and append it, with when/where/how it was measured, to
    docs/benchmarks.md (newest last)."""
    command = shlex.join(["python3", *sys.orig_argv[1:]])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"### {title} — {stamp}\n\n"
        f"`{command}` · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{platform.machine()}\n"
    )
    entry = f"{header}\n{body.strip()}\n"
    print(entry)
    if append:
        with RESULTS.open("a", encoding="utf-8") as results:
            results.write("\n" + entry)
