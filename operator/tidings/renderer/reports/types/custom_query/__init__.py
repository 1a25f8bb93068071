"""custom_query: any rows as a table, optionally rolled up by named columns (count, sum, avg,
min, max); with a time column the chart plots a chosen numeric column over time.

Options come from spec.customQuery (ctx.options): `rollup` (groupBy, aggregates), `chart`
(column, function) and `columnLabels` (header per column; otherwise headers are as written).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from tidings.renderer import charts
from tidings.renderer.filters import check_columns
from tidings.renderer.reports.common import (
    bucket_members,
    count_table,
    series_for,
    times_of,
    trend,
)
from tidings.renderer.reports.fmt import decimals_of, display, fmt_number, norm, number, raw
from tidings.renderer.reports.model import Column, Context, Figure, Kind, Row, Summary

CHART_BARS = 20
TIME = "time"


def _reduce(function: str, values: list[float], rows: int) -> float | None:
    """One aggregate over a group's values; None when there is nothing to average or compare."""
    if function == "count":
        return float(rows)
    if function == "sum":
        return float(sum(values))
    if not values:
        return None
    return {"avg": statistics.fmean, "min": min, "max": max}[function](values)


def aggregate_key(function: str, column: str | None) -> str:
    """The output column of an aggregate, as written in the spec: count, sum(cost_eur)."""
    return function if not column else f"{function}({column})"


def rollup(rows: Sequence[Row], group_by: Sequence[str], aggregates: Sequence[Any]) -> list[Row]:
    """One row per distinct combination of the group_by values (in first-seen order), with
    each aggregate; numbers are checked (an error names the row and column)."""
    check_columns(rows, group_by, "customQuery.rollup.groupBy")
    needed = [a.column for a in aggregates if a.column]
    check_columns(rows, needed, "customQuery.rollup.aggregates")
    groups: dict[tuple[Any, ...], list[tuple[int, Row]]] = {}
    for index, row in enumerate(rows):
        key = tuple(_group_value(row.get(c)) for c in group_by)
        groups.setdefault(key, []).append((index, row))
    result = []
    for key, members in groups.items():
        out: Row = dict(zip(group_by, key, strict=True))
        for aggregate in aggregates:
            column = aggregate.column
            if aggregate.function == "count" and column:
                # count(column) counts the rows where it has a value, as in SQL.
                present = [r for _, r in members if r.get(column) not in (None, "")]
                value: float | None = float(len(present))
            else:
                values = [
                    v
                    for i, r in members
                    if column and (v := number(r.get(column), column, i)) is not None
                ]
                value = _reduce(aggregate.function, values, len(members))
            out[aggregate_key(aggregate.function, column)] = _plain(value)
        result.append(out)
    return result


def _group_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: float | None) -> float | int | None:
    return int(value) if value is not None and float(value).is_integer() else value


def labeller(ctx: Context) -> Callable[[str], str]:
    """Header for a column: spec.customQuery.columnLabels, otherwise the name as written."""
    labels = {item.column: item.label for item in getattr(ctx.options, "column_labels", [])}
    return lambda key: labels.get(key, key)


