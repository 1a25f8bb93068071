"""Cron fire times and data windows, both computed in the report's time zone.

Wall-clock rules, so that "every Monday 09:00 Europe/Berlin" stays 09:00 across DST:
- Cron times are local wall times, and each slot fires once. A time that does not exist (the
  spring-forward gap) fires at the first instant after the gap (the CronJob controller skips
  it, so the operator starts that run: tidings.slots); an ambiguous one (the fall-back hour)
  fires once, at its first occurrence (the controller's second fire is stopped).
- `last: Nd` counts calendar days in the zone (Monday 09:00 to Monday 09:00 is 7d even when the
  week was 167 hours long); `last: Nh` counts elapsed hours.
- `previous: week|month|quarter` is the previous full calendar period, local midnight to local
  midnight, relative to the fire time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from tidings import models
from tidings.models import Window

MACROS = models.SCHEDULE_MACROS


def expand(schedule: str) -> str:
    """The five-field form of a schedule: a macro's fields, anything else as written."""
    return MACROS.get(schedule.strip(), schedule)


# A cron expression has at most this many matches in a 1-hour lookback plus the first match after:
# enough to step over a fall-back hour without looping forever on an odd expression.
_MAX_CANDIDATES = 200


def zone(time_zone: str) -> ZoneInfo:
    """The IANA zone, or ValueError naming the bad value."""
    try:
        return ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timeZone {time_zone!r} is not an IANA time zone name") from exc


