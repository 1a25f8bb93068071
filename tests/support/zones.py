"""Time zones made for a test: compiled with `zic` into a directory that kube-apiserver and
kube-controller-manager (Go, ZONEINFO) and the operator (Python, PYTHONTZPATH) read first.

A zone's DST changes can then fall a few minutes after the test starts, with a shift of a few
minutes, so the real CronJob controller's fires across both changes take minutes, not months.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path


def zic_source(name: str, offsets: Sequence[tuple[int, datetime | None]]) -> str:
    """A zic Zone: each (offset in minutes, UTC moment it ends), the last one open-ended."""
    lines = []
    for index, (minutes, until) in enumerate(offsets):
        sign = "-" if minutes < 0 else ""
        stdoff = f"{sign}0:{abs(minutes):02d}"
        # Letters only: zic accepts 3-6 of them as an abbreviation.
        abbr = "TZ" + "ABCDEFGH"[index]
        field = ""
        if until is not None:
            u = until.astimezone(UTC)
            field = f" {u.year} {u.strftime('%b')} {u.day} {u.hour}:{u.minute:02d}:{u.second:02d}u"
        lines.append(f"{'Zone ' + name if index == 0 else ''}\t{stdoff}\t-\t{abbr}{field}")
    return "\n".join(lines) + "\n"


def compile_zone(
    directory: Path, name: str, offsets: Sequence[tuple[int, datetime | None]]
) -> Path:
    """Compile the zone into `directory` (ZONEINFO / PYTHONTZPATH root); its TZif path."""
    zic = shutil.which("zic") or "/usr/sbin/zic"
    source = directory / f".{name.replace('/', '_')}.zi"
    directory.mkdir(parents=True, exist_ok=True)
    source.write_text(zic_source(name, offsets))
    subprocess.run([zic, "-d", str(directory), str(source)], check=True, capture_output=True)
    return directory / name


def python_tzpath(directory: Path) -> str:
    """PYTHONTZPATH for a process that must find these zones first, then the system's."""
    import os
    import zoneinfo

    return os.pathsep.join([str(directory), *zoneinfo.TZPATH])


def ceil_minute(moment: datetime) -> datetime:
    """The first whole minute at or after `moment`."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)
