"""The pydantic models: camelCase on the wire, defaults, and unknown fields refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from tests.support.admission_cases import BASE

from tidings import models


def test_spec_parses_camel_case_and_fills_defaults():
    spec = models.ScheduledReportSpec.model_validate(
        {k: BASE[k] for k in ("title", "reportType", "source", "recipients")}
    )
    assert spec.report_type == "changes_summary"
    assert spec.source.sql.connection_secret_ref.name == "changes-db"
    assert spec.schedule == "" and spec.time_zone == "UTC" and spec.suspend is False
    assert spec.filters.window.last == "7d"
    assert spec.delivery.subject_template == "[Tidings] {name} — {date}"
    assert (spec.failure_policy.disable_after, spec.failure_policy.retries) == (3, 4)
    assert spec.recipients.bcc == []


def test_dump_by_alias_round_trips():
    spec = models.ScheduledReportSpec.model_validate(BASE)
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped["timeZone"] == "Europe/Berlin"
    assert models.ScheduledReportSpec.model_validate(dumped) == spec


def test_window_from_is_spelled_from_on_the_wire():
    window = models.Window.model_validate({"from": "2025-01-01", "to": "2025-02-01"})
    assert window.from_ == "2025-01-01"
    assert window.model_dump(by_alias=True, exclude_none=True) == {
        "from": "2025-01-01",
        "to": "2025-02-01",
    }


def test_unknown_fields_are_an_error_not_ignored():
    with pytest.raises(ValidationError) as exc:
        models.ScheduledReportSpec.model_validate({**BASE, "recipient": ["x@example.com"]})
    assert exc.value.errors()[0]["loc"] == ("recipient",)


def test_whole_object_keeps_metadata_and_tolerates_kopf_state_in_status():
    report = models.ScheduledReport.model_validate(
        {
            "apiVersion": "tidings.dev/v1alpha1",
            "kind": "ScheduledReport",
            "metadata": {"name": "weekly", "namespace": "team", "labels": {"a": "b"}},
            "spec": BASE,
            "status": {"phase": "Active", "kopf": {"progress": {"reconcile": {}}}},
        }
    )
    assert (report.metadata.name, report.metadata.namespace) == ("weekly", "team")
    assert report.status is not None and report.status.phase == "Active"


def test_status_fields_and_phases():
    status = models.ScheduledReportStatus.model_validate(
        {"phase": "Disabled", "consecutiveFailures": 3}
    )
    assert status.phase == "Disabled" and status.consecutive_failures == 3
    with pytest.raises(ValidationError):
        models.ScheduledReportStatus.model_validate({"phase": "Sleeping"})
