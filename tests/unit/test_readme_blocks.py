"""Every fenced shell block in README either runs in a test or says, right above it, what it
needs and why CI cannot run it. The marker is the last non-blank line before the
fence:

    <!-- run by: tests/path/test_file.py -->     that file must exist and quote the first two
                                                words of the block, which is how it selects it
    <!-- not run in CI: needs ...; why -->      what it needs (Docker, a cluster, a relay...)
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(sh|bash|shell|console)\n(.*?)^```", re.DOTALL | re.MULTILINE)
RUN_BY = re.compile(r"^<!-- run by: (\S+) -->$")
NOT_RUN = re.compile(r"^<!-- not run in CI: (.+) -->$")


def shell_blocks(text: str = README) -> list[tuple[int, str, str]]:
    """(line number, the marker line above the fence, the block's text)."""
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        above = before.rstrip("\n").splitlines()
        found.append((before.count("\n") + 1, above[-1] if above else "", match.group(2)))
    return found


def first_command(block: str) -> str:
    line = next(line for line in block.splitlines() if line.strip())
    return line.split("  #")[0].rstrip(" \\")


def problems(text: str = README) -> list[str]:
    out = []
    for line, marker, block in shell_blocks(text):
        where = f"README.md:{line} ({first_command(block)!r})"
        if run := RUN_BY.match(marker):
            test = ROOT / run.group(1)
            if not test.is_file():
                out.append(f"{where}: run by {run.group(1)}, which does not exist")
            elif " ".join(first_command(block).split()[:2]) not in test.read_text("utf-8"):
                out.append(f"{where}: {run.group(1)} does not quote the block's first command")
        elif reason := NOT_RUN.match(marker):
            if not re.search(r"\bneeds\b|\bas printed\b|\bCI itself\b", reason.group(1)):
                out.append(f"{where}: the marker must say what the block needs and why")
        else:
            out.append(f"{where}: neither run by a test nor marked with what it needs")
    return out


def test_every_readme_shell_block_is_run_by_a_test_or_marked() -> None:
    assert len(shell_blocks()) >= 10
    assert problems() == []


def test_the_check_catches_unmarked_and_unrun_blocks() -> None:
    text = (
        "Intro\n\n```sh\nrm -rf build\n```\n\n<!-- run by: tests/unit/test_readme.py -->\n"
        "```sh\nmake nothing\n```\n\n<!-- not run in CI: too slow -->\n```sh\nsleep 9\n```\n"
    )
    assert problems(text) == [
        "README.md:3 ('rm -rf build'): neither run by a test nor marked with what it needs",
        "README.md:8 ('make nothing'): tests/unit/test_readme.py does not quote the block's "
        "first command",
        "README.md:13 ('sleep 9'): the marker must say what the block needs and why",
    ]
