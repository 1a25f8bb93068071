"""Issue 23's content fixes, on real PDFs and a real SMTP server: overdue risks, snapshots as
of the fire time, the {window} subject and window-named files, the CSV in the PDF's order, the
page size and orientation, and a PDF/A-3b that carries its rows."""

from __future__ import annotations

import csv
import gzip
import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from tests.support.examples import load_example
from tests.support.renderer_cli import parse, pdf_text, send
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import SmtpServer

from tidings import models
from tidings.renderer import run as runner
from tidings.schedule import parse_rfc3339

LATE = parse_rfc3339("2026-11-30T09:00:00+01:00")  # the register's 2024 due dates are past


def rendered(report: dict[str, Any], at: str | None = None) -> runner.Rendered:
    sr = models.ScheduledReport.model_validate(report)
    moment = parse_rfc3339(at) if at else LATE
    return runner.render(sr, moment, runner.Options(retries=0), time.monotonic() + 120)


def text_of(result: runner.Rendered, tmp_path: Path) -> str:
    assert result.document is not None
    return " ".join(pdf_text(result.document.content, tmp_path).split())


def test_open_risks_past_due_are_flagged_and_closed_ones_are_not(tmp_path: Path) -> None:
    report = load_example("risk_report")
    result = rendered(report)
    text = text_of(result, tmp_path)
    figures = {f.label: f.value for f in result.report.figures}
    open_rows = [r for r in result.report.rows if r.get("status") != "accepted" and r.get("due")]
    assert figures["Overdue"] == str(len(open_rows)) != "0"
    assert text.count("overdue") == len(open_rows)
    early = rendered(report, "2024-05-13T09:00:00+02:00")  # before every due date
    assert {f.label: f.value for f in early.report.figures}["Overdue"] == "0"


def test_a_snapshot_is_as_of_its_fire_time(tmp_path: Path) -> None:
    report = load_example("audit_report")
    report["spec"]["timeZone"] = "Europe/Berlin"
    result = rendered(report, "2024-05-13T09:00:00+02:00")
    assert "As of 13 May 2024 09:00 (Europe/Berlin)" in text_of(result, tmp_path)


def test_subject_window_and_file_names_say_which_window() -> None:
    report = small_report(delivery={"subjectTemplate": "{name}: {window} (sent {date})"})
    first = rendered(report, "2024-05-13T09:00:00+02:00")
    second = rendered(report, "2024-05-20T09:00:00+02:00")
    assert first.subject == "Delivery check: 6\u201312 May 2024 (sent 2024-05-13)"
    assert second.subject == "Delivery check: 13\u201319 May 2024 (sent 2024-05-20)"
    assert first.document and first.document.filename == "smtp-check-2024-05-06_2024-05-12.pdf"
    assert second.document and second.document.filename == "smtp-check-2024-05-13_2024-05-19.pdf"


def test_csv_columns_follow_the_pdf_table() -> None:
    report = load_example("risk_report")
    rows = report["spec"]["source"]["inline"]["rows"]
    # As the apiserver returns an object: keys in alphabetical order.
    report["spec"]["source"]["inline"]["rows"] = [dict(sorted(r.items())) for r in rows]
    report["spec"]["delivery"] = {"attachments": ["pdf", "csv"]}
    result = rendered(report)
    (data,) = result.data
    header = next(csv.reader(io.StringIO(gzip.decompress(data.content).decode())))
    table = [c.key for c in result.report.columns if c.kind != "computed"]
    assert header[: len(table)] == table
    assert header[:3] == ["id", "title", "category"]


@pytest.mark.parametrize(
    ("page", "points"),
    [
        ({}, (595, 842)),  # A4 portrait: six columns
        ({"size": "Letter"}, (612, 792)),
        ({"orientation": "landscape"}, (842, 595)),
        ({"size": "Letter", "orientation": "landscape"}, (792, 612)),
    ],
)
def test_page_size_and_orientation(tmp_path: Path, page: dict[str, str], points: tuple) -> None:
    result = rendered(small_report(delivery={"page": page}), "2024-05-13T09:00:00+02:00")
    assert result.document is not None
    box = PdfReader(io.BytesIO(result.document.content)).pages[0].mediabox
    assert (round(box.width), round(box.height)) == points


def test_a_wide_table_turns_landscape_unless_told_otherwise() -> None:
    report = load_example("risk_report")  # nine columns, every one filled
    assert len(rendered(report).report.columns) > models.WIDE_TABLE_COLUMNS
    assert rendered(report).report.page_css == "A4 landscape"
    report["spec"]["delivery"] = {"page": {"orientation": "portrait"}}
    assert rendered(report).report.page_css == "A4 portrait"


def test_pdf_a_3b_carries_its_rows_and_embeds_every_font(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = load_example("risk_report")
    report["spec"]["delivery"] = {"pdfVariant": "pdf/a-3b"}
    code, result = send(tmp_path, capsys, smtp, report)
    assert code == 0, result["error"]
    (pdf,) = list(parse(smtp.recorder.messages[0].content).iter_attachments())
    reader = PdfReader(io.BytesIO(pdf.get_content()))
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert re.search(r'pdfaid:part="3"', xmp) and re.search(r'pdfaid:conformance="B"', xmp)
    # The rows as an associated file of the document, relationship Data.
    specs = {a.get_object()["/F"]: a.get_object() for a in root["/AF"]}
    (name,) = specs
    assert name.endswith(".csv") and specs[name]["/AFRelationship"] == "/Data"
    rows = list(csv.reader(io.StringIO(reader.attachments[name][0].decode())))
    assert rows[0][:3] == ["id", "title", "category"]
    assert len(rows) - 1 == result["rows"] > 0
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font.get("/DescendantFonts")
            described = (descendant[0].get_object() if descendant else font)["/FontDescriptor"]
            assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(described.get_object()), font


def test_pdf_ua_1_is_tagged_and_says_so() -> None:
    report = load_example("changes_summary")
    report["spec"]["delivery"] = {"pdfVariant": "pdf/ua-1"}
    result = rendered(report, "2024-05-13T09:00:00+02:00")
    assert result.document is not None
    root = PdfReader(io.BytesIO(result.document.content)).trailer["/Root"]
    assert "/StructTreeRoot" in root and root["/MarkInfo"]["/Marked"]
    assert 'pdfuaid:part="1"' in root["/Metadata"].get_object().get_data().decode()
