"""incidents_summary: incidents opened in the window, by severity, status and team."""

from __future__ import annotations

from datetime import timedelta

from tidings.renderer import charts
from tidings.renderer.filters import row_time
from tidings.renderer.reports.common import (
    count_table,
    median_duration,
    ordered_counts,
    severity_colour,
    times_of,
    trend,
)
from tidings.renderer.reports.fmt import (
    CLOSED_STATUSES,
    display,
    fmt_duration,
    fmt_number,
    norm,
    raw,
    severity_order,
    severity_rank,
)
from tidings.renderer.reports.model import Column, Context, Figure, Kind, Row, Summary
from tidings.renderer.reports.model import SchemaColumn as S
from tidings.renderer.reports.sorting import by_time


def summarize(rows: list[Row], ctx: Context) -> Summary:
    severities = [norm(r.get("severity")) for r in rows]
    open_count = sum(1 for r in rows if norm(r.get("status")) not in CLOSED_STATUSES)
    durations = [_resolve_time(i, r, ctx) for i, r in enumerate(rows)]
    resolved = [d for d in durations if d is not None]
    top = sum(1 for s in severities if severity_rank(s) == 0)
    order = severity_order(severities)
    labels, series = trend(
        rows,
        ctx,
        times_of("opened_at", ctx),
        lambda r: norm(r.get("severity")),
        order,
        severity_colour,
    )
    return Summary(
        figures=[
            Figure("Incidents", fmt_number(len(rows))),
            Figure("Critical / Sev1", fmt_number(top), "bad" if top else ""),
            Figure("Still open", fmt_number(open_count), "warn" if open_count else "good"),
            Figure("Resolved", fmt_number(len(resolved))),
            Figure("Median time to resolve", fmt_duration(median_duration(resolved))),
        ],
        breakdowns=[
            ordered_counts("By severity", "Severity", severities, order),
            count_table(
                "By status", "Status", (norm(r.get("status")) for r in rows), label=display
            ),
            count_table("By team", "Team", (raw(r.get("team")) for r in rows)),
        ],
        chart_title="Incidents opened per period, by severity",
        chart_svg=charts.stacked_bars(labels, series, title="Incidents opened per period"),
    )


def _resolve_time(index: int, row: Row, ctx: Context) -> timedelta | None:
    opened = row_time(row, "opened_at", index, ctx.tz)
    resolved = row_time(row, "resolved_at", index, ctx.tz) if "resolved_at" in row else None
    if opened is None or resolved is None or resolved < opened:
        return None
    return resolved - opened


KIND = Kind(
    name="incidents_summary",
    label="Incidents summary",
    time_column="opened_at",
    schema=(
        S("id", "text", "incident identifier", required=True),
        S("title", "text", "summary", required=True),
        S(
            "severity",
            "text",
            "`sev1`…`sev5`, `p1`…`p5` or `critical`, `high`, `medium`, `low`, `info`",
            required=True,
        ),
        S(
            "status",
            "text",
            "`open`, `investigating`, `mitigating`, `resolved`, `closed`, …",
            required=True,
        ),
        S("opened_at", "time", "when it started", required=True),
        S("resolved_at", "time", "when it was resolved (time to resolve)"),
        S("team", "text", "owning team"),
        S("assignee", "text", "incident lead"),
        S("tags", "list or text", "labels"),
    ),
    columns=(
        Column("opened_at", "Opened", "time"),
        Column("id", "Incident"),
        Column("title", "Title"),
        Column("severity", "Severity", "badge"),
        Column("status", "Status", "badge"),
        Column("team", "Team", "name"),
        Column("assignee", "Assignee", "name"),
        Column("resolved_at", "Resolved", "time"),
    ),
    summarize=summarize,
    sort_key=by_time("opened_at"),
    empty_message="No incidents were opened in this window.",
)
