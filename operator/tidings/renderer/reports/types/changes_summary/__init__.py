"""changes_summary: changes shipped in the window, their outcome, by status and team."""

from __future__ import annotations

from tidings.renderer import charts
from tidings.renderer.reports.common import count_table, times_of, trend
from tidings.renderer.reports.fmt import display, fmt_number, fmt_percent, norm, raw, tone
from tidings.renderer.reports.model import Column, Context, Figure, Kind, Row, Summary
from tidings.renderer.reports.model import SchemaColumn as S
from tidings.renderer.reports.sorting import by_time


def summarize(rows: list[Row], ctx: Context) -> Summary:
    statuses = [norm(r.get("status")) for r in rows]
    good = sum(1 for s in statuses if tone(s) == "good")
    bad = sum(1 for s in statuses if tone(s) == "bad")
    teams = {raw(r.get("team")) for r in rows if r.get("team")}
    labels, series = trend(
        rows, ctx, times_of("completed_at", ctx), lambda r: norm(r.get("status"))
    )
    return Summary(
        figures=[
            Figure("Changes", fmt_number(len(rows))),
            Figure("Completed", fmt_number(good), "good" if good else ""),
            Figure("Failed or rolled back", fmt_number(bad), "bad" if bad else ""),
            Figure("Success rate", fmt_percent(good, good + bad), note="completed of finished"),
            Figure("Teams", fmt_number(len(teams))),
        ],
        breakdowns=[
            count_table("By status", "Status", statuses, label=display),
            count_table("By team", "Team", (raw(r.get("team")) for r in rows)),
        ],
        chart_title="Changes per period, by status",
        chart_svg=charts.stacked_bars(labels, series, title="Changes per period, by status"),
    )


KIND = Kind(
    name="changes_summary",
    label="Changes summary",
    time_column="completed_at",
    schema=(
        S("id", "text", "change identifier, e.g. CHG-1042", required=True),
        S("title", "text", "what changed", required=True),
        S(
            "status",
            "text",
            "`completed`, `failed`, `rolled_back`, … (completed-like count as success, "
            "failed-like as failure)",
            required=True,
        ),
        S("completed_at", "time", "when the change finished", required=True),
        S("team", "text", "owning team"),
        S("assignee", "text", "who did it"),
        S("tags", "list or text", "labels such as `payments`"),
    ),
    columns=(
        Column("completed_at", "Completed", "time"),
        Column("id", "Change"),
        Column("title", "Title"),
        Column("status", "Status", "badge"),
        Column("team", "Team", "name"),
        Column("assignee", "Assignee", "name"),
        Column("tags", "Tags", "tags"),
    ),
    summarize=summarize,
    sort_key=by_time("completed_at"),
    empty_message="No changes in this window.",
)