def table_columns(rows: Sequence[Row], label: Callable[[str], str]) -> list[Column]:
    """Every column seen, in first-seen order; times, tags, statuses and numbers shown as such,
    each number column with one number of decimals."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    kinds = {TIME: "time", "tags": "tags", "status": "badge"}
    columns = []
    for key in seen:
        kind = kinds.get(key) or ("number" if _numeric(rows, key) else "text")
        decimals = decimals_of(r.get(key) for r in rows) if kind == "number" else None
        columns.append(Column(key, label(key), kind, decimals))
    return columns


def _numeric(rows: Sequence[Row], key: str) -> bool:
    values = [r.get(key) for r in rows if r.get(key) is not None]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def summarize(rows: list[Row], ctx: Context) -> Summary:
    options = ctx.options
    label = labeller(ctx)
    plan = getattr(options, "rollup", None)
    shown = rollup(rows, plan.group_by, plan.aggregates) if plan else list(rows)
    if plan:
        first = aggregate_key(plan.aggregates[0].function, plan.aggregates[0].column)
        shown.sort(key=lambda r: (r[first] is None, -(r[first] or 0)))
    columns = table_columns(shown, label)
    decimals = {c.key: c.decimals for c in columns}
    figures = []
    if plan:
        # Totals only of the additive aggregates: a sum of averages means nothing.
        for aggregate in plan.aggregates:
            if aggregate.function in ("count", "sum"):
                key = aggregate_key(aggregate.function, aggregate.column)
                total = sum(r[key] or 0 for r in shown)
                figures.append(
                    Figure(label(key), fmt_number(total, decimals.get(key)), note="all groups")
                )
    breakdowns = []
    if not plan and any("status" in r for r in rows):
        breakdowns.append(
            count_table("By status", "Status", (norm(r.get("status")) for r in rows), label=display)
        )
    title, svg = _chart(rows, shown, columns, ctx, label)
    return Summary(
        figures=figures,
        breakdowns=breakdowns,
        chart_title=title,
        chart_svg=svg,
        rows=shown,
        columns=columns,
        extra={"rollup": True} if plan else {},
    )


def _chart(
    rows: list[Row],
    shown: list[Row],
    columns: list[Column],
    ctx: Context,
    label: Callable[[str], str],
) -> tuple[str, str]:
    choice = getattr(ctx.options, "chart", None)
    if rows and all(TIME in r for r in rows):
        if choice is None:
            title = "Rows per period"
            labels, series = trend(
                rows, ctx, times_of(TIME, ctx), lambda r: norm(r.get("status", "rows"))
            )
            return title, charts.stacked_bars(labels, series, title=title)
        return _metric_over_time(rows, ctx, choice.column, choice.function, label)
    numbers = [c for c in columns if c.kind == "number"]
    texts = [c for c in columns if c.kind in ("text", "badge")]
    wanted = next((c for c in numbers if choice and c.key == choice.column), None)
    rolled_up = numbers and getattr(ctx.options, "rollup", None)  # an empty window has none
    value_column = wanted or (numbers[-1] if rolled_up else None)
    value_column = value_column or next(iter(numbers), None)
    if not shown or value_column is None or not texts:
        return "", ""
    text_key = texts[0].key
    # Largest first, so the bars read as a ranking.
    ranked = sorted(shown, key=lambda r: -(r.get(value_column.key) or 0))[:CHART_BARS]
    title = f"{value_column.label} by {texts[0].label}"
    svg = charts.horizontal_bars(
        [raw(r.get(text_key)) for r in ranked],
        [float(r.get(value_column.key) or 0) for r in ranked],
        title=title,
        decimals=value_column.decimals,
    )
    return title, svg


def _metric_over_time(
    rows: list[Row], ctx: Context, column: str, function: str, label: Callable[[str], str]
) -> tuple[str, str]:
    """The chosen column per period: its sum (or count, avg, min, max) in each bucket."""
    check_columns(rows, [column], "customQuery.chart.column")
    labels, members = bucket_members(rows, ctx, times_of(TIME, ctx))
    totals = []
    for indexes in members:
        found = [v for i in indexes if (v := number(rows[i].get(column), column, i)) is not None]
        totals.append(_reduce(function, found, len(indexes)) or 0.0)
    digits = decimals_of(totals)
    name = label(aggregate_key(function, column))
    title = f"{name} per period"
    series = series_for([name], {name: totals}, lambda _n, _u: charts.INFO)
    return title, charts.stacked_bars(labels, series, title=title, decimals=digits)


KIND = Kind(
    name="custom_query",
    label="Query results",
    time_column=TIME,
    schema=(),
    columns=(),
    summarize=summarize,
    time_optional=True,
    empty_message="The query returned no rows for this window.",
)
