"""ScheduledReport documents the renderer tests send and render: a small inline report with one
recipient of each kind, one on an http source, and the sql example."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from tests.support.examples import EXAMPLES

from tidings.renderer import reports

TO, CC, BCC = "lead@example.com", "board@example.com", "archive@example.com"
SQL_EXAMPLE = EXAMPLES / "sql" / "changes_summary_postgres.yaml"


def small_report(**spec: Any) -> dict[str, Any]:
    report = {
        "apiVersion": "tidings.dev/v1alpha1",
        "kind": "ScheduledReport",
        "metadata": {"name": "smtp-check", "namespace": "qa", "uid": "0b6c1f7e-uid"},
        "spec": {
            "title": "Delivery check",
            "reportType": "changes_summary",
            "source": {
                "inline": {
                    "rows": [
                        {
                            "id": "CHG-7",
                            "title": "Ship the thing",
                            "status": "completed",
                            "completed_at": "2024-05-08T10:00:00Z",
                        }
                    ]
                }
            },
            "filters": {"window": {"previous": "week"}},
            "timeZone": "Europe/Berlin",
            "recipients": {"to": [TO], "cc": [CC], "bcc": [BCC]},
            "failurePolicy": {"retries": 0},
        },
    }
    report["spec"].update(spec)
    return report


def http_report(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "tidings.dev/v1alpha1",
        "kind": "ScheduledReport",
        "metadata": {"name": "incidents-http", "namespace": "sre"},
        "spec": {
            "title": "Incidents from the tracker",
            "reportType": "incidents_summary",
            "source": {
                "http": {
                    "url": url,
                    "rowsPath": "data.items",
                    "authSecretRef": {"name": "tracker", "key": "token"},
                }
            },
            "filters": {"window": {"previous": "week"}},
            "timeZone": "Europe/Berlin",
            "recipients": {"to": ["sre@example.com"]},
        },
    }


def sql_report(query: str | None = None, **filters: Any) -> dict[str, Any]:
    report = yaml.safe_load(SQL_EXAMPLE.read_text())
    if query is not None:
        report["spec"]["source"]["sql"]["query"] = query
    report["spec"]["filters"].update(filters)
    return report


def sample() -> reports.Report:
    """One changes_summary row whose title is markup (what templates must escape), in the week of
    6-12 May 2024, Berlin time."""
    berlin = ZoneInfo("Europe/Berlin")
    rows = [{"id": "1", "title": "<b>bold</b>", "status": "completed",
             "completed_at": "2024-05-07T10:00:00Z"}]  # fmt: skip
    return reports.build_report(
        report_type="changes_summary",
        title="T",
        name="n",
        namespace="ns",
        rows=rows,
        ctx=reports.Context(
            tz=berlin,
            start=datetime(2024, 5, 6, tzinfo=berlin),
            end=datetime(2024, 5, 13, tzinfo=berlin),
        ),
        generated_at=datetime(2024, 5, 13, 7, tzinfo=UTC),
        max_table_rows=100,
    )
