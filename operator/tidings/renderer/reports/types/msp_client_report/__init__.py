"""msp_client_report: one row per client tenant of a managed-service provider, with its
compliance posture, open findings, open risks and last audit, weakest posture first."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from tidings.renderer import charts
from tidings.renderer.filters import row_time
from tidings.renderer.reports.common import count_table
from tidings.renderer.reports.fmt import cell_text, fmt_number, number, raw
from tidings.renderer.reports.model import (
    Breakdown,
    Cell,
    Column,
    Context,
    Figure,
    Kind,
    Row,
    Summary,
)
from tidings.renderer.reports.model import SchemaColumn as S
from tidings.renderer.reports.program import PROGRAM_COLUMN
from tidings.renderer.result import InputError

STRONG, FAIR = 90, 75  # posture bands: strong 90-100, fair 75-89, weak below 75
AUDIT_DUE = timedelta(days=365)  # a client unaudited for longer is due an audit
BAND_TONE = {"strong": "good", "fair": "warn", "weak": "bad"}


def posture(index: int, row: Row) -> float:
    """The posture score, 0-100; InputError naming the row otherwise."""
    value = number(row.get("posture"), "posture", index)
    if value is None or not 0 <= value <= 100:
        raise InputError(
            f"row {index}: posture {row.get('posture')!r} must be a number from 0 to 100"
        )
    return value


def band(score: float) -> str:
    return "strong" if score >= STRONG else ("fair" if score >= FAIR else "weak")


def count(index: int, row: Row, column: str) -> int:
    value = number(row.get(column), column, index)
    if value is None:
        return 0
    if value < 0 or not value.is_integer():
        raise InputError(f"row {index}: {column} {row.get(column)!r} must be a whole number")
    return int(value)


def audit_due(index: int, row: Row, ctx: Context) -> bool:
    """Never audited, or last audited more than a year before the report's as-of time."""
    last = row_time(row, "last_audit", index, ctx.tz)
    return last is None or ctx.as_of - last > AUDIT_DUE


def summarize(rows: list[Row], ctx: Context) -> Summary:
    scores = [posture(i, r) for i, r in enumerate(rows)]
    bands = Counter(band(s) for s in scores)
    findings = sum(count(i, r, "open_findings") for i, r in enumerate(rows))
    risks = sum(count(i, r, "open_risks") for i, r in enumerate(rows))
    due = sum(1 for i, r in enumerate(rows) if audit_due(i, r, ctx))
    mean = sum(scores) / len(scores) if scores else None
    ranked = sorted(zip(scores, rows, strict=True), key=lambda pair: pair[0])
    return Summary(
        figures=[
            Figure("Clients", fmt_number(len(rows))),
            Figure(
                "Average posture",
                "—" if mean is None else f"{mean:.0f}%",
                "" if mean is None else BAND_TONE[band(mean)],
                "of 100",
            ),
            Figure("Weak posture", fmt_number(bands["weak"]), "bad" if bands["weak"] else "good"),
            Figure("Open findings", fmt_number(findings), "warn" if findings else "good"),
            Figure("Open risks", fmt_number(risks), "warn" if risks else "good"),
            Figure("Audit due", fmt_number(due), "warn" if due else "good", "none in a year"),
        ],
        breakdowns=[
            Breakdown(
                "By posture",
                ["Posture", "Clients"],
                [
                    [f"Strong ({STRONG}\u2013100)", fmt_number(bands["strong"])],
                    [f"Fair ({FAIR}\u2013{STRONG - 1})", fmt_number(bands["fair"])],
                    [f"Weak (below {FAIR})", fmt_number(bands["weak"])],
                ],
            ),
            Breakdown(
                "Most open findings",
                ["Client", "Findings"],
                [
                    [raw(r.get("client")), fmt_number(n)]
                    for n, r in sorted(
                        ((count(i, r, "open_findings"), r) for i, r in enumerate(rows)),
                        key=lambda pair: -pair[0],
                    )[:8]
                    if n
                ],
            ),
            count_table("By account owner", "Owner", (raw(r.get("assignee")) for r in rows)),
        ],
        chart_title="Posture by client, weakest first",
        chart_svg=charts.horizontal_bars(
            [raw(r.get("client")) for _, r in ranked[:20]],
            [s for s, _ in ranked[:20]],
            title="Posture by client",
            decimals=0,
        ),
    )


def cell(row: Row, column: Column, ctx: Context, extra: dict[str, Any]) -> Cell | None:
    if column.key == "posture":
        score = posture(0, row)
        return Cell(f"{score:.0f}%", BAND_TONE[band(score)])
    if column.key == "last_audit" and audit_due(0, row, ctx):
        last = row.get("last_audit")
        return Cell("never" if last in (None, "") else cell_text(last, "date", ctx.tz), "warn")
    return None


KIND = Kind(
    name="msp_client_report",
    label="MSP client report",
    time_column=None,
    schema=(
        S("client", "text", "client tenant name", required=True),
        S(
            "posture",
            "number 0\u2013100",
            f"compliance posture score: strong {STRONG}\u2013100, "
            f"fair {FAIR}\u2013{STRONG - 1}, weak below {FAIR}",
            required=True,
        ),
        S("open_findings", "integer", "open audit findings", required=True),
        S("open_risks", "integer", "open risks in the client's register", required=True),
        S(
            "last_audit",
            "date",
            "last completed audit; empty means never (due after a year)",
            required=True,
        ),
        S("tenant", "text", "tenant identifier"),
        S("status", "text", "`active`, `onboarding`, `offboarding`, …"),
        S("assignee", "text", "account owner"),
        S("team", "text", "team serving the client"),
        S("tags", "list or text", "labels"),
        PROGRAM_COLUMN,
    ),
    columns=(
        Column("client", "Client"),
        Column("tenant", "Tenant"),
        Column("posture", "Posture", "computed"),
        Column("open_findings", "Open findings", "number"),
        Column("open_risks", "Open risks", "number"),
        Column("last_audit", "Last audit", "date"),
        Column("status", "Status", "badge"),
        Column("assignee", "Owner", "name"),
    ),
    summarize=summarize,
    sort_key=lambda r: (posture(0, r), str(r.get("client"))),
    cell=cell,
    empty_message="No clients match the filters.",
)
