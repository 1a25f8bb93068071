"""compliance_readiness: pass / fail / not applicable per control, readiness per framework."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tidings.renderer import charts
from tidings.renderer.reports.fmt import fmt_number, fmt_percent, norm, raw
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

STATES = {
    "pass": "pass",
    "passed": "pass",
    "passing": "pass",
    "compliant": "pass",
    "fail": "fail",
    "failed": "fail",
    "failing": "fail",
    "non_compliant": "fail",
    "not_applicable": "not_applicable",
    "n/a": "not_applicable",
    "na": "not_applicable",
    "not applicable": "not_applicable",
}
LABEL = {"pass": "PASS", "fail": "FAIL", "not_applicable": "N/A", "unknown": "UNKNOWN"}
TONE = {"pass": "good", "fail": "bad", "not_applicable": "", "unknown": "warn"}


def compliance_state(value: Any) -> str:
    return STATES.get(norm(value), "unknown")


def summarize(rows: list[Row], ctx: Context) -> Summary:
    states = [compliance_state(r.get("status")) for r in rows]
    counts = Counter(states)
    frameworks = sorted({raw(r.get("framework")) for r in rows})
    per_framework: dict[str, Counter[str]] = {f: Counter() for f in frameworks}
    for row, state in zip(rows, states, strict=True):
        per_framework[raw(row.get("framework"))][state] += 1
    decided = counts["pass"] + counts["fail"]
    readiness = fmt_percent(counts["pass"], decided)
    ready_tone = ""
    if decided:
        share = counts["pass"] / decided
        ready_tone = "good" if share == 1 else ("warn" if share >= 0.8 else "bad")
    series = [
        charts.Series("Pass", [per_framework[f]["pass"] for f in frameworks], charts.GOOD),
        charts.Series("Fail", [per_framework[f]["fail"] for f in frameworks], charts.BAD),
        charts.Series(
            "N/A", [per_framework[f]["not_applicable"] for f in frameworks], charts.NEUTRAL
        ),
        charts.Series("Unknown", [per_framework[f]["unknown"] for f in frameworks], charts.WARN),
    ]
    figures = [
        Figure("Readiness", readiness, ready_tone, "passing of applicable controls"),
        Figure("Pass", fmt_number(counts["pass"]), "good" if counts["pass"] else ""),
        Figure("Fail", fmt_number(counts["fail"]), "bad" if counts["fail"] else ""),
        Figure("Not applicable", fmt_number(counts["not_applicable"])),
    ]
    if counts["unknown"]:
        figures.append(Figure("Unknown status", fmt_number(counts["unknown"]), "warn"))
    return Summary(
        figures=figures,
        breakdowns=[
            Breakdown(
                "By framework",
                ["Framework", "Pass", "Fail", "N/A", "Readiness"],
                [
                    [
                        f,
                        fmt_number(c["pass"]),
                        fmt_number(c["fail"]),
                        fmt_number(c["not_applicable"]),
                        fmt_percent(c["pass"], c["pass"] + c["fail"]),
                    ]
                    for f, c in per_framework.items()
                ],
            )
        ],
        chart_title="Controls by framework",
        chart_svg=charts.stacked_bars(frameworks, series, title="Controls by framework"),
    )


def cell(row: Row, column: Column, ctx: Context, extra: dict[str, Any]) -> Cell | None:
    if column.key != "status":
        return None
    state = compliance_state(row.get("status"))
    return Cell(LABEL[state], TONE[state])


KIND = Kind(
    name="compliance_readiness",
    label="Compliance readiness",
    time_column=None,
    schema=(
        S("control", "text", "control identifier, e.g. CC6.1", required=True),
        S("title", "text", "control description", required=True),
        S(
            "status",
            "text",
            "`pass`/`passed`/`compliant`, `fail`/`failed`/`non_compliant`, "
            "`not_applicable`/`n/a`; anything else is shown as UNKNOWN",
            required=True,
        ),
        S("framework", "text", "SOC 2, ISO 27001, …"),
        S("assignee", "text", "control owner"),
        S("evidence", "text", "where the evidence is"),
        S("checked_at", "date", "last check"),
        S("tags", "list or text", "labels"),
        PROGRAM_COLUMN,
    ),
    columns=(
        Column("control", "Control"),
        Column("title", "Title"),
        Column("framework", "Framework"),
        Column("status", "Result", "badge"),
        Column("assignee", "Owner", "name"),
        Column("evidence", "Evidence"),
        Column("checked_at", "Checked", "date"),
    ),
    summarize=summarize,
    sort_key=lambda r: (
        ["fail", "unknown", "pass", "not_applicable"].index(compliance_state(r.get("status"))),
        str(r.get("framework") or ""),
        str(r.get("control")),
    ),
    cell=cell,
    empty_message="No controls match the filters.",
)
