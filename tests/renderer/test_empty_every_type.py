"""Every report type, a custom_query roll-up included, renders its one "No data in this window"
page for zero rows: a real PDF (WeasyPrint), read back as text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from tests.support.renderer_cli import pdf_text

from tidings import models
from tidings.renderer import reports
from tidings.renderer import run as runner
from tidings.schedule import parse_rfc3339

AT = parse_rfc3339("2024-05-13T09:00:00+02:00")
PROGRAM_TYPES = set(models.PROGRAM_SCOPED_TYPES)
ROLLUP = {
    "rollup": {
        "groupBy": ["team"],
        "aggregates": [{"function": "sum", "column": "cost"}, {"function": "count"}],
    }
}


def empty_report(report_type: str, **spec: Any) -> models.ScheduledReport:
    return models.ScheduledReport.model_validate(
        {
            "metadata": {"name": "quiet", "namespace": "qa"},
            "spec": {
                "title": "A quiet week",
                "reportType": report_type,
                "source": {"inline": {"rows": []}},
                "filters": {"window": {"previous": "week"}},
                "timeZone": "Europe/Berlin",
                "recipients": {"to": ["lead@example.com"]},
                **({"program": "pci"} if report_type in PROGRAM_TYPES else {}),
                **spec,
            },
        }
    )


CASES = [(name, {}) for name in sorted(reports.KINDS)] + [("custom_query", {"customQuery": ROLLUP})]


@pytest.mark.parametrize(
    ("report_type", "spec"), CASES, ids=[f"{t}{'-rollup' if s else ''}" for t, s in CASES]
)
def test_zero_rows_render_the_no_data_page(
    tmp_path: Path, report_type: str, spec: dict[str, Any]
) -> None:
    sr = empty_report(report_type, **spec)
    rendered = runner.render(sr, AT, runner.Options(retries=0), time.monotonic() + 120)
    assert rendered.renderer == "pdf" and rendered.document is not None
    assert rendered.report.empty
    text = " ".join(pdf_text(rendered.document.content, tmp_path).split())
    assert "No data in this window" in text
    assert len(PdfReader(tmp_path / "out.pdf").pages) == 1
