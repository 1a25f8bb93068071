"""py-spy on a running process, and where its samples went, as a Markdown table.

    sampler = attach(pid, Path("burst.txt")); ...; text = detach(sampler, Path("burst.txt"))

`py-spy record --format raw` writes collapsed stacks ("frame;frame;... count"). Each sample is
counted once, under the first of PARTS (in that order) that any frame of its stack is in: a
sample inside validation that ends in pydantic is validation's, not pydantic's.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.common import table

# (part, substrings of a frame's "function (file:line)"): the first part that matches wins.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("validating a report (tidings.validation, pydantic, croniter)",
     ("tidings/validation", "pydantic", "croniter")),
    ("the spec snapshot's YAML (tidings.snapshot, yaml)", ("tidings/snapshot.py", "/yaml/")),
    ("the CronJob body (tidings.controller.cronjob)", ("tidings/controller/cronjob.py",)),
    ("kopf copying and diffing bodies (copy.deepcopy, kopf diffs)",
     ("deepcopy", "kopf/_cogs/structs/diffs", "kopf/_cogs/structs/bodies")),
    ("the kubernetes client (sync, worker threads: urllib3, ssl, JSON)",
     ("kubernetes/client", "urllib3", "concurrent/futures/thread")),
    ("aiohttp (kopf's watches; the async writes)", ("aiohttp", "tidings/controller/kube.py")),
    ("JSON elsewhere", ("json/",)),
    ("kopf's per-event machinery (queues, workers, handlers, logging)", ("kopf/",)),
    ("tidings, other", ("tidings/",)),
    ("asyncio and the rest", ("",)),
]  # fmt: skip


def attach(pid: int, out: Path) -> subprocess.Popen:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100",
            "--nonblocking", "--output", str(out)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def detach(sampler: subprocess.Popen, out: Path) -> str:
    """Stop sampling (py-spy writes its file on SIGINT) and summarise it."""
    sampler.send_signal(signal.SIGINT)
    sampler.wait(60)
    return summarise(out.read_text())


def summarise(collapsed: str, top: int = 10) -> str:
    parts: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        frames = stack.split(";")
        part = next(name for name, marks in PARTS if any(m in f for f in frames for m in marks))
        parts[part] += int(count)
    if not total:
        return "(no samples)"
    rows = [(name, f"{100 * n / total:.0f}%") for name, n in parts.most_common(top)]
    return table([f"part ({total:,} samples at 100/s, all threads)", "share"], rows)
