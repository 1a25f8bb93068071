"""risk_report: the risk register scored likelihood x impact on a 5x5 matrix."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from tidings.renderer import charts
from tidings.renderer.reports.common import count_table, ordered_counts, overdue_cell, past_due
from tidings.renderer.reports.fmt import CLOSED_STATUSES, TIMES, display, fmt_number, norm, raw
from tidings.renderer.reports.model import Cell, Column, Context, Figure, Kind, Row, Summary
from tidings.renderer.reports.model import SchemaColumn as S
from tidings.renderer.reports.program import PROGRAM_COLUMN
from tidings.renderer.result import InputError

# Every band gets a badge, in the matrix's colours (report.css: .badge.mild is medium).
BAND_TONE = {"critical": "bad", "high": "warn", "medium": "mild", "low": "good"}


def status(row: Row) -> str:
    return norm(row.get("status", "open"))


def overdue(row: Row, ctx: Context, index: int = 0) -> bool:
    """Not closed or accepted, and its mitigation was due before the report's as-of time."""
    return status(row) not in CLOSED_STATUSES | {"accepted"} and past_due(row, ctx, index)


def risk_score(index: int, row: Row) -> tuple[int, int]:
    """Likelihood and impact, each an integer 1-5; InputError naming the row otherwise."""
    return _one_to_five(row.get("likelihood"), "likelihood", index), _one_to_five(
        row.get("impact"), "impact", index
    )


def _one_to_five(value: Any, column: str, index: int) -> int:
    score = None
    if isinstance(value, int) and not isinstance(value, bool):
        score = value
    elif isinstance(value, float) and value.is_integer():
        score = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        score = int(value.strip())
    if score is None or not 1 <= score <= 5:
        raise InputError(f"row {index}: {column} {value!r} must be an integer from 1 to 5")
    return score


def score(row: Row) -> int:
    likelihood, impact = risk_score(0, row)
    return likelihood * impact


def summarize(rows: list[Row], ctx: Context) -> Summary:
    scores = [risk_score(i, r) for i, r in enumerate(rows)]
    bands = [charts.risk_band(lik * imp) for lik, imp in scores]
    counts = Counter(bands)
    cells = Counter(scores)
    statuses = [status(r) for r in rows]
    # "Open" is the status open, as in the status breakdown next to it.
    open_count = statuses.count("open")
    mean = statistics.mean(lik * imp for lik, imp in scores) if scores else None
    late = sum(overdue(r, ctx, i) for i, r in enumerate(rows))
    return Summary(
        figures=[
            Figure("Risks", fmt_number(len(rows))),
            Figure("Critical", fmt_number(counts["critical"]), "bad" if counts["critical"] else ""),
            Figure("High", fmt_number(counts["high"]), "warn" if counts["high"] else ""),
            Figure("Open", fmt_number(open_count), note="status open"),
            Figure("Overdue", fmt_number(late), "bad" if late else "", note="past due"),
            Figure("Average score", "—" if mean is None else f"{mean:.1f}", note="of 25"),
        ],
        breakdowns=[
            ordered_counts("By rating", "Rating", bands, ["critical", "high", "medium", "low"]),
            count_table("By category", "Category", (raw(r.get("category")) for r in rows)),
            count_table("By status", "Status", statuses, label=display),
        ],
        chart_title=f"Likelihood {TIMES} impact",
        chart_svg=charts.risk_matrix(cells, title="Likelihood by impact"),
    )


def cell(row: Row, column: Column, ctx: Context, extra: dict[str, Any]) -> Cell | None:
    if column.key == "due":
        return overdue_cell(row, ctx) if overdue(row, ctx) else None
    if column.key != "score":
        return None
    value = score(row)
    band = charts.risk_band(value)
    return Cell(f"{value} {display(band)}", BAND_TONE[band])


KIND = Kind(
    name="risk_report",
    label="Risk register",
    time_column=None,
    schema=(
        S("id", "text", "risk identifier", required=True),
        S("title", "text", "the risk", required=True),
        S("likelihood", "integer 1\u20135", "", required=True),
        S("impact", "integer 1\u20135", "", required=True),
        S("category", "text", "security, operational, …"),
        S("status", "text", "`open` (default), `mitigating`, `accepted`, `closed`"),
        S("assignee", "text", "risk owner"),
        S("due", "date", "mitigation due date"),
        S("tags", "list or text", "labels"),
        PROGRAM_COLUMN,
    ),
    columns=(
        Column("id", "Risk"),
        Column("title", "Title"),
        Column("category", "Category"),
        Column("likelihood", "L", "number"),
        Column("impact", "I", "number"),
        Column("score", "Score", "computed"),
        Column("status", "Status", "badge"),
        Column("assignee", "Owner", "name"),
        Column("due", "Due", "date"),
    ),
    summarize=summarize,
    sort_key=lambda r: -score(r),
    cell=cell,
    empty_message="No risks match the filters.",
)
