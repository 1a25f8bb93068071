"""The time the operator's decisions take: now, and a report's next fire time."""

from __future__ import annotations

from datetime import UTC, datetime

from tidings import schedule


def utc_now() -> datetime:
    return datetime.now(UTC)


def next_fire(schedule_text: str, time_zone: str, after: datetime) -> datetime | None:
    """status.NextFire in production."""
    try:
        return schedule.next_fire_time(schedule_text, time_zone, after)
    except ValueError:  # only reachable if validation and the schedule module ever disagree
        return None
