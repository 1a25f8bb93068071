"""executive_summary: headline metrics against the previous period and their targets."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tidings.renderer import charts
from tidings.renderer.reports.fmt import cell_text, fmt_number, norm, number, truthy
from tidings.renderer.reports.model import Cell, Column, Context, Figure, Kind, Row, Summary
from tidings.renderer.reports.model import SchemaColumn as S
from tidings.renderer.reports.program import PROGRAM_COLUMN


def metric_change(index: int, row: Row) -> tuple[float | None, bool | None]:
    """Percent change of value against previous, and whether that is an improvement."""
    value = number(row.get("value"), "value", index)
    previous = number(row.get("previous"), "previous", index)
    if value is None or previous is None or previous == 0:
        return None, None
    pct = 100 * (value - previous) / abs(previous)
    if pct == 0:
        return 0.0, None
    higher_is_better = truthy(row.get("higher_is_better", True))
    return pct, (pct > 0) == higher_is_better


def summarize(rows: list[Row], ctx: Context) -> Summary:
    changes = [metric_change(i, r) for i, r in enumerate(rows)]
    statuses = [norm(r.get("status")) for r in rows if r.get("status")]
    counts = Counter(statuses)
    improved = sum(1 for _, better in changes if better)
    compared = sum(1 for pct, _ in changes if pct is not None)
    items = [
        charts.Change(str(r.get("metric")), pct, better)
        for r, (pct, better) in zip(rows, changes, strict=True)
    ]
    return Summary(
        figures=[
            Figure("Metrics", fmt_number(len(rows))),
            Figure(
                "On track", fmt_number(counts["on_track"]), "good" if counts["on_track"] else ""
            ),
            Figure("At risk", fmt_number(counts["at_risk"]), "warn" if counts["at_risk"] else ""),
            Figure(
                "Off track", fmt_number(counts["off_track"]), "bad" if counts["off_track"] else ""
            ),
            Figure(
                "Improved",
                f"{improved} of {compared}",
                note="against the previous period",
            ),
        ],
        breakdowns=[],
        chart_title="Change against the previous period",
        chart_svg=charts.change_bars(items, title="Change against the previous period"),
    )


def cell(row: Row, column: Column, ctx: Context, extra: dict[str, Any]) -> Cell | None:
    if column.key == "value":
        unit = str(row.get("unit") or "")
        text = cell_text(row.get("value"), "number", ctx.tz)
        return Cell(f"{text} {unit}".strip() if unit else text)
    if column.key == "change":
        pct, improved = metric_change(0, row)
        if pct is None:
            return Cell("—")
        return Cell(f"{pct:+.1f}%", "" if improved is None else ("good" if improved else "bad"))
    return None


KIND = Kind(
    name="executive_summary",
    label="Executive summary",
    time_column=None,
    schema=(
        S("metric", "text", "metric name", required=True),
        S("value", "number", "this period's value", required=True),
        S("previous", "number", "previous period's value (change %)"),
        S("target", "number", "target value"),
        S("unit", "text", "shown after the value"),
        S("status", "text", "`on_track`, `at_risk`, `off_track`"),
        S("higher_is_better", "boolean", "default true; false for latency, cost, incidents"),
        S("assignee", "text", "metric owner"),
        PROGRAM_COLUMN,
    ),
    columns=(
        Column("metric", "Metric"),
        Column("value", "Value", "number"),
        Column("previous", "Previous", "number"),
        Column("change", "Change", "computed"),
        Column("target", "Target", "number"),
        Column("status", "Status", "badge"),
        Column("assignee", "Owner", "name"),
    ),
    summarize=summarize,
    cell=cell,
    empty_message="No metrics match the filters.",
)
