"""Per-report-type computations: filtered rows in, a Report (figures, breakdowns, chart, table)
out. Pure: no I/O, no templates; the row schema of each type is documented in docs/renderer.md.
"""

from __future__ import annotations

import bisect
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from tidings.renderer import charts
from tidings.renderer.filters import Row, row_time, tags_of, to_datetime
from tidings.renderer.result import InputError

# ------------------------------------------------------------------------------ report structure


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"  # text | time | date | tags | badge | number | computed


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    tone: str = ""  # good | bad | warn | "" (neutral)
    note: str = ""


@dataclass(frozen=True)
class Breakdown:
    title: str
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Cell:
    text: str
    tone: str = ""


@dataclass(frozen=True)
class Context:
    tz: ZoneInfo
    start: datetime
    end: datetime


@dataclass
class Summary:
    figures: list[Figure]
    breakdowns: list[Breakdown]
    chart_title: str
    chart_svg: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """Everything a template needs; also the source of the email body and the text fallback."""

    report_type: str
    type_label: str
    title: str
    name: str
    namespace: str
    window_label: str
    generated_label: str
    figures: list[Figure]
    breakdowns: list[Breakdown]
    chart_title: str
    chart_svg: str
    columns: list[Column]
    table: list[list[Cell]]
    rows: list[Row]  # every filtered row, in table order (for the CSV attachment)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return len(self.rows)

    @property
    def shown_rows(self) -> int:
        return len(self.table)

    @property
    def compact(self) -> bool:
        """A long detail table is set as a listing (see Listing)."""
        return self.shown_rows > COMPACT_ABOVE

    @cached_property
    def listing(self) -> Listing:
        return listing(self.columns, self.table)


# WeasyPrint's cost is per box: a styled table spends one box per cell and ~10 ms per row on 2
# cores, a one-line row one box. Tables up to this many rows keep the styled cells; longer
# ones (a raised TIDINGS_MAX_PDF_ROWS) become a monospace listing, about 8 times faster.
COMPACT_ABOVE = 500
LISTING_CHARS = 124  # DejaVu Sans Mono at 6.6 pt across A4's 180 mm text width
ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Listing:
    """The detail table as fixed-width text: one line per row, columns padded with spaces and
    cut with an ellipsis, the row's strongest tone for its colour."""

    header: str
    lines: list[tuple[str, str]]


def listing(columns: Sequence[Column], table: Sequence[Sequence[Cell]]) -> Listing:
    # Line breaks or tabs in a value would break the one-line-per-row layout.
    texts = [[" ".join(cell.text.split()) for cell in row] for row in table]
    natural = [
        max([len(column.label), *(len(row[i]) for row in texts)])
        for i, column in enumerate(columns)
    ]
    widths = _fit(natural, LISTING_CHARS - 2 * (len(columns) - 1))
    right = [column.kind == "number" for column in columns]

    def line(values: Iterable[str]) -> str:
        cells = []
        for text, width, align_right in zip(values, widths, right, strict=True):
            text = text if len(text) <= width else text[: max(0, width - 1)] + ELLIPSIS
            cells.append(text.rjust(width) if align_right else text.ljust(width))
        return "  ".join(cells).rstrip()

    return Listing(
        header=line(column.label for column in columns),
        lines=[(line(values), _row_tone(row)) for values, row in zip(texts, table, strict=True)],
    )


def _fit(widths: list[int], budget: int) -> list[int]:
    """Cap the widest columns at the largest width that makes the line fit (at least 4)."""
    if sum(widths) <= budget:
        return widths
    low, high = 4, max(widths)
    while low < high:
        cap = (low + high + 1) // 2
        if sum(min(w, cap) for w in widths) <= budget:
            low = cap
        else:
            high = cap - 1
    return [min(w, low) for w in widths]


def _row_tone(row: Sequence[Cell]) -> str:
    tones = {cell.tone for cell in row}
    return next((t for t in ("bad", "warn") if t in tones), "")


# ---------------------------------------------------------------------------------- vocabulary

EN_DASH = "\u2013"
TIMES = "\u00d7"

