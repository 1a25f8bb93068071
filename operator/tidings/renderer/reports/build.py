"""Filtered rows in, a Report out: the type's summary, its sorted and capped detail table, the
header lines (window or snapshot date, program, filters) and the empty-window page. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from tidings.models import WIDE_TABLE_COLUMNS
from tidings.renderer.reports.fmt import (
    as_of_label,
    cell_text,
    fmt_time,
    list_text,
    severity_tone,
    tone,
    window_label,
)
from tidings.renderer.reports.model import (
    COMPACT_ABOVE,
    Cell,
    Column,
    Context,
    Kind,
    Report,
    Row,
)
from tidings.renderer.reports.types import discover

KINDS: dict[str, Kind] = discover()


def time_column_for(report_type: str, rows: Sequence[Row]) -> str | None:
    """The column the window applies to for these rows (None: no window filtering)."""
    kind = KINDS[report_type]
    if kind.time_optional and not any(kind.time_column in r for r in rows):
        return None
    return kind.time_column


def filters_label(filters: Any) -> str:
    """The set filters as the header shows them: 'status: completed · team: payments'."""
    if filters is None:
        return ""
    parts = [
        f"{key}: {list_text(values)}"
        for key in ("status", "tags", "assignee", "team")
        if (values := getattr(filters, key, None))
    ]
    return " · ".join(parts)


def build_report(
    *,
    report_type: str,
    title: str,
    name: str,
    namespace: str,
    rows: list[Row],
    ctx: Context,
    generated_at: datetime,
    max_table_rows: int,
    spec: Any = None,
    source_columns: Iterable[str] = (),
    page_size: str = "A4",
    orientation: str = "auto",
) -> Report:
    """The Report for already filtered rows; the table holds at most max_table_rows rows.
    `spec` (a models.ScheduledReportSpec) adds the program, the filters and the type's options;
    `source_columns` are the columns the source had, for the CSV header of an empty window;
    `page_size` and `orientation` are spec.delivery.page's (auto: landscape for wide tables)."""
    kind = KINDS[report_type]
    if spec is not None and report_type == "custom_query":
        ctx = dataclasses.replace(ctx, options=spec.custom_query)
    summary = kind.summarize(rows, ctx)
    detail = summary.rows if summary.rows is not None else rows
    ordered = sorted(detail, key=kind.sort_key) if kind.sort_key else list(detail)
    columns = summary.columns if summary.columns is not None else list(kind.columns)
    # Optional columns nobody filled in only take space.
    shown_columns = [
        c
        for c in columns
        if c.kind == "computed" or c.key in kind.required or any(_has(r, c.key) for r in ordered)
    ]

    def table(some: Sequence[Row]) -> list[list[Cell]]:
        return [_table_row(kind, row, shown_columns, ctx, summary.extra) for row in some]

    # An extract is always a styled table, so it stays within the listing threshold.
    extract_rows = max(0, min(max_table_rows, COMPACT_ABOVE))
    sections = [
        dataclasses.replace(s, table=table(s.rows[:extract_rows])) for s in summary.sections
    ]
    empty = not ordered
    window = (
        as_of_label(ctx.as_of, ctx.tz)
        if kind.snapshot
        else window_label(ctx.start, ctx.end, ctx.tz)
    )
    return Report(
        report_type=report_type,
        type_label=kind.label,
        title=title,
        name=name,
        namespace=namespace,
        window_label=window,
        generated_label=f"{fmt_time(generated_at, ctx.tz)} {ctx.tz.key}",
        # An empty window has nothing to count, chart or rate: the page says so instead.
        figures=[] if empty else summary.figures,
        breakdowns=[] if empty else summary.breakdowns,
        chart_title="" if empty else summary.chart_title,
        chart_svg="" if empty else summary.chart_svg,
        columns=shown_columns,
        table=table(ordered[: max(0, max_table_rows)]),
        rows=ordered,
        extra={} if empty else summary.extra,
        program=str(getattr(spec, "program", None) or ""),
        filters_label=filters_label(getattr(spec, "filters", None)),
        sections=[] if empty else sections,
        empty_message=kind.empty_message,
        csv_columns=_csv_columns(kind, ordered, columns, source_columns),
        page_css=f"{page_size} {page_orientation(orientation, len(shown_columns))}",
    )


def page_orientation(orientation: str, columns: int) -> str:
    """portrait or landscape; auto turns a table wider than WIDE_TABLE_COLUMNS columns."""
    if orientation != "auto":
        return orientation
    return "landscape" if columns > WIDE_TABLE_COLUMNS else "portrait"


def _csv_columns(
    kind: Kind, rows: Sequence[Row], columns: Sequence[Column], source: Iterable[str]
) -> list[str]:
    """The CSV header: the detail table's columns in the PDF's order, then every other column
    in the order the rows (for an empty window, the source) bring them; with neither rows nor
    source columns, the type's documented (or the roll-up's) columns, so the file always has a
    header row. The table's order, not the rows': an object read back from the apiserver has
    its keys sorted alphabetically."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    if not seen:
        seen.update(dict.fromkeys(source))
    if not seen:
        keys = [c.key for c in kind.schema] or [c.key for c in columns if c.kind != "computed"]
        seen.update(dict.fromkeys(keys))
    table = [c.key for c in columns if c.kind != "computed" and c.key in seen]
    return list(dict.fromkeys([*table, *seen]))


def _has(row: Row, key: str) -> bool:
    value = row.get(key)
    return value is not None and value != "" and value != []


def _table_row(
    kind: Kind, row: Row, columns: list[Column], ctx: Context, extra: dict[str, Any]
) -> list[Cell]:
    cells = []
    for column in columns:
        own = kind.cell(row, column, ctx, extra) if kind.cell else None
        if own is not None:
            cells.append(own)
            continue
        value = row.get(column.key)
        text = cell_text(value, column.kind, ctx.tz, column.decimals)
        cell_tone = ""
        if column.kind == "badge":
            cell_tone = severity_tone(value) if column.key == "severity" else tone(value)
        cells.append(Cell(text, cell_tone))
    return cells
