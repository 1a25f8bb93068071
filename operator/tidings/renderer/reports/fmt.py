"""Shared vocabulary and formatting: how statuses, severities, numbers, times and lists read in
every report type. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tidings.renderer.filters import tags_of, to_datetime
from tidings.renderer.result import InputError

EN_DASH = "\u2013"
TIMES = "\u00d7"
LIST_SEPARATOR = "; "  # list cells read "a; b" in the PDF, the text and the CSV

_TONES = {
    "good": "completed done deployed success succeeded successful resolved closed pass passed "
    "remediated mitigated on_track ok healthy met",
    "bad": "failed failure fail error denied forbidden rolled_back rolledback off_track "
    "critical breached overdue sev1 p1",
    "warn": "in_progress investigating mitigating at_risk pending open high sev2 p2 "
    "degraded monitoring",
}
TONE_OF = {word: tone for tone, words in _TONES.items() for word in words.split()}

_SEVERITY_RANKS = [
    ("critical", "sev1", "p1", "sev0", "p0"),
    ("high", "sev2", "p2", "major"),
    ("medium", "sev3", "p3", "moderate"),
    ("low", "sev4", "p4", "minor"),
    ("info", "sev5", "p5", "informational"),
]
SEVERITY_RANK = {word: rank for rank, words in enumerate(_SEVERITY_RANKS) for word in words}

CLOSED_STATUSES = {"resolved", "closed", "done", "remediated", "mitigated", "completed", "fixed"}
DENIED_STATUSES = {"denied", "forbidden", "failure", "failed", "error", "unauthorized"}


def norm(value: Any) -> str:
    """A category value for counting: lower case, spaces to underscores, empty as "unknown"."""
    text = "" if value is None else str(value).strip()
    return text.casefold().replace(" ", "_").replace("-", "_") or "unknown"


def tone(value: Any) -> str:
    return TONE_OF.get(norm(value), "")


def severity_rank(value: Any) -> int:
    return SEVERITY_RANK.get(norm(value), len(_SEVERITY_RANKS))


def severity_tone(value: Any) -> str:
    return {0: "bad", 1: "warn"}.get(severity_rank(value), "")


def severity_order(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=lambda v: (severity_rank(v), v))


def display(value: Any) -> str:
    """A category value for people: completed -> Completed, rolled_back -> Rolled back,
    sev1 -> SEV1. Anything else (names, addresses, service-ids) is shown as it is."""
    text = "" if value is None else str(value).strip()
    if not text:
        return "—"
    if re.fullmatch(r"(sev|p)[0-9]", text, re.IGNORECASE):
        return text.upper()
    if re.fullmatch(r"[a-z]+(_[a-z]+)*", text):
        text = text.replace("_", " ")
        return text[:1].upper() + text[1:]
    return text


def raw(value: Any) -> str:
    """A name-like value (team, service, actor) as it is; empty as a dash."""
    text = "" if value is None else str(value).strip()
    return text or "—"


def fmt_time(moment: datetime | None, tz: ZoneInfo) -> str:
    return "—" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def fmt_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    minutes = delta.total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def fmt_percent(part: float, whole: float) -> str:
    return "—" if not whole else f"{100 * part / whole:.0f}%"


def fmt_number(value: float, decimals: int | None = None) -> str:
    """Thousands separators; `decimals` fixes the decimals (a column reads alike), otherwise
    whole numbers have none and others up to two."""
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def decimals_of(values: Iterable[Any], most: int = 2) -> int:
    """The decimals a column of numbers needs to show each value (at most `most`)."""
    needed = 0
    for value in values:
        if isinstance(value, float) and not value.is_integer():
            text = f"{value:.{most}f}".rstrip("0")
            needed = max(needed, len(text.partition(".")[2]))
    return needed


def window_label(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """'6 May 2024 - 12 May 2024 (Europe/Berlin)' for whole days (end shown inclusive), else
    with times: '6 May 2024 09:00 - 13 May 2024 09:00 (Europe/Berlin)', with an en dash."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    if start.time() == end.time() == datetime.min.time():
        last = end - timedelta(days=1)
        return f"{start.day} {start:%b %Y} {EN_DASH} {last.day} {last:%b %Y} ({tz.key})"
    return f"{start.day} {start:%b %Y %H:%M} {EN_DASH} {end.day} {end:%b %Y %H:%M} ({tz.key})"


def window_span(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """The window in a subject line, as short as it reads (en dashes): '6-12 May 2024',
    '29 Apr - 5 May 2024', '30 Dec 2024 - 5 Jan 2025', '6 May 2024' for one day; a window that
    does not run midnight to midnight keeps its times: '12 May 2024 21:00 - 13 May 2024 09:00'."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    if start.time() != datetime.min.time() or end.time() != datetime.min.time():
        return f"{start.day} {start:%b %Y %H:%M} {EN_DASH} {end.day} {end:%b %Y %H:%M}"
    last = end - timedelta(days=1)
    if last.date() <= start.date():
        return f"{start.day} {start:%b %Y}"
    if (start.year, start.month) == (last.year, last.month):
        return f"{start.day}{EN_DASH}{last.day} {last:%b %Y}"
    if start.year == last.year:
        return f"{start.day} {start:%b} {EN_DASH} {last.day} {last:%b %Y}"
    return f"{start.day} {start:%b %Y} {EN_DASH} {last.day} {last:%b %Y}"


def window_stem(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """The window in a file name: '2024-05-06_2024-05-12' (whole days, the last one inclusive),
    '2024-05-06' for one day, else '2024-05-12T2100_2024-05-13T0900' (local wall times)."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    if start.time() != datetime.min.time() or end.time() != datetime.min.time():
        return f"{start:%Y-%m-%dT%H%M}_{end:%Y-%m-%dT%H%M}"
    last = end - timedelta(days=1)
    if last.date() <= start.date():
        return f"{start:%Y-%m-%d}"
    return f"{start:%Y-%m-%d}_{last:%Y-%m-%d}"


def as_of_label(moment: datetime, tz: ZoneInfo) -> str:
    """A snapshot's date line: 'As of 13 May 2024 09:00 (Europe/Berlin)'."""
    local = moment.astimezone(tz)
    return f"As of {local.day} {local:%b %Y %H:%M} ({tz.key})"


def list_text(values: Iterable[Any]) -> str:
    return LIST_SEPARATOR.join(str(v) for v in values)


def cell_text(value: Any, kind: str, tz: ZoneInfo, decimals: int | None = None) -> str:
    if kind in ("time", "date"):
        try:
            moment = to_datetime(value, tz)
        except (ValueError, TypeError, OverflowError):
            return str(value)
        if moment is None:
            return "—"
        return moment.strftime("%Y-%m-%d") if kind == "date" else fmt_time(moment, tz)
    if kind == "tags":
        return list_text(tags_of(value)) or "—"
    if kind == "badge":
        return display(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_number(value, decimals)
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return fmt_time(value, tz)
    if isinstance(value, list | tuple):
        return list_text(value)
    return str(value)


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "yes", "y", "1")
    return bool(value)


def number(value: Any, column: str, index: int) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(f"row {index}: {column} {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"row {index}: {column} {value!r} is not a number") from None
