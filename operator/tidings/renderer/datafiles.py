"""The full-data attachments: every filtered row, every column, as gzip CSV or as an xlsx sheet.

Both stream: rows go into the compressor (CSV) or into XlsxWriter's per-row temporary file
(xlsx, `constant_memory`), so neither the uncompressed text nor a cell table ever exists whole in
memory. XlsxWriter rather than openpyxl's write-only mode: in `constant_memory` each row is
written out as soon as the next one starts and strings go inline instead of into a shared-strings
table that grows with the data. openpyxl's write-only mode streams as well (the same peak in
bench.render) but took 1.2 to 1.5 times as long for the same cells (docs/benchmarks.md).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tidings.renderer.mail import Attachment
from tidings.renderer.result import InputError

XLSX_SUBTYPE = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row
_EXACT_INTEGER = 2**53  # beyond this a spreadsheet number loses digits: keep it as text
_MAX_WIDTH = 50


def columns_of(rows: Iterable[Mapping[str, Any]], header: Sequence[str] = ()) -> list[str]:
    """`header` first (the report's columns, so an empty window still has them), then any other
    key in the order rows bring it."""
    columns: dict[str, None] = dict.fromkeys(header)
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def csv_attachment(
    rows: list[dict[str, Any]], filename: str, tz: Any, header: Sequence[str] = ()
) -> Attachment:
    """Gzip-compressed CSV; times in ISO 8601 in the report's zone. Level 6: level 9 is several
    times slower for a few percent on CSV."""
    columns = columns_of(rows, header)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as compressed,
        io.TextIOWrapper(compressed, encoding="utf-8", newline="") as text_out,
    ):
        writer = csv.writer(text_out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_value(row.get(c), tz) for c in columns])
    return Attachment(filename, buffer.getvalue(), "application", "gzip")


# What a spreadsheet opening the CSV would read as the start of a formula (or, after a tab or
# carriage return, as one once the cell is trimmed).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_value(value: Any, tz: Any) -> str:
    """A CSV cell: text that a spreadsheet would run as a formula gets a leading `'`, so it
    opens as the text it is, as the xlsx stores it; numbers (-5) stay numbers."""
    text = text_value(value, tz)
    if text.startswith(_FORMULA_START) and not isinstance(value, int | float | Decimal):
        return "'" + text
    return text


_to_json = json.JSONEncoder(default=str, ensure_ascii=False).encode


def text_value(value: Any, tz: Any) -> str:
    """A cell as text, as the CSV (and the xlsx, for what has no spreadsheet type) shows it."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(text_value(v, tz) for v in value)  # as list cells read in the PDF
    if isinstance(value, dict):
        return _to_json(value)
    return str(value)


def xlsx_attachment(
    rows: list[dict[str, Any]],
    filename: str,
    tz: ZoneInfo,
    header: Sequence[str] = (),
    column_types: Mapping[str, str] | None = None,
    sheet_name: str = "Rows",
) -> Attachment:
    """One sheet: a bold header row with filter buttons, frozen under the header; numbers as
    numbers, times as date-times in the report's zone (a spreadsheet has no zones), dates as
    dates, booleans as booleans, anything else as text (never a formula). `column_types` (the
    report type's documented row schema) lets text from JSON sources become times and numbers."""
    import xlsxwriter

    if len(rows) > XLSX_MAX_ROWS:
        raise InputError(
            f"spec.delivery.attachments: xlsx holds at most {XLSX_MAX_ROWS:,} rows and this "
            f"window has {len(rows):,}; attach csv instead"
        )
    columns = columns_of(rows, header)
    types = column_types or {}
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "constant_memory": True,
            "tmpdir": tempfile.gettempdir(),
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "nan_inf_to_errors": True,
        },
    )
    formats = {
        "header": workbook.add_format({"bold": True, "bottom": 1}),
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
    }
    sheet = workbook.add_worksheet(sheet_name)
    # constant_memory writes each row once: widths and panes come before the data.
    for index, column in enumerate(columns):
        wide = 20 if types.get(column) in ("time", "date") else 10
        sheet.set_column(index, index, min(_MAX_WIDTH, max(wide, len(column) + 2)))
    sheet.freeze_panes(1, 0)
    for index, column in enumerate(columns):
        sheet.write_string(0, index, column, formats["header"])
    for number, row in enumerate(rows, start=1):
        for index, column in enumerate(columns):
            _write_cell(sheet, number, index, row.get(column), types.get(column), tz, formats)
    sheet.autofilter(0, 0, max(1, len(rows)), max(0, len(columns) - 1))
    workbook.close()
    return Attachment(filename, buffer.getvalue(), "application", XLSX_SUBTYPE)


def _write_cell(
    sheet: Any,
    row: int,
    col: int,
    value: Any,
    kind: str | None,
    tz: ZoneInfo,
    formats: Mapping[str, Any],
) -> None:
    value = sheet_value(value, kind, tz)
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, value, formats["datetime"])
    elif isinstance(value, date):
        midnight = datetime(value.year, value.month, value.day)
        sheet.write_datetime(row, col, midnight, formats["date"])
    elif isinstance(value, int | float | Decimal):
        sheet.write_number(row, col, value)
    else:
        sheet.write_string(row, col, value)


def sheet_value(value: Any, kind: str | None, tz: ZoneInfo) -> Any:
    """A row value as a spreadsheet holds it: None (empty), bool, number, date, a naive
    date-time (wall time in `tz`), or text (at most Excel's 32,767 characters per cell)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and kind:
        value = _typed_from_text(value, kind, tz)
    if isinstance(value, datetime):
        return (value.astimezone(tz) if value.tzinfo else value).replace(tzinfo=None)
    if isinstance(value, bool | date):
        return value
    if isinstance(value, int | float | Decimal) and _exact(value):
        return value
    return text_value(value, tz)[:32767]


def _exact(value: int | float | Decimal) -> bool:
    if isinstance(value, int):
        return abs(value) < _EXACT_INTEGER
    return not isinstance(value, Decimal) or value.is_finite()


def _typed_from_text(text: str, kind: str, tz: ZoneInfo) -> Any:
    """A JSON source's text as the schema's type, when it reads as one; else the text."""
    from tidings.renderer.filters import to_datetime

    try:
        if kind == "time":
            return to_datetime(text, tz) or text
        if kind == "date":
            return date.fromisoformat(text.strip())
        if kind in ("number", "integer"):
            number = float(text)
            return number if math.isfinite(number) else text
    except (ValueError, OverflowError):
        pass
    return text
