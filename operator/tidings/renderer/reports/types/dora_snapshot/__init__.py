"""dora_snapshot: the four DORA keys from deployment and incident rows in the window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidings.renderer import charts
from tidings.renderer.filters import row_time
from tidings.renderer.reports.common import count_table, median_duration, trend
from tidings.renderer.reports.fmt import display, fmt_duration, norm, raw, truthy
from tidings.renderer.reports.model import (
    Cell,
    Column,
    Context,
    Figure,
    Kind,
    Row,
    Summary,
)
from tidings.renderer.reports.model import SchemaColumn as S
from tidings.renderer.reports.sorting import by_time
from tidings.renderer.result import InputError


@dataclass(frozen=True)
class DoraKey:
    name: str
    value: str
    level: str  # elite | high | medium | low | n/a
    explanation: str
    bands: str  # the thresholds, so the page explains its own levels


# Per key: (threshold, level) from the best band down; the unit is in the comment.
BANDS: dict[str, list[tuple[float, str]]] = {
    # deployments per day: at least daily, weekly, monthly
    "frequency": [(1.0, "elite"), (1 / 7, "high"), (1 / 30, "medium")],
    # hours, smaller is better: under a day, a week, a month
    "lead_time": [(24, "elite"), (24 * 7, "high"), (24 * 30, "medium")],
    # failure rate, smaller is better
    "failure_rate": [(0.15, "elite"), (0.30, "high"), (0.45, "medium")],
    # hours to restore: under an hour, a day, a week
    "restore": [(1, "elite"), (24, "high"), (24 * 7, "medium")],
}
BAND_TEXT = {
    "frequency": "elite daily · high weekly · medium monthly",
    "lead_time": "elite < 1 day · high < 1 week · medium < 30 days",
    "failure_rate": "elite < 15% · high < 30% · medium < 45%",
    "restore": "elite < 1 h · high < 1 day · medium < 1 week",
}


def dora_level(metric: str, value: float | None) -> str:
    """Performance band per key (BANDS; docs/renderer.md has the same table)."""
    if value is None:
        return "n/a"
    higher_is_better = metric == "frequency"
    for threshold, level in BANDS[metric]:
        if (value >= threshold) if higher_is_better else (value < threshold):
            return level
    return "low"


def summarize(rows: list[Row], ctx: Context) -> Summary:
    deployments = [(i, r) for i, r in enumerate(rows) if norm(r.get("kind")) == "deployment"]
    incidents = [(i, r) for i, r in enumerate(rows) if norm(r.get("kind")) == "incident"]
    for index, row in enumerate(rows):
        if norm(row.get("kind")) not in ("deployment", "incident"):
            raise InputError(
                f"row {index}: kind {row.get('kind')!r} must be deployment or incident"
            )
    caused = {str(r.get("caused_by")) for _, r in incidents if r.get("caused_by")}
    failed_ids = {
        str(r.get("id"))
        for _, r in deployments
        if truthy(r.get("failed")) or str(r.get("id")) in caused
    }
    days = max((ctx.end - ctx.start).total_seconds() / 86400, 1 / 24)
    per_day = len(deployments) / days
    lead_times = [
        row_time(r, "time", i, ctx.tz) - committed
        for i, r in deployments
        if (committed := row_time(r, "committed_at", i, ctx.tz) if "committed_at" in r else None)
    ]
    restores = [
        resolved - row_time(r, "time", i, ctx.tz)
        for i, r in incidents
        if (resolved := row_time(r, "resolved_at", i, ctx.tz) if "resolved_at" in r else None)
    ]
    lead = median_duration(lead_times)
    restore = median_duration(restores)
    rate = len(failed_ids) / len(deployments) if deployments else None
    if per_day >= 1:
        frequency = f"{per_day:.1f} / day"
    elif per_day * 7 >= 1:
        frequency = f"{per_day * 7:.1f} / week"
    else:
        frequency = f"{per_day * 30:.1f} / month"
    keys = [
        DoraKey(
            "Deployment frequency",
            frequency if deployments else "none",
            dora_level("frequency", per_day if deployments else 0.0),
            f"{len(deployments)} deployments in {days:.0f} days",
            BAND_TEXT["frequency"],
        ),
        DoraKey(
            "Lead time for changes",
            fmt_duration(lead),
            dora_level("lead_time", lead.total_seconds() / 3600 if lead else None),
            f"median commit to deploy, {len(lead_times)} deployments",
            BAND_TEXT["lead_time"],
        ),
        DoraKey(
            "Change failure rate",
            "—" if rate is None else f"{100 * rate:.0f}%",
            dora_level("failure_rate", rate),
            f"{len(failed_ids)} of {len(deployments)} deployments caused a failure",
            BAND_TEXT["failure_rate"],
        ),
        DoraKey(
            "Time to restore service",
            fmt_duration(restore),
            dora_level("restore", restore.total_seconds() / 3600 if restore else None),
            f"median over {len(restores)} resolved incidents",
            BAND_TEXT["restore"],
        ),
    ]
    level_tone = {"elite": "good", "high": "good", "medium": "warn", "low": "bad"}
    labels, series = trend(
        [r for _, r in deployments],
        ctx,
        lambda j, r: row_time(r, "time", j, ctx.tz),
        lambda r: "failed" if str(r.get("id")) in failed_ids else "succeeded",
        ["succeeded", "failed"],
    )
    services = (raw(r.get("service")) for _, r in deployments)
    return Summary(
        figures=[
            Figure(
                k.name,
                k.value,
                level_tone.get(k.level, ""),
                f"{display(k.level)} · {k.explanation}",
            )
            for k in keys
        ],
        breakdowns=[
            count_table("Deployments by service", "Service", services),
            count_table(
                "Incidents by service", "Service", (raw(r.get("service")) for _, r in incidents)
            ),
        ],
        chart_title="Deployments per period",
        chart_svg=charts.stacked_bars(labels, series, title="Deployments per period"),
        extra={"dora_keys": keys, "failed_ids": failed_ids},
    )


def cell(row: Row, column: Column, ctx: Context, extra: dict[str, Any]) -> Cell | None:
    """A deployment without a status reads Failed when it caused a failure."""
    if column.key != "status" or row.get("status") is not None:
        return None
    failed = norm(row.get("kind")) == "deployment" and str(row.get("id")) in extra.get(
        "failed_ids", ()
    )
    return Cell("Failed", "bad") if failed else Cell("—")


KIND = Kind(
    name="dora_snapshot",
    label="DORA snapshot",
    time_column="time",
    schema=(
        S("kind", "text", "`deployment` or `incident`", required=True),
        S("id", "text", "deployment or incident identifier", required=True),
        S("time", "time", "when deployed / when the incident started", required=True),
        S("service", "text", "service name"),
        S("status", "text", "shown as is"),
        S("committed_at", "time", "deployment: first commit of the change (lead time)"),
        S("failed", "boolean", "deployment: it caused a failure in production"),
        S("resolved_at", "time", "incident: when service was restored"),
        S("caused_by", "text", "incident: `id` of the deployment that caused it"),
    ),
    columns=(
        Column("time", "Time", "time"),
        Column("kind", "Kind", "badge"),
        Column("id", "ID"),
        Column("service", "Service", "name"),
        Column("status", "Status", "badge"),
        Column("committed_at", "Committed", "time"),
        Column("resolved_at", "Resolved", "time"),
    ),
    summarize=summarize,
    sort_key=by_time("time"),
    cell=cell,
    empty_message="No deployments or incidents in this window, so there is nothing to rate.",
)
