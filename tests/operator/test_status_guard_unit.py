"""A status write of another phase over Disabled is put back (controller.status_guard)."""

from __future__ import annotations

from tests.support.job_outcomes import NOW
from tests.support.report_bodies import condition, report_body, with_status

from tidings.controller import status as st
from tidings.controller import status_guard
from tidings.schedule import next_fire_time


def _disabled_then_written(phase: str) -> dict:
    """A report the operator disabled, then `status.phase` patched by someone else."""
    report = with_status(
        report_body(), phase="Disabled", observedGeneration=1, consecutiveFailures=3
    )
    report["status"] = st.reconcile(report, (), NOW, next_fire_time).change.status
    report["status"]["lastError"] = "SMTP 550 no such user"
    ready = condition(report["status"], "Ready")
    ready.update(status="False", reason="Disabled")
    report["status"]["phase"] = phase
    return report


def test_active_written_over_disabled_is_put_back_with_the_ways_to_reactivate() -> None:
    report = _disabled_then_written("Active")
    result = st.reconcile(report, (), NOW, next_fire_time)
    assert result.phase == "Disabled"
    assert result.change.status["nextSendAt"] is None
    assert "consecutiveFailures" not in result.change.status  # the counter stays at 3
    (event,) = result.change.events
    assert (event.type, event.reason) == ("Warning", "StatusPatchReverted")
    assert "kubectl tidings reactivate payments-weekly" in event.message
    assert "tidings.dev/reactivate" in event.message
    assert condition(result.change.status, "Ready")["reason"] == "Disabled"


def test_any_other_phase_is_put_back_too() -> None:
    for phase in ("Paused", "Manual"):
        assert st.reconcile(_disabled_then_written(phase), (), NOW, next_fire_time).phase == (
            "Disabled"
        )


def test_a_real_reactivation_in_the_same_reconcile_wins() -> None:
    report = _disabled_then_written("Active")
    report["metadata"]["annotations"]["tidings.dev/reactivate"] = "fixed"
    result = st.reconcile(report, (), NOW, next_fire_time)
    assert result.phase == "Active"
    assert result.change.status["consecutiveFailures"] == 0
    assert [e.reason for e in result.change.events] == ["Reactivated"]


def test_reports_never_disabled_are_left_alone() -> None:
    active = with_status(report_body(), phase="Active", observedGeneration=1)
    active["status"] = st.reconcile(active, (), NOW, next_fire_time).change.status
    assert not status_guard.phase_written_over_disabled(active["status"])
    assert not status_guard.phase_written_over_disabled({})
    disabled = _disabled_then_written("Disabled")
    assert not status_guard.phase_written_over_disabled(disabled["status"])
