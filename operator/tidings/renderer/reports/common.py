"""Building blocks the report types share: trends over the window, count tables, chart series.
Pure."""

from __future__ import annotations

import bisect
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from tidings.renderer import charts
from tidings.renderer.filters import row_time
from tidings.renderer.reports.fmt import cell_text, display, fmt_number, severity_rank, tone
from tidings.renderer.reports.model import Breakdown, Cell, Context, Row


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


def bucket_members(
    rows: Sequence[Row], ctx: Context, time_of: Callable[[int, Row], datetime | None]
) -> tuple[list[str], list[list[int]]]:
    """Bucket labels, and per bucket the indexes of the rows whose time falls in it."""
    starts, labels = buckets(ctx)
    members: list[list[int]] = [[] for _ in starts]
    for index, row in enumerate(rows):
        moment = time_of(index, row)
        if moment is None or not starts or moment < starts[0]:
            continue
        members[bisect.bisect_right(starts, moment) - 1].append(index)
    return labels, members


def trend_counts(
    rows: Sequence[Row],
    ctx: Context,
    time_of: Callable[[int, Row], datetime | None],
    category_of: Callable[[Row], str],
) -> tuple[list[str], dict[str, list[float]]]:
    """Rows per bucket and category."""
    labels, members = bucket_members(rows, ctx, time_of)
    counts: dict[str, list[float]] = {}
    for slot, indexes in enumerate(members):
        for index in indexes:
            counts.setdefault(category_of(rows[index]), [0] * len(labels))[slot] += 1
    return labels, counts


def trend(
    rows: Sequence[Row],
    ctx: Context,
    time_of: Callable[[int, Row], datetime | None],
    category_of: Callable[[Row], str],
    order: Sequence[str] | None = None,
    colour_of: Callable[[str, set[str]], str] | None = None,
) -> tuple[list[str], list[charts.Series]]:
    """Counts per bucket per category, as stacked-bar series."""
    labels, counts = trend_counts(rows, ctx, time_of, category_of)
    names = list(order or []) + sorted(set(counts) - set(order or []))
    return labels, series_for(names, counts, colour_of)


def series_for(
    names: Iterable[str],
    counts: dict[str, list[float]],
    colour_of: Callable[[str, set[str]], str] | None = None,
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


def past_due(row: Row, ctx: Context, index: int = 0, column: str = "due") -> bool:
    """The row's due date lies before the report's as-of time (its scheduled time)."""
    due = row_time(row, column, index, ctx.tz) if column in row else None
    return due is not None and due < ctx.as_of


def overdue_cell(row: Row, ctx: Context, column: str = "due") -> Cell:
    """A due date flagged as past: `2024-03-31 overdue`, in red (audit findings, risks)."""
    return Cell(f"{cell_text(row.get(column), 'date', ctx.tz)} overdue", "bad")
