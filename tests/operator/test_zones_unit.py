"""A namespace's default time zone and the report the operator works with (controller.zones)."""

from __future__ import annotations

from tests.support.job_outcomes import NOW
from tests.support.report_bodies import report_body

from tidings.controller import status as st
from tidings.controller import zones
from tidings.schedule import next_fire_time


def _namespace(value: str | None) -> dict:
    annotations = {} if value is None else {"tidings.dev/default-time-zone": value}
    return {"metadata": {"name": "team-payments", "annotations": annotations}}


def test_a_namespace_default_fills_only_reports_without_a_zone() -> None:
    zone, problem = zones.namespace_default(_namespace(" Europe/Berlin "))
    assert (zone, problem) == ("Europe/Berlin", None)
    free = report_body()
    del free["spec"]["timeZone"]
    assert zones.effective(free, zone)["spec"]["timeZone"] == "Europe/Berlin"
    assert "timeZone" not in free["spec"]  # the report read is not changed
    own = report_body(timeZone="Asia/Tokyo")
    assert zones.effective(own, zone) is own
    assert zones.zone_in_effect(zones.effective(free, None)["spec"]) == "UTC"
    result = st.reconcile(zones.effective(free, zone), (), NOW, next_fire_time)
    assert result.change.status["timeZone"] == "Europe/Berlin"
    assert result.change.status["nextSendAt"] == "2025-03-31T07:00:00Z"  # Monday 09:00 CEST


def test_a_namespace_annotation_that_is_not_a_zone_names_itself() -> None:
    assert zones.namespace_default(_namespace(None)) == (None, None)
    assert zones.namespace_default(_namespace("")) == (None, None)
    zone, problem = zones.namespace_default(_namespace("Mars/Olympus"))
    assert zone is None
    assert problem is not None
    assert "namespace team-payments annotation tidings.dev/default-time-zone" in problem
    assert "'Mars/Olympus'" in problem and "UTC" in problem