_TONES = {
    "good": "completed done deployed success succeeded successful resolved closed pass passed "
    "remediated mitigated on_track ok healthy met",
    "bad": "failed failure fail error denied forbidden rolled_back rolledback off_track "
    "critical breached overdue sev1 p1",
    "warn": "in_progress investigating mitigating at_risk pending open high sev2 p2 "
    "degraded monitoring",
}
TONE_OF = {word: tone for tone, words in _TONES.items() for word in words.split()}

_SEVERITY_RANKS = [
    ("critical", "sev1", "p1", "sev0", "p0"),
    ("high", "sev2", "p2", "major"),
    ("medium", "sev3", "p3", "moderate"),
    ("low", "sev4", "p4", "minor"),
    ("info", "sev5", "p5", "informational"),
]
SEVERITY_RANK = {word: rank for rank, words in enumerate(_SEVERITY_RANKS) for word in words}

CLOSED_STATUSES = {"resolved", "closed", "done", "remediated", "mitigated", "completed", "fixed"}
DENIED_STATUSES = {"denied", "forbidden", "failure", "failed", "error", "unauthorized"}


def norm(value: Any) -> str:
    """A category value for counting: lower case, spaces to underscores, empty as "unknown"."""
    text = "" if value is None else str(value).strip()
    return text.casefold().replace(" ", "_").replace("-", "_") or "unknown"


def tone(value: Any) -> str:
    return TONE_OF.get(norm(value), "")


def severity_rank(value: Any) -> int:
    return SEVERITY_RANK.get(norm(value), len(_SEVERITY_RANKS))


def severity_tone(value: Any) -> str:
    return {0: "bad", 1: "warn"}.get(severity_rank(value), "")


def display(value: Any) -> str:
    """A category value for people: completed -> Completed, rolled_back -> Rolled back,
    sev1 -> SEV1. Anything else (names, addresses, service-ids) is shown as it is."""
    text = "" if value is None else str(value).strip()
    if not text:
        return "—"
    if re.fullmatch(r"(sev|p)[0-9]", text, re.IGNORECASE):
        return text.upper()
    if re.fullmatch(r"[a-z]+(_[a-z]+)*", text):
        text = text.replace("_", " ")
        return text[:1].upper() + text[1:]
    return text


def raw(value: Any) -> str:
    """A name-like value (team, service, actor) as it is; empty as a dash."""
    text = "" if value is None else str(value).strip()
    return text or "—"


# ----------------------------------------------------------------------------------- formatting


def fmt_time(moment: datetime | None, tz: ZoneInfo) -> str:
    return "—" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def fmt_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    minutes = delta.total_seconds() / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"


def fmt_percent(part: float, whole: float) -> str:
    return "—" if not whole else f"{100 * part / whole:.0f}%"


