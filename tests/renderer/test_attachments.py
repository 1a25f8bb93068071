"""delivery.attachments (pdf, csv, xlsx) and delivery.skipIfEmpty, sent to a real SMTP server on
loopback; the xlsx is read back by a second, independent reader (openpyxl) and compared with the
CSV cell by cell."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from tests.support.examples import load_example
from tests.support.renderer_cli import parse, send
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import SmtpServer

from tidings.renderer.datafiles import XLSX_SUBTYPE, xlsx_attachment
from tidings.renderer.result import EX_DATAERR, EX_OK
from tidings.validation import validate_spec

BERLIN = ZoneInfo("Europe/Berlin")


def attachments_of(smtp: SmtpServer) -> dict[str, Any]:
    message = parse(smtp.recorder.messages[-1].content)
    return {part.get_filename(): part for part in message.iter_attachments()}


def read_xlsx(content: bytes) -> tuple[Any, list[tuple[Any, ...]]]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return sheet, list(sheet.iter_rows(values_only=True))


def read_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(gzip.decompress(content).decode("utf-8"))))


def same_value(csv_text: str, cell: Any, tz: ZoneInfo) -> bool:
    """A CSV cell (text) and the xlsx cell (typed) hold the same value. The xlsx has no zones:
    a time is the wall time in the report's zone."""
    if csv_text == "":
        return cell is None
    if isinstance(cell, datetime):
        moment = datetime.fromisoformat(csv_text)
        local = moment.astimezone(tz).replace(tzinfo=None) if moment.tzinfo else moment
        return local == cell
    if isinstance(cell, bool):
        return csv_text == str(cell)
    if isinstance(cell, int | float):
        return float(csv_text) == pytest.approx(cell, rel=1e-15)
    return csv_text == cell


WEEK = "2024-05-06_2024-05-12"  # {previous: week} at the examples' --at


@pytest.mark.parametrize("example", ["changes_summary", "incidents_summary", "custom_query"])
def test_xlsx_holds_the_same_values_as_the_csv(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], example: str
) -> None:
    report = load_example(example)
    report["spec"]["delivery"] = {"attachments": ["pdf", "csv", "xlsx"]}
    code, result = send(tmp_path, capsys, smtp, report)
    assert code == EX_OK, result["error"]
    files = attachments_of(smtp)
    # Files are named by the window: {last: 7d} ends at the fire time, 09:00.
    window = "2024-05-06T0900_2024-05-13T0900" if example == "incidents_summary" else WEEK
    stem = f"{report['metadata']['name']}-{window}"
    assert set(files) == {f"{stem}.{s}" for s in ("pdf", "csv.gz", "xlsx")}
    xlsx = files[f"{stem}.xlsx"]
    assert xlsx.get_content_type() == f"application/{XLSX_SUBTYPE}"
    sheet, cells = read_xlsx(xlsx.get_content())
    table = read_csv(files[f"{stem}.csv.gz"].get_content())
    assert len(cells) == len(table) > 1
    assert list(cells[0]) == table[0]  # the header row
    tz = ZoneInfo(report["spec"].get("timeZone", "UTC"))
    for number, (row, line) in enumerate(zip(cells[1:], table[1:], strict=True), start=2):
        for column, cell, text in zip(table[0], row, line, strict=True):
            assert same_value(text, cell, tz), (number, column, text, cell)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(table[0])).column_letter}{len(cells)}"
    assert sheet["A1"].font.b  # a bold header


