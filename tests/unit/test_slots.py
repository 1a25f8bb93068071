"""One run per wall-clock slot: which fire is a duplicate, which gap slot the operator starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidings import slots
from tidings.controller import slot_guard
from tidings.schedule import next_fire_time

BERLIN = "Europe/Berlin"


def test_second_pass_of_a_repeated_slot_is_a_duplicate_of_the_first() -> None:
    # 02:30 happens twice in Berlin on 2024-10-27: 00:30Z (CEST) and 01:30Z (CET).
    first = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    assert slots.duplicate_of(first, BERLIN) is None
    assert slots.duplicate_of(first + timedelta(hours=1), BERLIN) == first
    assert slots.duplicate_of(datetime(2024, 10, 27, 2, 30, tzinfo=UTC), BERLIN) is None
    # NEXT names the first occurrence, the one that is not a duplicate.
    assert next_fire_time("30 2 * * *", BERLIN, first - timedelta(hours=3)) == first
    # Lord Howe goes back only 30 minutes: 01:45 happens at 14:45Z and 15:15Z.
    howe = datetime(2024, 4, 6, 14, 45, tzinfo=UTC)
    assert slots.duplicate_of(howe + timedelta(minutes=30), "Australia/Lord_Howe") == howe
    with pytest.raises(ValueError, match="timezone-aware"):
        slots.duplicate_of(datetime(2024, 10, 27, 1, 30), BERLIN)


def test_a_gap_slot_runs_at_the_first_instant_after_the_gap() -> None:
    found = slots.gaps(BERLIN, datetime(2024, 3, 30, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
    assert len(found) == 1
    gap = found[0]
    assert gap.instant == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert (gap.start, gap.end) == (datetime(2024, 3, 31, 2, 0), datetime(2024, 3, 31, 3, 0))
    assert slots.gap_slots("30 2 * * *", gap) == [datetime(2024, 3, 31, 2, 30)]
    assert slots.gap_run_due("30 2 * * *", gap)
    # 02:00 is in the gap too (it never happens): its run is the operator's.
    assert slots.gap_run_due("0 2 * * *", gap)
    # A schedule with 03:00 in it: the controller fires there, one run for both slots.
    assert not slots.gap_run_due("0,30 2,3 * * *", gap)
    assert not slots.gap_run_due("0 9 * * *", gap)  # nothing in the gap
    assert not slots.gap_run_due("", gap)
    assert next_fire_time("30 2 * * *", BERLIN, gap.instant - timedelta(hours=1)) == gap.instant
    # A fall-back is no gap; a window without a change has none.
    autumn = (datetime(2024, 10, 26, tzinfo=UTC), datetime(2024, 10, 28, tzinfo=UTC))
    assert slots.gaps(BERLIN, *autumn) == []
    assert slots.gaps("UTC", *autumn) == []


def test_gap_of_a_change_off_the_minute_is_found_to_the_second() -> None:
    # Lord Howe springs forward 30 minutes at 02:00 local (+10:30, 15:30Z); probed off the minute.
    found = slots.gaps(
        "Australia/Lord_Howe",
        datetime(2024, 10, 5, 14, 0, 30, tzinfo=UTC),
        datetime(2024, 10, 5, 16, 0, tzinfo=UTC),
    )
    assert [g.instant for g in found] == [datetime(2024, 10, 5, 15, 30, tzinfo=UTC)]
    assert found[0].end - found[0].start == timedelta(minutes=30)


def test_scheduled_name_is_the_cronjob_controllers() -> None:
    moment = datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert slots.scheduled_name("daily", moment) == f"daily-{int(moment.timestamp()) // 60}"


def _job(stamp: str | None, owner_kind: str = "CronJob") -> dict:
    annotations = {"batch.kubernetes.io/cronjob-scheduled-timestamp": stamp} if stamp else {}
    refs = [{"kind": owner_kind, "name": "r", "uid": "u", "controller": True}]
    return {"metadata": {"annotations": annotations, "ownerReferences": refs}}


def test_only_a_cronjob_fire_in_a_second_pass_is_held() -> None:
    second = "2024-10-27T02:30:00+01:00"  # the CET pass
    assert slot_guard.release_blocker(_job(second), BERLIN) == "2024-10-27T00:30:00Z"
    assert slot_guard.release_blocker(_job("2024-10-27T02:30:00+02:00"), BERLIN) is None
    assert slot_guard.release_blocker(_job(second, "ScheduledReport"), BERLIN) is None
    assert slot_guard.release_blocker(_job(None), BERLIN) is None
    assert slot_guard.release_blocker(_job("not a time"), BERLIN) is None
    assert slot_guard.release_blocker(_job(second), "Mars/Base") is None  # decided elsewhere


def test_mutating_webhook_takes_only_cronjob_fires_of_ours_and_fails_open() -> None:
    config = slot_guard.webhook_configuration("t", {"url": "https://127.0.0.1:1/"}, "ns")
    (hook,) = config["webhooks"]
    assert config["kind"] == "MutatingWebhookConfiguration"
    assert hook["clientConfig"]["url"] == f"https://127.0.0.1:1/{slot_guard.MUTATE_WEBHOOK_ID}"
    assert hook["failurePolicy"] == "Ignore"
    assert hook["rules"][0]["operations"] == ["CREATE"]
    assert hook["objectSelector"]["matchLabels"] == {"app.kubernetes.io/managed-by": "tidings"}
    assert "cronjob-scheduled-timestamp" in hook["matchConditions"][0]["expression"]


def test_a_stopped_duplicate_is_a_skipped_history_entry_and_counts_for_nothing() -> None:
    from tidings.controller import status

    first = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    now = first + timedelta(hours=1, seconds=2)
    report = {
        "metadata": {"name": "daily"},
        "status": {
            "history": [{"jobName": "daily-1", "outcome": "Delivered"}],
            "countedJobs": ["uid-1"],
            "consecutiveFailures": 1,
            "lastSentAt": "2024-10-27T00:31:00Z",
        },
    }
    change = status.duplicate_stopped(
        report, "daily-2", "uid-2", first + timedelta(hours=1), first, now
    )
    assert set(change.status) == {"history", "countedJobs"}  # nothing else moves
    entry = change.status["history"][0]
    assert entry["jobName"] == "daily-2" and entry["outcome"] == "Skipped"
    assert entry["scheduledTime"] == "2024-10-27T01:30:00Z"
    assert "2024-10-27T00:30:00Z" in entry["error"]
    assert change.status["countedJobs"] == ["uid-2", "uid-1"]
    assert status.already_recorded({**report["status"], **change.status}, "daily-2", "uid-2")
    (event,) = change.events
    assert (event.type, event.reason, event.key) == ("Normal", "DuplicateRunStopped", "uid-2")
