"""audit_report: audit findings and their remediation, across every program."""

from __future__ import annotations

from typing import Any

from tidings.renderer import charts
from tidings.renderer.reports.common import (
    count_table,
    ordered_counts,
    overdue_cell,
    past_due,
    series_for,
)
from tidings.renderer.reports.fmt import (
    CLOSED_STATUSES,
    display,
    fmt_number,
    norm,
    raw,
    severity_order,
    severity_rank,
)
from tidings.renderer.reports.model import Cell, Column, Context, Figure, Kind, Row, Summary
from tidings.renderer.reports.model import SchemaColumn as S


def finding_open(row: Row) -> bool:
    return norm(row.get("status")) not in CLOSED_STATUSES | {"accepted"}


def overdue(row: Row, ctx: Context, index: int = 0) -> bool:
    """Still open after its due date, as of the report's scheduled time."""
    return finding_open(row) and past_due(row, ctx, index)


def summarize(rows: list[Row], ctx: Context) -> Summary:
    severities = [norm(r.get("severity")) for r in rows]
    order = severity_order(severities)
    is_open = [finding_open(r) for r in rows]
    late = [overdue(r, ctx, i) for i, r in enumerate(rows)]
    serious = sum(
        1 for s, o in zip(severities, is_open, strict=True) if o and severity_rank(s) <= 1
    )
    statuses = sorted({norm(r.get("status")) for r in rows})
    counts: dict[str, list[float]] = {s: [0] * len(order) for s in statuses}
    for row, severity in zip(rows, severities, strict=True):
        counts[norm(row.get("status"))][order.index(severity)] += 1
    series = series_for(statuses, counts)
    return Summary(
        figures=[
            Figure("Findings", fmt_number(len(rows))),
            Figure("Open", fmt_number(sum(is_open)), "warn" if any(is_open) else "good"),
            Figure("Overdue", fmt_number(sum(late)), "bad" if any(late) else "good"),
            Figure("Open critical or high", fmt_number(serious), "bad" if serious else ""),
        ],
        breakdowns=[
            ordered_counts("By severity", "Severity", severities, order),
            count_table(
                "By status", "Status", (norm(r.get("status")) for r in rows), label=display
            ),
            count_table(
                "Open findings by owner",
                "Owner",
                (raw(r.get("assignee")) for r, o in zip(rows, is_open, strict=True) if o),
            ),
        ],
        chart_title="Findings by severity and status",
        chart_svg=charts.stacked_bars(
            [display(s) for s in order], series, title="Findings by severity and status"
        ),
    )


def cell(row: Row, column: Column, ctx: Context, extra: dict[str, Any]) -> Cell | None:
    return overdue_cell(row, ctx) if column.key == "due" and overdue(row, ctx) else None


KIND = Kind(
    name="audit_report",
    label="Audit findings",
    time_column=None,
    schema=(
        S("id", "text", "finding identifier", required=True),
        S("title", "text", "the finding", required=True),
        S(
            "severity",
            "text",
            "`critical`, `high`, `medium`, `low` (or sev/p levels)",
            required=True,
        ),
        S(
            "status",
            "text",
            "`open`, `in_progress`, `remediated`, `accepted`, …",
            required=True,
        ),
        S("control", "text", "related control"),
        S("assignee", "text", "owner"),
        S("due", "date", "remediation due date"),
        S("raised_at", "date", "when it was raised"),
        S("tags", "list or text", "labels"),
    ),
    columns=(
        Column("id", "Finding"),
        Column("title", "Title"),
        Column("severity", "Severity", "badge"),
        Column("status", "Status", "badge"),
        Column("control", "Control"),
        Column("assignee", "Owner", "name"),
        Column("due", "Due", "date"),
    ),
    summarize=summarize,
    sort_key=lambda r: (severity_rank(r.get("severity")), str(r.get("due") or "9999")),
    cell=cell,
    empty_message="No findings match the filters.",
)