def test_xlsx_cells_are_typed() -> None:
    rows = [
        {
            "at": datetime(2024, 5, 6, 7, 0, tzinfo=ZoneInfo("UTC")),
            "day": date(2024, 5, 6),
            "count": 7,
            "cost": 12.5,
            "ok": True,
            "formula": '=HYPERLINK("http://x")',
            "big": 2**60,
            "tags": ["a", "b"],
            "json_time": "2024-05-06T07:00:00Z",
            "json_number": "42.5",
            "not_a_number": "n/a",
            "empty": None,
        }
    ]
    types = {"json_time": "time", "json_number": "number", "not_a_number": "number"}
    attachment = xlsx_attachment(rows, "t.xlsx", BERLIN, ("at",), types)
    sheet = openpyxl.load_workbook(io.BytesIO(attachment.content)).active
    values = {sheet.cell(1, c).value: sheet.cell(2, c) for c in range(1, sheet.max_column + 1)}
    assert values["at"].value == datetime(2024, 5, 6, 9, 0)  # Berlin wall time
    assert values["at"].is_date and values["day"].is_date
    assert values["day"].value == datetime(2024, 5, 6)
    assert values["day"].number_format == "yyyy-mm-dd"
    assert (values["count"].value, values["count"].data_type) == (7, "n")
    assert (values["cost"].value, values["cost"].data_type) == (12.5, "n")
    assert values["ok"].value is True
    # Text that looks like a formula stays text: a report row cannot run anything.
    assert (values["formula"].value, values["formula"].data_type) == ('=HYPERLINK("http://x")', "s")
    assert values["big"].value == str(2**60)  # a number would lose digits
    assert values["tags"].value == "a; b"
    assert values["json_time"].value == datetime(2024, 5, 6, 9, 0)
    assert values["json_number"].value == 42.5
    assert values["not_a_number"].value == "n/a"
    assert values["empty"].value is None


def test_an_empty_window_still_has_the_header_row() -> None:
    attachment = xlsx_attachment([], "t.xlsx", BERLIN, ("id", "title"))
    _, cells = read_xlsx(attachment.content)
    assert cells == [("id", "title")]


def test_only_the_listed_attachments_are_sent(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, small_report(delivery={"attachments": ["xlsx"]}))
    assert code == EX_OK, result["error"]
    assert set(attachments_of(smtp)) == {"smtp-check-2024-05-06_2024-05-12.xlsx"}
    assert result["renderer"] is None  # no PDF was rendered
    html = parse(smtp.recorder.messages[-1].content).get_body(("html",)).get_content()
    assert "Every row is in the attached spreadsheet (xlsx)." in html


def test_attach_csv_still_means_pdf_and_csv(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = send(tmp_path, capsys, smtp, small_report(delivery={"attachCsv": True}))
    assert code == EX_OK
    names = {"smtp-check-2024-05-06_2024-05-12.pdf", "smtp-check-2024-05-06_2024-05-12.csv.gz"}
    assert set(attachments_of(smtp)) == names


@pytest.mark.parametrize(
    ("delivery", "path", "rule"),
    [
        ({"attachCsv": True, "attachments": ["pdf"]}, "spec.delivery.attachCsv", "older form"),
        ({"attachments": ["pdf", "doc"]}, "spec.delivery.attachments[1]", "pdf"),
        ({"attachments": []}, "spec.delivery.attachments", "at least 1"),
    ],
)
def test_attachment_rules_name_the_field(delivery: dict, path: str, rule: str) -> None:
    spec = small_report(delivery=delivery)["spec"]
    errors = validate_spec(spec).errors
    assert any(e.path == path and rule in e.message for e in errors), errors


def test_skip_if_empty_sends_nothing_and_says_skipped(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = small_report(delivery={"skipIfEmpty": True})
    empty["spec"]["filters"] = {"window": {"from": "2020-01-01", "to": "2020-01-08"}}
    code, result = send(tmp_path, capsys, smtp, empty)
    assert code == EX_OK
    assert smtp.recorder.messages == []
    assert result["outcome"] == "Skipped"
    assert result["failure"] is None and result["bytes"] == 0
    assert result["error"].startswith("nothing sent: ")
    assert "skipIfEmpty" in result["error"]
    assert result["windowStart"] == "2019-12-31T23:00:00Z"


def test_skip_if_empty_still_sends_a_window_with_rows(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, small_report(delivery={"skipIfEmpty": True}))
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert len(smtp.recorder.messages) == 1


def test_without_skip_if_empty_an_empty_window_is_mailed(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = small_report()
    empty["spec"]["filters"] = {"window": {"from": "2020-01-01", "to": "2020-01-08"}}
    code, result = send(tmp_path, capsys, smtp, empty)
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert len(smtp.recorder.messages) == 1


def test_too_many_rows_for_a_sheet_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tidings.renderer import datafiles
    from tidings.renderer.result import InputError

    monkeypatch.setattr(datafiles, "XLSX_MAX_ROWS", 2)
    with pytest.raises(InputError, match="attach csv instead") as error:
        xlsx_attachment([{"a": 1}] * 3, "t.xlsx", BERLIN)
    assert error.value.exit_code == EX_DATAERR
