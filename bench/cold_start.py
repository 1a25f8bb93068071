"""Renderer cold start: process start to PDF for the small example report, and how much of it
is spent importing modules.

    python3 -m bench.cold_start [--repeat 7] [--no-append]

Baseline: the least any WeasyPrint renderer pays, `import weasyprint` and a one-paragraph PDF
in a fresh interpreter; `python3 -c pass` is shown as the floor. The commands run interleaved,
round after round, so a busy moment on a shared machine hits all of them alike; medians are
reported. The import share comes from one extra run under `python3 -X importtime`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.common import median, report, run_child, table

AT = "2024-05-13T09:00:00+02:00"
NAIVE = "import weasyprint; weasyprint.HTML(string='<p>Changes</p>').write_pdf('{out}')"
TARGET = 1.5


def commands(out: Path) -> dict[str, list[str]]:
    render = ["-m", "tidings", "render", "examples/changes_summary.yaml", "-o", str(out)]
    return {
        "floor: `python3 -c pass`": [sys.executable, "-c", "pass"],
        "baseline: import weasyprint + one-paragraph PDF": [
            sys.executable,
            "-c",
            NAIVE.format(out=out.with_name("naive.pdf")),
        ],
        "`tidings render examples/changes_summary.yaml`": [sys.executable, *render, "--at", AT],
    }


def import_profile(argv: list[str]) -> tuple[float, float, list[tuple[str, float]]]:
    """(wall seconds, seconds importing, heaviest top-level packages) of one run."""
    child = run_child([argv[0], "-X", "importtime", *argv[1:]])
    top: dict[str, float] = defaultdict(float)
    total = 0.0
    for line in child.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and not match.group(2).strip(" ") and len(match.group(2)) <= 1:
            # Unindented: imported by the program itself, cumulative covers its children.
            micros = int(match.group(1))
            total += micros / 1e6
            top[match.group(3).split(".")[0]] += micros / 1e6
    heaviest = sorted(top.items(), key=lambda item: -item[1])[:5]
    return child.seconds, total, heaviest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "report.pdf"
        runs = commands(out)
        times: dict[str, list[float]] = defaultdict(list)
        peaks: dict[str, list[float]] = defaultdict(list)
        run_child(runs[list(runs)[-1]])  # warm the page cache and fontconfig's cache
        for _ in range(args.repeat):
            for name, argv in runs.items():
                child = run_child(argv)
                times[name].append(child.seconds)
                peaks[name].append(child.peak_mib)
        if not out.read_bytes().startswith(b"%PDF"):
            raise AssertionError("tidings render did not write a PDF")
        wall, imports, heaviest = import_profile(runs[list(runs)[-1]])
    floor, naive, tidings = (median(times[name]) for name in runs)
    rows = []
    for name in runs:
        value = median(times[name])
        rows.append(
            (name, f"{value:.2f}", f"{min(times[name]):.2f}", f"{value / floor:.1f}x",
             f"{value / naive:.2f}x", f"{median(peaks[name]):.0f}")
        )  # fmt: skip
    body = table(["command", "median s", "best s", "x floor", "x baseline", "peak RSS MiB"], rows)
    heavy = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in heaviest)
    verdict = "met" if tidings < TARGET else "missed"
    body += (
        f"\n\nTarget: under {TARGET} s from process start to PDF: **{verdict}** "
        f"(median {tidings:.2f} s over {args.repeat} runs).\n"
        f"Import share (one run under `-X importtime`, which slows imports down): "
        f"{imports:.2f} s of {wall:.2f} s ({100 * imports / wall:.0f}%); heaviest: {heavy}.\n"
    )
    report("Renderer cold start", body, append=not args.no_append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
