"""audit_log: who did what to which resource in the window; denied or failed events apart."""

from __future__ import annotations

from collections import Counter

from tidings.renderer import charts
from tidings.renderer.reports.common import count_table, times_of, trend
from tidings.renderer.reports.fmt import DENIED_STATUSES, display, fmt_number, norm, raw
from tidings.renderer.reports.model import Column, Context, Figure, Kind, Row, Section, Summary
from tidings.renderer.reports.model import SchemaColumn as S
from tidings.renderer.reports.sorting import by_time


def denied(row: Row) -> bool:
    return norm(row.get("status")) in DENIED_STATUSES


def summarize(rows: list[Row], ctx: Context) -> Summary:
    actors = Counter(raw(r.get("actor")) for r in rows)
    refused = sorted((r for r in rows if denied(r)), key=by_time("time"))
    busiest = actors.most_common(1)[0] if actors else None
    labels, series = trend(
        rows, ctx, times_of("time", ctx), lambda r: norm(r.get("status", "success"))
    )
    sections = []
    if refused:
        sections.append(
            Section(
                "Denied or failed events",
                "Every event in the window that was refused or failed, oldest first; they "
                "are also in the full list below.",
                refused,
            )
        )
    return Summary(
        figures=[
            Figure("Events", fmt_number(len(rows))),
            Figure("Actors", fmt_number(len(actors))),
            Figure("Denied or failed", fmt_number(len(refused)), "bad" if refused else "good"),
            Figure(
                "Most active actor",
                busiest[0] if busiest else "—",
                note=f"{busiest[1]} events" if busiest else "",
            ),
        ],
        breakdowns=[
            count_table("By action", "Action", (raw(r.get("action")) for r in rows)),
            count_table("By actor", "Actor", (raw(r.get("actor")) for r in rows)),
            count_table(
                "By outcome",
                "Status",
                (norm(r.get("status", "success")) for r in rows),
                label=display,
            ),
        ],
        chart_title="Events per period, by outcome",
        chart_svg=charts.stacked_bars(labels, series, title="Events per period, by outcome"),
        sections=sections,
    )


KIND = Kind(
    name="audit_log",
    label="Audit log",
    time_column="time",
    schema=(
        S("time", "time", "when it happened", required=True),
        S("actor", "text", "user or service account", required=True),
        S("action", "text", "verb, e.g. `get`, `update`, `exec`", required=True),
        S("resource", "text", "what it acted on", required=True),
        S("status", "text", "outcome: `success`, `denied`, `error` (default success)"),
        S("source", "text", "client address"),
        S("tags", "list or text", "labels"),
    ),
    columns=(
        Column("time", "Time", "time"),
        Column("actor", "Actor", "name"),
        Column("action", "Action"),
        Column("resource", "Resource", "name"),
        Column("status", "Outcome", "badge"),
        Column("source", "Source"),
    ),
    summarize=summarize,
    sort_key=by_time("time"),
    empty_message="No events in this window.",
)
