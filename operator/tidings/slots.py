"""Pure: one run per local wall-clock slot, whatever the CronJob controller does at a DST change.

The CronJob controller steps a schedule through absolute minutes in the CronJob's zone, so:
- in a fall-back (a repeated span of wall time) a slot matches twice, at two instants an offset
  apart (kubernetes/kubernetes#121594). The first occurrence is the slot's run (as NEXT says,
  tidings.schedule); the second is a duplicate, stopped before its pod starts.
- in a spring-forward (a skipped span) a slot inside the gap never matches, so the controller
  never fires it. Its run is due at the first instant after the gap, and the operator starts it,
  unless that instant is itself a slot the controller fires (then that one run stands for both).

Everything here takes aware datetimes and IANA zone names and returns instants in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from tidings.schedule import expand, zone

# How finely a window is probed for an offset change; every real DST change is on a whole minute,
# and so are the shifts a test zone makes.
_PROBE = timedelta(minutes=1)


def wall_time(moment: datetime, tz: ZoneInfo) -> datetime:
    """The naive local wall time of an instant."""
    return moment.astimezone(tz).replace(tzinfo=None)


def duplicate_of(scheduled: datetime, time_zone: str) -> datetime | None:
    """The first occurrence (UTC) of the wall time `scheduled` shows, when `scheduled` is a later
    one (the second pass of a repeated span); None when it is the slot's own run."""
    if scheduled.tzinfo is None:
        raise ValueError("the scheduled time must be timezone-aware")
    tz = zone(time_zone)
    first = wall_time(scheduled, tz).replace(tzinfo=tz, fold=0).astimezone(UTC)
    return first if first < scheduled.astimezone(UTC) else None


@dataclass(frozen=True)
class Gap:
    """A spring-forward: wall times [start, end) never happen; `instant` (UTC) is the first one
    after the change, whose wall time is `end`."""

    instant: datetime
    start: datetime
    end: datetime


def gaps(time_zone: str, after: datetime, until: datetime) -> list[Gap]:
    """The spring-forward changes of the zone with their instant in (after, until]."""
    tz = zone(time_zone)
    found: list[Gap] = []
    for before, at in _changes(tz, after.astimezone(UTC), until.astimezone(UTC)):
        old, new = before.utcoffset(), at.utcoffset()
        assert old is not None and new is not None  # aware in a ZoneInfo zone
        if new > old:
            instant = at.astimezone(UTC)
            found.append(Gap(instant, (instant + old).replace(tzinfo=None), wall_time(at, tz)))
    return found


def _changes(tz: ZoneInfo, after: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(a moment before, the first moment of) each offset change in (after, until], as local
    aware datetimes, found by probing each minute and bisecting to the second."""
    probe = after
    while probe < until:
        nxt = min(probe + _PROBE, until)
        if probe.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = probe, nxt  # offset(lo) differs from offset(hi); narrow to one second
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                same = mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset()
                lo, hi = (mid, hi) if same else (lo, mid)
            yield lo.astimezone(tz), hi.astimezone(tz)
        probe = nxt


def gap_slots(schedule: str, gap: Gap) -> list[datetime]:
    """The schedule's wall times (naive) inside the gap."""
    fields = expand(schedule)
    it = croniter(fields, gap.start - timedelta(seconds=1))
    slots = []
    while (wall := it.get_next(datetime)) < gap.end:
        slots.append(wall)
    return slots


def gap_run_due(schedule: str, gap: Gap) -> bool:
    """Whether the operator starts a run at `gap.instant`: a slot fell in the gap and the first
    wall time after it is no slot of its own (the controller fires that one, and one run there
    stands for every slot the change moved onto that instant)."""
    if not schedule.strip() or not gap_slots(schedule, gap):
        return False
    return not croniter.match(expand(schedule), gap.end)


def scheduled_name(cronjob_name: str, instant: datetime) -> str:
    """The name the CronJob controller gives the Job of a fire time: `<cronjob>-<minutes>`."""
    return f"{cronjob_name}-{int(instant.astimezone(UTC).timestamp() // 60)}"
