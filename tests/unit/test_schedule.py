"""Cron fire times and data windows in the report's zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.models import Window
from tidings.schedule import (
    compute_window,
    next_fire_time,
    parse_rfc3339,
    rfc3339,
    scheduled_time_from_job_name,
)

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two instants (same-zone subtraction in Python is wall-clock time)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def test_empty_schedule_means_manual() -> None:
    assert next_fire_time("", "UTC", datetime.now(UTC)) is None
    assert next_fire_time("   ", "Europe/Berlin", datetime.now(UTC)) is None


def test_monday_nine_in_berlin_is_utc_and_strictly_after() -> None:
    after = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)  # Monday 09:00 CEST exactly
    fire = next_fire_time("0 9 * * 1", "Europe/Berlin", after)
    assert fire == datetime(2024, 5, 13, 7, 0, tzinfo=UTC)
    assert fire.tzinfo == UTC


def test_fire_time_keeps_wall_clock_across_spring_forward() -> None:
    # 2024-03-31 Berlin goes CET -> CEST: 09:00 is 08:00Z before and 07:00Z after.
    first = next_fire_time("0 9 * * 1", "Europe/Berlin", datetime(2024, 3, 20, tzinfo=UTC))
    second = next_fire_time("0 9 * * 1", "Europe/Berlin", first)
    assert first == datetime(2024, 3, 25, 8, 0, tzinfo=UTC)
    assert second == datetime(2024, 4, 1, 7, 0, tzinfo=UTC)


def test_time_in_spring_forward_gap_fires_at_the_first_instant_after_it() -> None:
    # 02:30 does not exist in Berlin on 2024-03-31: clocks go from 02:00 CET to 03:00 CEST.
    fire = next_fire_time("30 2 * * *", "Europe/Berlin", datetime(2024, 3, 30, 12, tzinfo=UTC))
    assert fire == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # 03:00 CEST
    after = next_fire_time("30 2 * * *", "Europe/Berlin", fire)
    assert after == berlin(2024, 4, 1, 2, 30).astimezone(UTC)
    # Every slot of the gap lands on that instant: one fire, not three.
    every_20 = "0,20,40 2 * * *"
    assert next_fire_time(every_20, "Europe/Berlin", datetime(2024, 3, 30, 12, tzinfo=UTC)) == fire
    assert next_fire_time(every_20, "Europe/Berlin", fire) == berlin(2024, 4, 1, 2, 0).astimezone(
        UTC
    )


def test_ambiguous_time_in_fall_back_fires_once() -> None:
    # 02:30 happens twice in Berlin on 2024-10-27 (00:30Z CEST and 01:30Z CET).
    first = next_fire_time("30 2 * * *", "Europe/Berlin", datetime(2024, 10, 26, 12, tzinfo=UTC))
    assert first == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    second = next_fire_time("30 2 * * *", "Europe/Berlin", first)
    assert second == berlin(2024, 10, 28, 2, 30).astimezone(UTC)


def test_hourly_schedule_through_fall_back_hour_is_strictly_increasing() -> None:
    after = datetime(2024, 10, 26, 22, tzinfo=UTC)
    fires = []
    for _ in range(6):
        after = next_fire_time("0 * * * *", "Europe/Berlin", after)
        fires.append(after)
    assert fires == sorted(set(fires))
    assert fires[0] == datetime(2024, 10, 26, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "zone", "message"),
    [
        ("not a cron", "UTC", "five-field cron"),
        ("0 9 * * 1 2024", "UTC", "five-field cron"),
        ("@every 1h", "UTC", "five-field cron"),
        ("61 9 * * 1", "UTC", "five-field cron"),
        ("0 9 * * 1", "Mars/Olympus", "IANA"),
    ],
)
def test_bad_schedule_or_zone_is_a_clear_error(schedule: str, zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_fire_time(schedule, zone, datetime.now(UTC))


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 1, 1)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
    st.sampled_from(["0 9 * * 1", "30 2 * * *", "*/15 * * * *", "0 0 1 * *"]),
)
def test_next_fire_is_after_and_matches_the_wall_clock(
    after: datetime, zone: str, schedule: str
) -> None:
    after_utc = after.replace(tzinfo=UTC)
    fire = next_fire_time(schedule, zone, after_utc)
    assert fire > after_utc
    local = fire.astimezone(ZoneInfo(zone))
    minute, hour = schedule.split()[:2]
    if minute.isdigit():
        assert local.minute == int(minute)
    if hour.isdigit():
        assert local.hour == int(hour)


@pytest.mark.parametrize(
    ("macro", "after", "expected"),
    [
        ("@hourly", berlin(2024, 5, 6, 9, 30), berlin(2024, 5, 6, 10, 0)),
        ("@daily", berlin(2024, 5, 6, 9, 30), berlin(2024, 5, 7, 0, 0)),
        ("@midnight", berlin(2024, 5, 6, 9, 30), berlin(2024, 5, 7, 0, 0)),
        ("@weekly", berlin(2024, 5, 6, 9, 30), berlin(2024, 5, 12, 0, 0)),  # Sunday
        ("@monthly", berlin(2024, 5, 6, 9, 30), berlin(2024, 6, 1, 0, 0)),
        ("@yearly", berlin(2024, 5, 6, 9, 30), berlin(2025, 1, 1, 0, 0)),
        ("@annually", berlin(2024, 5, 6, 9, 30), berlin(2025, 1, 1, 0, 0)),
        (" @weekly ", berlin(2024, 5, 12, 0, 0), berlin(2024, 5, 19, 0, 0)),
    ],
)
def test_macros_fire_at_local_midnight_or_the_full_hour(
    macro: str, after: datetime, expected: datetime
) -> None:
    assert next_fire_time(macro, "Europe/Berlin", after) == expected.astimezone(UTC)


def test_every_macro_the_models_list_stands_for_five_fields() -> None:
    from tidings.models import SCHEDULE_MACROS

    assert set(SCHEDULE_MACROS) == {
        "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"
    }  # fmt: skip
    assert all(len(fields.split()) == 5 for fields in SCHEDULE_MACROS.values())


# ------------------------------------------------------------------------------------ windows


def test_last_days_counts_calendar_days_across_spring_forward() -> None:
    fire = berlin(2024, 4, 1, 9, 0)  # the week before contained the switch to CEST
    start, end = compute_window(Window(last="7d"), fire.astimezone(UTC), "Europe/Berlin")
    assert (start, end) == (berlin(2024, 3, 25, 9, 0), fire)
    assert elapsed(start, end) == timedelta(hours=167)
    assert start.utcoffset() == timedelta(hours=1)


def test_last_days_across_fall_back_is_169_hours() -> None:
    fire = berlin(2024, 10, 28, 9, 0)
    start, end = compute_window(Window(last="7d"), fire, "Europe/Berlin")
    assert start == berlin(2024, 10, 21, 9, 0)
    assert elapsed(start, end) == timedelta(hours=169)


def test_last_hours_counts_elapsed_hours() -> None:
    fire = berlin(2024, 3, 31, 9, 0)
    start, end = compute_window(Window(last="12h"), fire, "Europe/Berlin")
    assert elapsed(start, end) == timedelta(hours=12)
    assert start == berlin(2024, 3, 30, 20, 0)  # 12 elapsed hours, one of them skipped


def test_previous_week_is_monday_to_monday_local_midnight() -> None:
    fire = berlin(2024, 4, 3, 9, 0)  # a Wednesday
    start, end = compute_window(Window(previous="week"), fire, "Europe/Berlin")
    assert (start, end) == (berlin(2024, 3, 25), berlin(2024, 4, 1))
    assert start.utcoffset() != end.utcoffset()  # the week spans the DST switch


def test_previous_week_on_monday_morning_is_the_week_just_ended() -> None:
    start, end = compute_window(Window(previous="week"), berlin(2024, 5, 13, 9), "Europe/Berlin")
    assert (start, end) == (berlin(2024, 5, 6), berlin(2024, 5, 13))


@pytest.mark.parametrize(
    ("fire", "expected"),
    [
        (berlin(2024, 3, 1, 9), (berlin(2024, 2, 1), berlin(2024, 3, 1))),
        (berlin(2024, 1, 15, 9), (berlin(2023, 12, 1), berlin(2024, 1, 1))),
    ],
)
def test_previous_month(fire: datetime, expected: tuple[datetime, datetime]) -> None:
    assert compute_window(Window(previous="month"), fire, "Europe/Berlin") == expected


@pytest.mark.parametrize(
    ("fire", "expected"),
    [
        (berlin(2024, 5, 20, 9), (berlin(2024, 1, 1), berlin(2024, 4, 1))),
        (berlin(2024, 1, 1, 9), (berlin(2023, 10, 1), berlin(2024, 1, 1))),
        (berlin(2024, 12, 31, 9), (berlin(2024, 7, 1), berlin(2024, 10, 1))),
    ],
)
def test_previous_quarter(fire: datetime, expected: tuple[datetime, datetime]) -> None:
    assert compute_window(Window(previous="quarter"), fire, "Europe/Berlin") == expected


def test_window_is_computed_in_the_report_zone_not_utc() -> None:
    # Monday 00:30 in Berlin is still Sunday in UTC: the previous week is the local one.
    fire = datetime(2024, 5, 12, 22, 30, tzinfo=UTC)
    start, end = compute_window(Window(previous="week"), fire, "Europe/Berlin")
    assert (start, end) == (berlin(2024, 5, 6), berlin(2024, 5, 13))


def test_from_to_dates_are_local_midnights_and_datetimes_keep_offsets() -> None:
    window = Window.model_validate({"from": "2024-03-01", "to": "2024-04-01T12:00:00Z"})
    start, end = compute_window(window, berlin(2024, 5, 1), "Europe/Berlin")
    assert start == berlin(2024, 3, 1)
    assert end == datetime(2024, 4, 1, 12, tzinfo=UTC)


def test_midnight_in_a_dst_gap_moves_to_the_first_instant_after() -> None:
    # Santiago skips 00:00-01:00 on 2024-09-08.
    window = Window.model_validate({"from": "2024-09-08", "to": "2024-09-09"})
    start, _ = compute_window(window, datetime(2024, 10, 1, tzinfo=UTC), "America/Santiago")
    assert start == datetime(2024, 9, 8, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"from": "2024-04-01", "to": "2024-03-01"}, "from must be before to"),
        ({"from": "yesterday", "to": "2024-03-01"}, r"filters\.window\.from .* ISO 8601"),
    ],
)
def test_bad_fixed_window_names_the_field(window: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compute_window(Window.model_validate(window), datetime.now(UTC), "UTC")


def test_naive_fire_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        compute_window(Window(last="7d"), datetime(2024, 1, 1), "UTC")


# ------------------------------------------------------------------------ job names and stamps


def test_scheduled_time_from_cronjob_job_name() -> None:
    moment = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
    name = f"payments-weekly-{int(moment.timestamp() // 60)}"
    assert scheduled_time_from_job_name(name) == moment
    assert scheduled_time_from_job_name("payments-weekly-run-now-abc12") is None
    assert scheduled_time_from_job_name("") is None


def test_rfc3339_round_trip_in_utc_with_z() -> None:
    moment = berlin(2024, 5, 6, 9, 0, 30)
    assert rfc3339(moment) == "2024-05-06T07:00:30Z"
    assert parse_rfc3339("2024-05-06T07:00:30Z") == moment
    with pytest.raises(ValueError, match="offset"):
        parse_rfc3339("2024-05-06T07:00:30")


def test_previous_fire_time_mirrors_next_fire_time() -> None:
    from tidings.schedule import next_fire_time, previous_fire_time

    berlin = "Europe/Berlin"
    tuesday = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    monday_9 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert previous_fire_time("0 9 * * 1", berlin, tuesday) == monday_9
    assert previous_fire_time("0 9 * * 1", berlin, monday_9) == monday_9  # at or before
    assert next_fire_time(
        "0 9 * * 1", berlin, previous_fire_time("0 9 * * 1", berlin, tuesday)
    ) == (datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    # 02:30 does not exist on 29 March 2026 in Berlin: it ran at 03:00 CEST, after the gap.
    after_gap = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    assert previous_fire_time("30 2 * * *", berlin, after_gap) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )
    assert previous_fire_time("30 2 * * *", berlin, after_gap - timedelta(hours=5)) == datetime(
        2026, 3, 28, 1, 30, tzinfo=UTC
    )
    # 02:30 happens twice on 25 October 2026: it fires at the first.
    after_repeat = datetime(2026, 10, 25, 3, 0, tzinfo=UTC)
    assert previous_fire_time("30 2 * * *", berlin, after_repeat) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert previous_fire_time("", berlin, tuesday) is None