def fmt_number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def window_label(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """'6 May 2024 - 12 May 2024 (Europe/Berlin)' for whole days (end shown inclusive), else
    with times: '6 May 2024 09:00 - 13 May 2024 09:00 (Europe/Berlin)', with an en dash."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    if start.time() == end.time() == datetime.min.time():
        last = end - timedelta(days=1)
        return f"{start.day} {start:%b %Y} {EN_DASH} {last.day} {last:%b %Y} ({tz.key})"
    return f"{start.day} {start:%b %Y %H:%M} {EN_DASH} {end.day} {end:%b %Y %H:%M} ({tz.key})"


def cell_text(value: Any, kind: str, tz: ZoneInfo) -> str:
    if kind in ("time", "date"):
        try:
            moment = to_datetime(value, tz)
        except (ValueError, TypeError, OverflowError):
            return str(value)
        if moment is None:
            return "—"
        return moment.strftime("%Y-%m-%d") if kind == "date" else fmt_time(moment, tz)
    if kind == "tags":
        return ", ".join(tags_of(value)) or "—"
    if kind == "badge":
        return display(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return fmt_number(value)
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return fmt_time(value, tz)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# ------------------------------------------------------------------------------------- helpers


def buckets(ctx: Context) -> tuple[list[datetime], list[str]]:
    """Bucket starts and labels for a trend over the window: days up to a month, weeks up to
    half a year, months beyond. Starts are local midnights."""
    start, end = ctx.start.astimezone(ctx.tz), ctx.end.astimezone(ctx.tz)
    days = (end - start).total_seconds() / 86400
    day = start.date()
    if days <= 31:
        unit, step = "day", lambda d: d + timedelta(days=1)
    elif days <= 183:
        unit, step = "week", lambda d: d + timedelta(days=7)
        day -= timedelta(days=day.weekday())
    else:
        unit = "month"
        day = day.replace(day=1)

        def step(d):
            return (d.replace(day=28) + timedelta(days=4)).replace(day=1)

    starts: list[datetime] = []
    labels: list[str] = []
    while True:
        moment = datetime(day.year, day.month, day.day, tzinfo=ctx.tz)
        if moment >= end or len(starts) >= 400:
            break
        starts.append(moment)
        labels.append(f"{day:%b %Y}" if unit == "month" else f"{day.day} {day:%b}")
        day = step(day)
    return starts, labels


def trend(
    rows: Sequence[Row],
    ctx: Context,
    time_of: Callable[[int, Row], datetime | None],
    category_of: Callable[[Row], str],
    order: Sequence[str] | None = None,
    colour_of: Callable[[str], str] | None = None,
) -> tuple[list[str], list[charts.Series]]:
    """Counts per bucket per category, as stacked-bar series."""
    starts, labels = buckets(ctx)
    counts: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        moment = time_of(index, row)
        if moment is None or not starts or moment < starts[0]:
            continue
        slot = bisect.bisect_right(starts, moment) - 1
        counts.setdefault(category_of(row), [0] * len(starts))[slot] += 1
    names = list(order or []) + sorted(set(counts) - set(order or []))
    return labels, series_for(names, counts, colour_of)


def series_for(
    names: Iterable[str],
    counts: dict[str, list[int]],
    colour_of: Callable[[str], str] | None = None,
) -> list[charts.Series]:
    """One series per name; a colour by meaning, but never the same colour twice."""
    palette = iter(charts.PALETTE * 4)
    used: set[str] = set()
    result = []
    for name in names:
        if name not in counts:
            continue
        colour = (colour_of or status_colour)(name, used) or next(palette)
        used.add(colour)
        result.append(charts.Series(display(name), counts[name], colour))
    return result


def status_colour(name: str, used: set[str]) -> str:
    """The first unused shade of the status's tone (two "warn" statuses get two ambers)."""
    shades = charts.TONE_SHADES.get(tone(name), ())
    return next((c for c in shades if c not in used), "")


def severity_colour(name: str, used: set[str]) -> str:
    colour = charts.SEVERITY_COLOURS[min(severity_rank(name), len(charts.SEVERITY_COLOURS) - 1)]
    return "" if colour in used else colour


def count_table(
    title: str,
    header: str,
    values: Iterable[str],
    top: int = 8,
    label: Callable[[str], str] = str,
) -> Breakdown:
    """Counts of each value, largest first; the tail beyond `top` is summed as Other. Names are
    shown as they are; pass label=display for status-like values."""
    counts = Counter(values)
    ranked = counts.most_common()
    rows = [[label(k), fmt_number(v)] for k, v in ranked[:top]]
    rest = sum(v for _, v in ranked[top:])
    if rest:
        rows.append([f"Other ({len(ranked) - top})", fmt_number(rest)])
    return Breakdown(title, [header, "Count"], rows)


def ordered_counts(
    title: str, header: str, values: Iterable[str], order: Sequence[str]
) -> Breakdown:
    counts = Counter(values)
    keys = [k for k in order if k in counts] + sorted(set(counts) - set(order))
    return Breakdown(title, [header, "Count"], [[display(k), fmt_number(counts[k])] for k in keys])


def times_of(column: str, ctx: Context) -> Callable[[int, Row], datetime | None]:
    return lambda index, row: row_time(row, column, index, ctx.tz)


def median_duration(values: Iterable[timedelta]) -> timedelta | None:
    items = sorted(values)
    return statistics.median(items) if items else None


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in ("true", "yes", "y", "1")
    return bool(value)


def number(value: Any, column: str, index: int) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InputError(f"row {index}: {column} {value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"row {index}: {column} {value!r} is not a number") from None


def severity_order(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=lambda v: (severity_rank(v), v))


# ------------------------------------------------------------------------- per-type summaries


def _changes(rows: list[Row], ctx: Context) -> Summary:
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


def _incidents(rows: list[Row], ctx: Context) -> Summary:
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


@dataclass(frozen=True)
class DoraKey:
    name: str
    value: str
    level: str  # elite | high | medium | low | n/a
    explanation: str


def dora_level(metric: str, value: float | None) -> str:
    """Performance band per key (see docs/renderer.md for the thresholds)."""
    if value is None:
        return "n/a"
    bands = {
        # deployments per day: at least daily, weekly, monthly
        "frequency": [(1.0, "elite"), (1 / 7, "high"), (1 / 30, "medium")],
        # hours, smaller is better: under a day, a week, a month
        "lead_time": [(24, "elite"), (24 * 7, "high"), (24 * 30, "medium")],
        # failure rate, smaller is better
        "failure_rate": [(0.15, "elite"), (0.30, "high"), (0.45, "medium")],
        # hours to restore: under an hour, a day, a week
        "restore": [(1, "elite"), (24, "high"), (24 * 7, "medium")],
    }[metric]
    higher_is_better = metric == "frequency"
    for threshold, level in bands:
        if (value >= threshold) if higher_is_better else (value < threshold):
            return level
    return "low"


def _dora(rows: list[Row], ctx: Context) -> Summary:
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
        ),
        DoraKey(
            "Lead time for changes",
            fmt_duration(lead),
            dora_level("lead_time", lead.total_seconds() / 3600 if lead else None),
            f"median commit to deploy, {len(lead_times)} deployments",
        ),
        DoraKey(
            "Change failure rate",
            "—" if rate is None else f"{100 * rate:.0f}%",
            dora_level("failure_rate", rate),
            f"{len(failed_ids)} of {len(deployments)} deployments caused a failure",
        ),
        DoraKey(
            "Time to restore service",
            fmt_duration(restore),
            dora_level("restore", restore.total_seconds() / 3600 if restore else None),
            f"median over {len(restores)} resolved incidents",
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


def _audit_log(rows: list[Row], ctx: Context) -> Summary:
    actors = Counter(raw(r.get("actor")) for r in rows)
    denied = sum(1 for r in rows if norm(r.get("status")) in DENIED_STATUSES)
    busiest = actors.most_common(1)[0] if actors else None
    labels, series = trend(
        rows, ctx, times_of("time", ctx), lambda r: norm(r.get("status", "success"))
    )
    return Summary(
        figures=[
            Figure("Events", fmt_number(len(rows))),
            Figure("Actors", fmt_number(len(actors))),
            Figure("Denied or failed", fmt_number(denied), "bad" if denied else "good"),
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
    )


def _custom(rows: list[Row], ctx: Context) -> Summary:
    columns = custom_columns(rows)
    breakdowns = []
    if any("status" in r for r in rows):
        breakdowns.append(
            count_table("By status", "Status", (norm(r.get("status")) for r in rows), label=display)
        )
    chart_svg, chart_title = "", ""
    if rows and all("time" in r for r in rows):
        chart_title = "Rows per period"
        labels, series = trend(
            rows, ctx, times_of("time", ctx), lambda r: norm(r.get("status", "rows"))
        )
        chart_svg = charts.stacked_bars(labels, series, title=chart_title)
    elif rows:
        # No time to trend over: chart the first numeric column by the first text column.
        text_key = next((c.key for c in columns if c.kind == "text"), None)
        number_key = next((c.key for c in columns if c.kind == "number"), None)
        if text_key and number_key:
            chart_title = f"{display(number_key)} by {display(text_key).lower()}"
            shown = rows[:CUSTOM_CHART_BARS]
            chart_svg = charts.horizontal_bars(
                [raw(r.get(text_key)) for r in shown],
                [float(r.get(number_key) or 0) for r in shown],
                title=chart_title,
            )
    return Summary(
        figures=[
            Figure("Rows", fmt_number(len(rows))),
            Figure("Columns", fmt_number(len(columns))),
        ],
        breakdowns=breakdowns,
        chart_title=chart_title,
        chart_svg=chart_svg,
    )


CUSTOM_CHART_BARS = 20


def custom_columns(rows: Sequence[Row]) -> list[Column]:
    """Every column seen, in first-seen order; times, tags, statuses and numbers shown as such."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    kinds = {"time": "time", "tags": "tags", "status": "badge"}
    return [
        Column(k, display(k), kinds.get(k) or ("number" if _numeric(rows, k) else "text"))
        for k in seen
    ]


def _numeric(rows: Sequence[Row], key: str) -> bool:
    values = [r.get(key) for r in rows if r.get(key) is not None]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


COMPLIANCE_STATES = {
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
COMPLIANCE_LABEL = {"pass": "PASS", "fail": "FAIL", "not_applicable": "N/A", "unknown": "UNKNOWN"}
COMPLIANCE_TONE = {"pass": "good", "fail": "bad", "not_applicable": "", "unknown": "warn"}


def compliance_state(value: Any) -> str:
    return COMPLIANCE_STATES.get(norm(value), "unknown")


def _compliance(rows: list[Row], ctx: Context) -> Summary:
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


def _executive(rows: list[Row], ctx: Context) -> Summary:
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


def _risks(rows: list[Row], ctx: Context) -> Summary:
    scores = [risk_score(i, r) for i, r in enumerate(rows)]
    bands = [charts.risk_band(lik * imp) for lik, imp in scores]
    counts = Counter(bands)
    cells = Counter(scores)
    open_count = sum(1 for r in rows if norm(r.get("status", "open")) not in CLOSED_STATUSES)
    mean = statistics.mean(lik * imp for lik, imp in scores) if scores else None
    return Summary(
        figures=[
            Figure("Risks", fmt_number(len(rows))),
            Figure("Critical", fmt_number(counts["critical"]), "bad" if counts["critical"] else ""),
            Figure("High", fmt_number(counts["high"]), "warn" if counts["high"] else ""),
            Figure("Open", fmt_number(open_count)),
            Figure("Average score", "—" if mean is None else f"{mean:.1f}", note="of 25"),
        ],
        breakdowns=[
            ordered_counts("By rating", "Rating", bands, ["critical", "high", "medium", "low"]),
            count_table("By category", "Category", (raw(r.get("category")) for r in rows)),
            count_table(
                "By status", "Status", (norm(r.get("status", "open")) for r in rows), label=display
            ),
        ],
        chart_title=f"Likelihood {TIMES} impact",
        chart_svg=charts.risk_matrix(cells, title="Likelihood by impact"),
    )


def _findings(rows: list[Row], ctx: Context) -> Summary:
    severities = [norm(r.get("severity")) for r in rows]
    order = severity_order(severities)
    is_open = [_finding_open(r) for r in rows]
    overdue = [_overdue(r, ctx, i) for i, r in enumerate(rows)]
    serious = sum(
        1 for s, o in zip(severities, is_open, strict=True) if o and severity_rank(s) <= 1
    )
    statuses = sorted({norm(r.get("status")) for r in rows})
    counts: dict[str, list[int]] = {s: [0] * len(order) for s in statuses}
    for row, severity in zip(rows, severities, strict=True):
        counts[norm(row.get("status"))][order.index(severity)] += 1
    series = series_for(statuses, counts)
    return Summary(
        figures=[
            Figure("Findings", fmt_number(len(rows))),
            Figure("Open", fmt_number(sum(is_open)), "warn" if any(is_open) else "good"),
            Figure("Overdue", fmt_number(sum(overdue)), "bad" if any(overdue) else "good"),
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


def _finding_open(row: Row) -> bool:
    return norm(row.get("status")) not in CLOSED_STATUSES | {"accepted"}


def _overdue(row: Row, ctx: Context, index: int = 0) -> bool:
    """Still open after its due date, as of the end of the report window."""
    due = row_time(row, "due", index, ctx.tz) if "due" in row else None
    return _finding_open(row) and due is not None and due < ctx.end


# ------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Kind:
    label: str
    time_column: str | None  # the window applies to this column; None = a snapshot
    required: tuple[str, ...]
    columns: tuple[Column, ...]
    summarize: Callable[[list[Row], Context], Summary]
    sort_key: Callable[[Row], Any] | None = None
    time_optional: bool = False  # window applies only when the rows have the time column


def _time_key(column: str) -> Callable[[Row], Any]:
    # Rows were windowed on this column already, so every value parses; sort on the instant.
    def key(row: Row) -> Any:
        moment = to_datetime(row.get(column), ZoneInfo("UTC"))
        return (moment is None, moment or datetime.min)

    return key


KINDS: dict[str, Kind] = {
    "changes_summary": Kind(
        "Changes summary",
        "completed_at",
        ("id", "title", "status", "completed_at"),
        (
            Column("completed_at", "Completed", "time"),
            Column("id", "Change"),
            Column("title", "Title"),
            Column("status", "Status", "badge"),
            Column("team", "Team"),
            Column("assignee", "Assignee"),
            Column("tags", "Tags", "tags"),
        ),
        _changes,
        sort_key=_time_key("completed_at"),
    ),
    "incidents_summary": Kind(
        "Incidents summary",
        "opened_at",
        ("id", "title", "severity", "status", "opened_at"),
        (
            Column("opened_at", "Opened", "time"),
            Column("id", "Incident"),
            Column("title", "Title"),
            Column("severity", "Severity", "badge"),
            Column("status", "Status", "badge"),
            Column("team", "Team"),
            Column("assignee", "Assignee"),
            Column("resolved_at", "Resolved", "time"),
        ),
        _incidents,
        sort_key=_time_key("opened_at"),
    ),
    "dora_snapshot": Kind(
        "DORA snapshot",
        "time",
        ("kind", "id", "time"),
        (
            Column("time", "Time", "time"),
            Column("kind", "Kind", "badge"),
            Column("id", "ID"),
            Column("service", "Service"),
            Column("status", "Status", "badge"),
            Column("committed_at", "Committed", "time"),
            Column("resolved_at", "Resolved", "time"),
        ),
        _dora,
        sort_key=_time_key("time"),
    ),
    "audit_log": Kind(
        "Audit log",
        "time",
        ("time", "actor", "action", "resource"),
        (
            Column("time", "Time", "time"),
            Column("actor", "Actor"),
            Column("action", "Action"),
            Column("resource", "Resource"),
            Column("status", "Outcome", "badge"),
            Column("source", "Source"),
        ),
        _audit_log,
        sort_key=_time_key("time"),
    ),
    "custom_query": Kind("Query results", "time", (), (), _custom, time_optional=True),
    "compliance_readiness": Kind(
        "Compliance readiness",
        None,
        ("control", "title", "status"),
        (
            Column("control", "Control"),
            Column("title", "Title"),
            Column("framework", "Framework"),
            Column("status", "Result", "badge"),
            Column("assignee", "Owner"),
            Column("evidence", "Evidence"),
            Column("checked_at", "Checked", "date"),
        ),
        _compliance,
        sort_key=lambda r: (
            ["fail", "unknown", "pass", "not_applicable"].index(compliance_state(r.get("status"))),
            str(r.get("framework") or ""),
            str(r.get("control")),
        ),
    ),
    "executive_summary": Kind(
        "Executive summary",
        None,
        ("metric", "value"),
        (
            Column("metric", "Metric"),
            Column("value", "Value", "number"),
            Column("previous", "Previous", "number"),
            Column("change", "Change", "computed"),
            Column("target", "Target", "number"),
            Column("status", "Status", "badge"),
            Column("assignee", "Owner"),
        ),
        _executive,
    ),
    "risk_report": Kind(
        "Risk register",
        None,
        ("id", "title", "likelihood", "impact"),
        (
            Column("id", "Risk"),
            Column("title", "Title"),
            Column("category", "Category"),
            Column("likelihood", "L", "number"),
            Column("impact", "I", "number"),
            Column("score", "Score", "computed"),
            Column("status", "Status", "badge"),
            Column("assignee", "Owner"),
            Column("due", "Due", "date"),
        ),
        _risks,
        sort_key=lambda r: -_score(r),
    ),
    "audit_report": Kind(
        "Audit findings",
        None,
        ("id", "title", "severity", "status"),
        (
            Column("id", "Finding"),
            Column("title", "Title"),
            Column("severity", "Severity", "badge"),
            Column("status", "Status", "badge"),
            Column("control", "Control"),
            Column("assignee", "Owner"),
            Column("due", "Due", "date"),
        ),
        _findings,
        sort_key=lambda r: (severity_rank(r.get("severity")), str(r.get("due") or "9999")),
    ),
}


def time_column_for(report_type: str, rows: Sequence[Row]) -> str | None:
    """The column the window applies to for these rows (None: no window filtering)."""
    kind = KINDS[report_type]
    if kind.time_optional and not any(kind.time_column in r for r in rows):
        return None
    return kind.time_column


# --------------------------------------------------------------------------------------- build


def build_report(
    *,
    report_type: str,
    title: str,
    name: str,
    namespace: str,
    rows: list[Row],
    ctx: Context,
    generated_at: datetime,
    max_table_rows: int,
) -> Report:
    """The Report for already filtered rows; the table holds at most max_table_rows rows."""
    kind = KINDS[report_type]
    summary = kind.summarize(rows, ctx)
    ordered = sorted(rows, key=kind.sort_key) if kind.sort_key else list(rows)
    columns = list(kind.columns) if kind.columns else custom_columns(rows)
    # Optional columns nobody filled in only take space.
    columns = [
        c
        for c in columns
        if c.kind == "computed" or c.key in kind.required or any(_has(r, c.key) for r in ordered)
    ]
    table = [
        _table_row(report_type, row, columns, ctx, summary.extra)
        for row in ordered[: max(0, max_table_rows)]
    ]
    return Report(
        report_type=report_type,
        type_label=kind.label,
        title=title,
        name=name,
        namespace=namespace,
        window_label=window_label(ctx.start, ctx.end, ctx.tz),
        generated_label=f"{fmt_time(generated_at, ctx.tz)} {ctx.tz.key}",
        figures=summary.figures,
        breakdowns=summary.breakdowns,
        chart_title=summary.chart_title,
        chart_svg=summary.chart_svg,
        columns=columns,
        table=table,
        rows=ordered,
        extra=summary.extra,
    )


def _has(row: Row, key: str) -> bool:
    value = row.get(key)
    return value is not None and value != "" and value != []


def _score(row: Row) -> int:
    likelihood, impact = risk_score(0, row)
    return likelihood * impact


def _table_row(
    report_type: str, row: Row, columns: list[Column], ctx: Context, extra: dict[str, Any]
) -> list[Cell]:
    cells = []
    for column in columns:
        value = row.get(column.key)
        text = cell_text(value, column.kind, ctx.tz)
        cell_tone = ""
        if column.kind == "badge":
            cell_tone = severity_tone(value) if column.key == "severity" else tone(value)
        if report_type == "compliance_readiness" and column.key == "status":
            state = compliance_state(value)
            text, cell_tone = COMPLIANCE_LABEL[state], COMPLIANCE_TONE[state]
        elif report_type == "executive_summary" and column.key in ("value", "change"):
            text, cell_tone = _metric_cell(row, column.key, ctx)
        elif report_type == "risk_report" and column.key == "score":
            score = _score(row)
            band = charts.risk_band(score)
            text = f"{score} {display(band)}"
            cell_tone = {"critical": "bad", "high": "warn"}.get(band, "")
        elif report_type == "audit_report" and column.key == "due" and _overdue(row, ctx):
            text, cell_tone = f"{text} overdue", "bad"
        elif report_type == "dora_snapshot" and column.key == "status" and value is None:
            failed = norm(row.get("kind")) == "deployment" and str(row.get("id")) in extra.get(
                "failed_ids", ()
            )
            text, cell_tone = ("Failed", "bad") if failed else ("—", "")
        cells.append(Cell(text, cell_tone))
    return cells


def _metric_cell(row: Row, key: str, ctx: Context) -> tuple[str, str]:
    if key == "value":
        unit = str(row.get("unit") or "")
        text = cell_text(row.get("value"), "number", ctx.tz)
        return (f"{text} {unit}".strip() if unit else text), ""
    pct, improved = metric_change(0, row)
    if pct is None:
        return "—", ""
    return f"{pct:+.1f}%", "" if improved is None else ("good" if improved else "bad")