def localize(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """Attach `tz` to a naive wall time: first occurrence if ambiguous, None if it never happens."""
    aware = wall.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return aware


def gap_end(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """For a naive wall time inside a spring-forward gap, the first instant after the gap (UTC);
    None when the wall time exists."""
    if localize(wall, tz) is not None:
        return None
    # PEP 495: in a gap, fold=1 reads the wall time with the offset after the change (an instant
    # before it) and fold=0 with the offset before (an instant after it). Bisect to the second.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    after = hi.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = (lo + (hi - lo) / 2).replace(microsecond=0)
        if mid <= lo:
            break
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi


def _fire(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant a cron wall time fires: its first occurrence, or the gap's end."""
    fire = localize(wall, tz)
    if fire is not None:
        return fire
    end = gap_end(wall, tz)
    assert end is not None  # localize found no such wall time
    return end


def _normalize(wall: datetime, tz: ZoneInfo) -> datetime:
    """Like localize, but a wall time inside a DST gap moves to the first instant after it."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)


def next_fire_time(schedule: str, time_zone: str, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (aware), as an aware UTC datetime.

    None for an empty schedule (manual runs only). ValueError for a bad expression or zone.
    """
    tz = _cron_zone(schedule, time_zone, after)
    if tz is None:
        return None
    schedule = expand(schedule)
    # Start an hour early in wall time: `after` may sit in the second pass of a fall-back hour,
    # where its naive wall time is earlier than candidates already passed.
    start = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=1, seconds=1)
    it = croniter(schedule, start)
    for _ in range(_MAX_CANDIDATES):
        fire = _fire(it.get_next(datetime), tz)
        if fire > after:
            return fire.astimezone(UTC)
    raise ValueError(f"schedule {schedule!r} has no fire time after {after.isoformat()}")


def previous_fire_time(schedule: str, time_zone: str, before: datetime) -> datetime | None:
    """The latest fire time at or before `before` (aware), as an aware UTC datetime, by the
    same wall-clock rules as next_fire_time. None for an empty schedule."""
    tz = _cron_zone(schedule, time_zone, before)
    if tz is None:
        return None
    schedule = expand(schedule)
    # Start an hour late in wall time, mirroring next_fire_time's fall-back lookback.
    start = before.astimezone(tz).replace(tzinfo=None) + timedelta(hours=1, seconds=1)
    it = croniter(schedule, start)
    for _ in range(_MAX_CANDIDATES):
        fire = _fire(it.get_prev(datetime), tz)
        if fire <= before:
            return fire.astimezone(UTC)
    raise ValueError(f"schedule {schedule!r} has no fire time before {before.isoformat()}")


def _cron_zone(schedule: str, time_zone: str, moment: datetime) -> ZoneInfo | None:
    """The zone for a valid schedule, None for an empty one; ValueError naming what is wrong."""
    if not schedule or not schedule.strip():
        return None
    if moment.tzinfo is None:
        raise ValueError("the reference time must be timezone-aware")
    tz = zone(time_zone)
    fields = expand(schedule)
    if not croniter.is_valid(fields) or len(fields.split()) != 5:
        raise ValueError(f"schedule {schedule!r} is not a five-field cron expression")
    return tz


_LAST = re.compile(r"^([1-9][0-9]{0,3})([dh])$")


def compute_window(
    window: Window, fire_time: datetime, time_zone: str
) -> tuple[datetime, datetime]:
    """The data window [start, end) for a run scheduled at `fire_time`, as aware datetimes in the
    report's zone. ValueError (naming the field) for a window that cannot be computed."""
    if fire_time.tzinfo is None:
        raise ValueError("fire_time must be timezone-aware")
    tz = zone(time_zone)
    fire = fire_time.astimezone(tz)
    if window.last:
        match = _LAST.match(window.last)
        if not match:
            raise ValueError(f"filters.window.last {window.last!r} must look like 7d or 12h")
        amount, unit = int(match[1]), match[2]
        if unit == "h":
            # Aware arithmetic in Python is wall-clock arithmetic: subtract in UTC instead.
            return (fire.astimezone(UTC) - timedelta(hours=amount)).astimezone(tz), fire
        return _normalize(fire.replace(tzinfo=None) - timedelta(days=amount), tz), fire
    if window.previous:
        return _previous_period(str(window.previous), fire, tz)
    if window.from_ or window.to:
        if not (window.from_ and window.to):
            raise ValueError("filters.window: from and to must be set together")
        start = parse_bound(window.from_, tz, "filters.window.from")
        end = parse_bound(window.to, tz, "filters.window.to")
        if start >= end:
            raise ValueError("filters.window: from must be before to")
        return start, end
    raise ValueError("filters.window: exactly one of last, previous or from/to must be set")


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return _normalize(datetime(day.year, day.month, day.day), tz)


def _previous_period(period: str, fire: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    today = fire.date()
    if period == "week":
        this_monday = today - timedelta(days=today.weekday())
        return _midnight(this_monday - timedelta(days=7), tz), _midnight(this_monday, tz)
    if period == "month":
        first = today.replace(day=1)
        prev_first = (first - timedelta(days=1)).replace(day=1)
        return _midnight(prev_first, tz), _midnight(first, tz)
    if period == "quarter":
        first = today.replace(month=3 * ((today.month - 1) // 3) + 1, day=1)
        prev_first = (first - timedelta(days=1)).replace(day=1)
        prev_first = prev_first.replace(month=3 * ((prev_first.month - 1) // 3) + 1)
        return _midnight(prev_first, tz), _midnight(first, tz)
    raise ValueError(f"filters.window.previous {period!r} must be week, month or quarter")


def parse_bound(value: str, tz: ZoneInfo, field: str) -> datetime:
    """An ISO 8601 date (local midnight) or date-time (naive = local wall time)."""
    text = value.strip()
    try:
        if len(text) == 10:
            return _midnight(date.fromisoformat(text), tz)
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{field} {value!r} is not an ISO 8601 date or date-time") from exc
    if parsed.tzinfo is None:
        return _normalize(parsed, tz)
    return parsed.astimezone(tz)


def scheduled_time_from_job_name(job_name: str) -> datetime | None:
    """CronJob-created Jobs are named `<cronjob>-<minutes since the epoch of the scheduled time>`.

    None when the name does not end that way (a run-now Job, or a hand-made one)."""
    match = re.search(r"-([0-9]{7,10})$", job_name or "")
    if not match:
        return None
    return datetime.fromtimestamp(int(match[1]) * 60, UTC)


def rfc3339(moment: datetime) -> str:
    """UTC with a Z suffix, second precision: the form used in status and results."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 timestamp (offset or Z required) as an aware datetime."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; use e.g. 2024-05-06T09:00:00+02:00 or Z")
    return parsed
