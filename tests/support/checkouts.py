"""Copies of this checkout as a newcomer gets them, and what must not change outside them."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a shell outside make and pytest would not have.
SCRUBBED = ("VIRTUAL_ENV", "PYTHONPATH", "VENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON")


def user_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    return {**env, **extra}


def copy_checkout(target: Path) -> Path:
    """The checkout's files as git sees them (committed or not), without .venv, .dev or caches."""
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / name.decode()
        if not source.is_file():
            continue  # deleted in the working tree
        dest = target / name.decode()
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(source.read_bytes())
        dest.chmod(source.stat().st_mode)
    return target


def outside_references(checkouts: list[Path]) -> list[str]:
    """Places outside the checkouts that point into them: the machine's python3 importing
    tidings from one, or an install record (.pth, editable finder) of python3 or of the
    interpreter running the tests naming one. Other processes on a shared machine may install
    things meanwhile, so this looks for traces of these checkouts, not for any change."""
    probe = (
        "import json, sysconfig\n"
        "try:\n    import tidings; found = tidings.__file__\n"
        "except ImportError:\n    found = None\n"
        "print(json.dumps([found, sysconfig.get_paths()['purelib']]))"
    )
    found, purelib = json.loads(
        subprocess.run(
            ["python3", "-c", probe], capture_output=True, text=True, check=True, env=user_env()
        ).stdout
    )
    roots = [str(path) for path in checkouts]
    traces = [f"python3 imports {found}" for root in roots if found and found.startswith(root)]
    for folder in {Path(purelib), Path(sysconfig.get_paths()["purelib"])}:
        for record in [*folder.glob("*.pth"), *folder.glob("__editable__*.py")]:
            text = record.read_text(errors="replace")
            traces += [f"{record} names {root}" for root in roots if root in text]
    return traces


@dataclass
class Demo:
    path: Path
    make_demo: subprocess.CompletedProcess[str]
