"""The committed CRD in a real apiserver, with no webhook registered: what the schema alone
enforces, the printer columns, kubectl explain, and the status subresource."""

from __future__ import annotations

import pytest
from tests.support.admission_cases import BASE, INVALID, VALID, changed

pytestmark = pytest.mark.cluster

SCHEMA_CASES = [c for c in INVALID if c.schema]
WEBHOOK_CASES = [c for c in INVALID if not c.schema]


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=lambda c: c.id)
def test_schema_rejects_without_webhook(reports, case):
    status, message = reports.rejection(case.id, case.spec)
    assert status == case.code, message
    assert case.path in message, message
    assert "admission webhook" not in message


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda c: c.id)
def test_semantic_rules_need_the_webhook(reports, case):
    """The other half of the table passes the schema: proof that the webhook is what stops it
    (and that the `schema` flags in the table are honest)."""
    reports.create(f"loose-{case.id}", case.spec, dry_run=True)


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.id)
def test_valid_reports_pass_the_schema(reports, case):
    reports.create(case.id, case.spec, dry_run=True)


def test_scalar_defaults_are_filled_in_by_the_apiserver(reports):
    minimal = {k: BASE[k] for k in ("title", "reportType", "source", "recipients")}
    reports.create("defaults", changed({"failurePolicy": {"retries": 1}}, minimal))
    spec = reports.get("defaults")["spec"]
    # No zone default: an absent zone follows the namespace's (status.timeZone shows it).
    assert "timeZone" not in spec and spec["schedule"] == "" and spec["suspend"] is False
    assert spec["failurePolicy"] == {"retries": 1, "disableAfter": 3, "timeoutSeconds": 600}
    assert "filters" not in spec and "delivery" not in spec


def test_printer_columns(control_plane, reports):
    reports.create("payments-weekly", changed({"program": "payments-pci"}))
    reports.patch_status(
        "payments-weekly",
        {
            "phase": "Active",
            "lastSentAt": "2025-01-06T08:00:02Z",
            "nextSendAt": "2099-01-05T08:00:00Z",
            "nextSendLocal": "Mon 2099-01-05 09:00 CET",
            "timeZone": "Europe/Berlin",  # the zone in effect, as the operator writes it
            "consecutiveFailures": 2,
            "recipientCount": 3,
            "recipientSummary": "3",
            "deliveryFormat": "pdf+csv",
            "lastErrorBrief": "SMTP 451 busy",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled"}],
        },
    )
    out = control_plane.kubectl("get", "sr", "payments-weekly", "-n", reports.namespace).stdout
    header, row = out.splitlines()
    assert header.split() == [
        "NAME", "TYPE", "FORMAT", "PROGRAM", "SCHEDULE", "TZ", "RECIPIENTS", "STATUS", "LAST",
        "SENT", "NEXT", "FAILURES", "AGE",
    ]  # fmt: skip
    cells = row.split()
    assert cells[:12] == [
        "payments-weekly", "changes_summary", "pdf+csv", "payments-pci", "0", "9", "*", "*",
        "1", "Europe/Berlin", "3", "Active",
    ]  # fmt: skip
    assert cells[12].endswith("d")  # LAST SENT renders as an age
    # NEXT as a wall time in the report's zone, not "<invalid>" (a date column) or UTC.
    assert cells[13:17] == ["Mon", "2099-01-05", "09:00", "CET"]
    assert cells[17] == "2"
    wide = control_plane.kubectl(
        "get", "sr", "payments-weekly", "-n", reports.namespace, "-o", "wide"
    )
    header, row = wide.stdout.splitlines()
    assert header.split()[-4:] == ["AGE", "REASON", "LAST", "ERROR"]
    assert row.split()[-4:] == ["Scheduled", "SMTP", "451", "busy"]


def test_category_lists_reports(control_plane, reports):
    reports.create("in-category", BASE)
    out = control_plane.kubectl("get", "tidings", "-n", reports.namespace, "-o", "name").stdout
    assert "scheduledreport.tidings.dev/in-category" in out.split()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("scheduledreport.spec.recipients", "Who receives the report; at most 50 in all."),
        ("scheduledreport.spec.recipients.bcc", "in the envelope only, never in the headers"),
        ("scheduledreport.spec.schedule", "Five-field cron expression"),
        ("sr.spec.source.sql.connectionSecretRef", "Secret key holding the SQLAlchemy URL"),
        ("sr.status.history.renderer", "pdf, or text when WeasyPrint was unavailable"),
    ],
)
def test_kubectl_explain_shows_descriptions(control_plane, path, expected):
    out = control_plane.kubectl("explain", path).stdout
    assert expected in " ".join(out.split())


def test_status_prunes_undeclared_fields_and_ignores_spec(reports):
    reports.create("status-owner", BASE)
    # What an older operator kept there (kopf's progress and its copy of the spec) is pruned.
    reports.patch_status(
        "status-owner",
        {"phase": "Manual", "kopf": {"last-handled-configuration": '{"spec": {}}'}},
    )
    stored = reports.get("status-owner")
    assert stored["status"]["phase"] == "Manual"
    assert "kopf" not in stored["status"]
    # The status subresource cannot change spec: the operator never writes what users own.
    reports.api.patch_namespaced_custom_object_status(
        "tidings.dev",
        "v1alpha1",
        reports.namespace,
        "scheduledreports",
        "status-owner",
        {"spec": {"title": "changed by status"}, "status": {"phase": "Paused"}},
    )
    stored = reports.get("status-owner")
    assert stored["spec"]["title"] == BASE["title"]
    assert stored["status"]["phase"] == "Paused"
