"""Copies of this checkout as a newcomer gets them, and what must not change outside them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def outside_state() -> dict[str, object]:
    """What `make demo` in another checkout must not change: which tidings the machine's
    python3 imports, and the installed packages of python3 and of the interpreter running us."""
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

    def listing(folder: str) -> list[tuple[str, float]]:
        path = Path(folder)
        return sorted((p.name, p.stat().st_mtime) for p in path.iterdir()) if path.is_dir() else []

    return {
        "python3 imports tidings from": found,
        "python3 packages": listing(purelib),
        "test interpreter packages": listing(sysconfig.get_paths()["purelib"]),
        "test interpreter": sys.executable,
    }


@dataclass
class Demo:
    path: Path
    make_demo: subprocess.CompletedProcess[str]
