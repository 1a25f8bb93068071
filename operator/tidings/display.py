"""Times and summaries as people read them: in the report's own zone, relative to now, cut short.

Pure functions shared by the status fields behind `kubectl get sr` (written by the operator) and
by `kubectl tidings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tidings.schedule import next_fire_time, parse_rfc3339, zone

BRIEF_ERROR = 60  # characters of lastError shown by `kubectl get sr -o wide`


def local_label(moment: datetime, time_zone: str) -> str:
    """`Mon 2026-12-07 09:00 CET`: the wall time and zone abbreviation in `time_zone`."""
    local = moment.astimezone(zone(time_zone))
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"


def offset_label(moment: datetime) -> str:
    """`UTC+01:00` for an aware datetime."""
    offset = moment.utcoffset() or timedelta()
    sign = "-" if offset < timedelta() else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def relative(moment: datetime, now: datetime) -> str:
    """`in 2d 21h`, `3h 5m ago`, `in 40s`: the two largest units, no arithmetic left to do."""
    seconds = int((moment - now).total_seconds())
    if seconds == 0:
        return "now"
    rest = abs(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
        if len(parts) == 2:
            break
    text = " ".join(parts)
    return f"in {text}" if seconds > 0 else f"{text} ago"


def brief(text: str, limit: int = BRIEF_ERROR) -> str:
    """The first line of `text`, cut to `limit` characters with an ellipsis."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class FireTime:
    at: datetime  # aware, UTC
    local: str  # local_label in the report's zone
    offset_change: str | None  # `UTC+01:00 -> UTC+02:00` when the zone's offset changed before it


def fire_times(schedule: str, time_zone: str, after: datetime, count: int) -> list[FireTime]:
    """The next `count` fire times after `after`, each noting a DST (offset) change since the
    previous one (or since `after`). Empty for a manual report; ValueError for a bad schedule."""
    tz = zone(time_zone)
    times: list[FireTime] = []
    previous_offset = after.astimezone(tz).utcoffset()
    moment = after
    for _ in range(count):
        fire = next_fire_time(schedule, time_zone, moment)
        if fire is None:
            break
        local = fire.astimezone(tz)
        change = None
        if local.utcoffset() != previous_offset:
            before = offset_label(moment.astimezone(tz))
            change = f"{before} -> {offset_label(local)}"
        times.append(FireTime(fire, local_label(fire, time_zone), change))
        previous_offset, moment = local.utcoffset(), fire
    return times


def recipient_count(spec: Mapping[str, Any]) -> int:
    recipients = spec.get("recipients") or {}
    return sum(len(recipients.get(kind) or ()) for kind in ("to", "cc", "bcc"))


def recipient_summary(spec: Mapping[str, Any]) -> str:
    """The RECIPIENTS column: the address when there is one, else how many (`3`)."""
    recipients = spec.get("recipients") or {}
    everyone = [a for kind in ("to", "cc", "bcc") for a in recipients.get(kind) or ()]
    return str(everyone[0]) if len(everyone) == 1 else str(len(everyone))


def delivery_format(spec: Mapping[str, Any]) -> str:
    """The FORMAT column: the attached files joined with `+` (`pdf+csv`), the PDF named by its
    variant when it has one (`pdf/a-3b+xlsx`). attachCsv reads as [pdf, csv], as the renderer
    reads it."""
    delivery = spec.get("delivery") or {}
    kinds = list(delivery.get("attachments") or ())
    if not kinds:
        kinds = ["pdf", "csv"] if delivery.get("attachCsv") else ["pdf"]
    variant = delivery.get("pdfVariant")
    return "+".join(str(variant) if kind == "pdf" and variant else str(kind) for kind in kinds)


def status_fields(spec: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """The human-readable status fields behind the NEXT and `-o wide` printer columns, derived
    from the spec and the rest of the status (so they can never disagree with them)."""
    next_local = None
    if status.get("nextSendAt"):
        try:
            moment = parse_rfc3339(status["nextSendAt"])
            next_local = local_label(moment, spec.get("timeZone") or "UTC")
        except ValueError:
            next_local = None
    return {
        "nextSendLocal": next_local,
        "recipientCount": recipient_count(spec),
        "recipientSummary": recipient_summary(spec),
        "deliveryFormat": delivery_format(spec),
        "lastErrorBrief": brief(status.get("lastError") or ""),
    }
