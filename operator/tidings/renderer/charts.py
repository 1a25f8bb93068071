"""Charts as inline SVG strings: vector in the PDF, no plotting library, no files.

Every label is XML-escaped here (row values reach the charts), and every chart says so when it
has nothing to show rather than drawing an empty frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e3e7ec"

# Colours by meaning; series with other names take the palette in order.
GOOD = "#2e7d4f"
BAD = "#c0392b"
WARN = "#e0a100"
INFO = "#2f6fb0"
NEUTRAL = "#9aa5b1"
PALETTE = ("#2f6fb0", "#e07b39", "#6a4c93", "#2a9d8f", "#d1495b", "#8d6e63", "#5c6bc0")

# Shades per tone, so two statuses of the same tone stay apart in one chart.
TONE_SHADES = {
    "good": (GOOD, "#7fb992", "#b9dcc4"),
    "bad": (BAD, "#e57368", "#f2aaa3"),
    "warn": (WARN, "#f3c969", "#b77b00"),
}
SEVERITY_COLOURS = ("#b71c1c", "#e65100", "#f9a825", "#2f6fb0", "#9aa5b1", "#6a4c93")

RISK_BAND_COLOURS = {
    "low": "#cfe8d5",
    "medium": "#fbe7a1",
    "high": "#f7c08a",
    "critical": "#ef9a9a",
}


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    colour: str


def _text(x: float, y: float, content: str, **attrs: object) -> str:
    extra = "".join(f" {k.replace('_', '-')}={quoteattr(str(v))}" for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(content)}</text>'


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family={quoteattr(FONT)} '
        f'role="img" aria-label={quoteattr(title)}>' + "".join(body) + "</svg>"
    )


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 5 x 10^k) up to at least `maximum`."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, 1) if maximum >= 1 else step
    top = math.ceil(maximum / step) * step
    return [i * step for i in range(round(top / step) + 1)]


def _fmt(value: float, decimals: int | None = None) -> str:
    # Thousands separators, as in the tables next to the chart; `decimals` makes every value
    # label of one chart read alike (412.30 next to 301.75, not 412.3).
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    width: float = 680,
    height: float = 190,
    decimals: int | None = None,
) -> str:
    """Vertical stacked bars, one per label, with a legend; for trends and per-category counts."""
    left, right, top, bottom = 36.0, 8.0, 26.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    body: list[str] = []
    # Legend across the top, only for series that have something to show.
    x = left
    for s in series:
        if not any(s.values):
            continue
        body.append(f'<rect x="{x:.1f}" y="6" width="9" height="9" rx="1.5" fill="{s.colour}"/>')
        body.append(_text(x + 13, 14.5, s.name, font_size=9, fill=INK))
        x += 13 + 5.6 * len(s.name) + 14
    if not labels or max(totals, default=0) <= 0:
        body.append(
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#f7f9fb"/>'
        )
        body.append(
            _text(
                left + plot_w / 2,
                top + plot_h / 2 + 4,
                "No data in this window",
                font_size=11,
                fill=MUTED,
                text_anchor="middle",
            )
        )
        return _svg(width, height, body, title)
    ticks = nice_ticks(max(totals))
    scale = plot_h / ticks[-1]
    for tick in ticks:
        y = top + plot_h - tick * scale
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="0.8"/>'
        )
        body.append(_text(left - 5, y + 3, _fmt(tick), font_size=8, fill=MUTED, text_anchor="end"))
    band = plot_w / len(labels)
    bar_w = min(band * 0.72, 46)
    # Thin out x labels so they never overlap (about 6 px per character at 8 pt).
    longest = max(len(label) for label in labels)
    every = max(1, math.ceil((longest * 5.2 + 6) / band))
    for i, label in enumerate(labels):
        cx = left + band * i + band / 2
        y = top + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = value * scale
            y -= h
            body.append(
                f'<rect x="{cx - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{s.colour}"/>'
            )
        if totals[i] > 0 and bar_w >= 14:
            body.append(
                _text(
                    cx,
                    y - 3,
                    _fmt(totals[i], decimals),
                    font_size=8,
                    fill=INK,
                    text_anchor="middle",
                )
            )
        if i % every == 0:
            body.append(
                _text(cx, top + plot_h + 13, label, font_size=8, fill=MUTED, text_anchor="middle")
            )
    body.append(
        f'<line x1="{left}" y1="{top + plot_h:.1f}" x2="{left + plot_w}" y2="{top + plot_h:.1f}" '
        f'stroke="{MUTED}" stroke-width="0.8"/>'
    )
    return _svg(width, height, body, title)


def horizontal_bars(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    width: float = 680,
    decimals: int | None = None,
) -> str:
    """One bar per category, labels on the left: for comparing named things (no time axis)."""
    label_w, value_w, row_h = 170.0, 60.0, 17.0
    height = row_h * max(1, len(labels)) + 6
    span = max([v for v in values if v > 0], default=0)
    if span <= 0:
        return _svg(
            width,
            height + 20,
            [
                _text(
                    width / 2,
                    18,
                    "Nothing to chart",
                    font_size=11,
                    fill=MUTED,
                    text_anchor="middle",
                )
            ],
            title,
        )
    plot_w = width - label_w - value_w
    body: list[str] = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 3 + i * row_h
        shown = label if len(label) <= 30 else label[:29] + "…"
        body.append(_text(label_w - 8, y + 11, shown, font_size=8.5, fill=INK, text_anchor="end"))
        length = max(0.0, value) / span * plot_w
        body.append(
            f'<rect x="{label_w:.1f}" y="{y + 2:.1f}" width="{max(length, 1):.1f}" '
            f'height="{row_h - 5:.1f}" rx="1.5" fill="{INFO}"/>'
        )
        body.append(
            _text(label_w + length + 4, y + 11, _fmt(value, decimals), font_size=8, fill=INK)
        )
    return _svg(width, height, body, title)


def risk_band(score: int) -> str:
    """Band of a likelihood x impact score on the 5x5 matrix."""
    if score >= 20:
        return "critical"
    if score >= 10:
        return "high"
    if score >= 5:
        return "medium"
    return "low"


def risk_matrix(counts: Mapping[tuple[int, int], int], *, title: str) -> str:
    """5x5 heat map: likelihood (rows, 5 at the top) by impact (columns), counts in the cells."""
    cell, left, top = 44.0, 64.0, 10.0
    width, height = left + 5 * cell + 150, top + 5 * cell + 44
    body: list[str] = []
    for likelihood in range(5, 0, -1):
        y = top + (5 - likelihood) * cell
        body.append(
            _text(
                left - 8,
                y + cell / 2 + 4,
                str(likelihood),
                font_size=9,
                fill=MUTED,
                text_anchor="end",
            )
        )
        for impact in range(1, 6):
            x = left + (impact - 1) * cell
            colour = RISK_BAND_COLOURS[risk_band(likelihood * impact)]
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell - 2:.1f}" height="{cell - 2:.1f}" '
                f'rx="3" fill="{colour}"/>'
            )
            n = counts.get((likelihood, impact), 0)
            if n:
                body.append(
                    _text(
                        x + cell / 2 - 1,
                        y + cell / 2 + 4,
                        str(n),
                        font_size=12,
                        font_weight="bold",
                        fill=INK,
                        text_anchor="middle",
                    )
                )
    for impact in range(1, 6):
        x = left + (impact - 1) * cell + cell / 2 - 1
        body.append(
            _text(
                x, top + 5 * cell + 12, str(impact), font_size=9, fill=MUTED, text_anchor="middle"
            )
        )
    body.append(
        _text(
            left + 2.5 * cell,
            top + 5 * cell + 30,
            "Impact",
            font_size=9,
            fill=INK,
            text_anchor="middle",
        )
    )
    mid = top + 2.5 * cell
    body.append(
        _text(
            14,
            mid,
            "Likelihood",
            font_size=9,
            fill=INK,
            text_anchor="middle",
            transform=f"rotate(-90 14 {mid:.1f})",
        )
    )
    legend_x = left + 5 * cell + 18
    for i, (band, label) in enumerate(
        [
            ("critical", "Critical (20-25)"),
            ("high", "High (10-16)"),
            ("medium", "Medium (5-9)"),
            ("low", "Low (1-4)"),
        ]
    ):
        y = top + 8 + i * 20
        colour = RISK_BAND_COLOURS[band]
        body.append(f'<rect x="{legend_x}" y="{y}" width="12" height="12" rx="2" fill="{colour}"/>')
        body.append(_text(legend_x + 18, y + 10, label, font_size=9, fill=INK))
    return _svg(width, height, body, title)


def _percent(value: float) -> str:
    return f"{value:+.0f}%" if abs(value) >= 10 else f"{value:+.1f}%"


@dataclass(frozen=True)
class Change:
    label: str
    percent: float | None  # None: no previous value to compare with
    improved: bool | None  # None: neither better nor worse


def change_bars(items: Sequence[Change], *, title: str, width: float = 680) -> str:
    """Horizontal bars diverging from 0: each metric's change against the previous period."""
    label_w, value_w, row_h, top = 210.0, 56.0, 20.0, 8.0
    height = top + row_h * max(1, len(items)) + 8
    plot_left, plot_w = label_w, width - label_w - value_w
    zero = plot_left + plot_w / 2
    known = [abs(i.percent) for i in items if i.percent is not None]
    if not known:
        return _svg(
            width,
            height,
            [
                _text(
                    width / 2,
                    height / 2 + 4,
                    "No previous values to compare",
                    font_size=11,
                    fill=MUTED,
                    text_anchor="middle",
                )
            ],
            title,
        )
    span = max(max(known), 1.0)
    body = [
        f'<line x1="{zero:.1f}" y1="{top - 4}" x2="{zero:.1f}" y2="{height - 4:.1f}" '
        f'stroke="{MUTED}" stroke-width="0.8"/>'
    ]
    for i, item in enumerate(items):
        y = top + i * row_h
        label = item.label if len(item.label) <= 34 else item.label[:33] + "…"
        body.append(_text(label_w - 8, y + 13, label, font_size=9, fill=INK, text_anchor="end"))
        if item.percent is None:
            body.append(_text(zero + 6, y + 13, "no previous value", font_size=8, fill=MUTED))
            continue
        # Leave room beside the longest bar for its value label.
        length = abs(item.percent) / span * (plot_w / 2 - 36)
        x = zero if item.percent >= 0 else zero - length
        colour = NEUTRAL if item.improved is None else (GOOD if item.improved else BAD)
        body.append(
            f'<rect x="{x:.1f}" y="{y + 4:.1f}" width="{max(length, 1):.1f}" '
            f'height="{row_h - 8:.1f}" rx="2" fill="{colour}"/>'
        )
        text_x = zero + length + 4 if item.percent >= 0 else zero - length - 4
        anchor = "start" if item.percent >= 0 else "end"
        body.append(
            _text(text_x, y + 13, _percent(item.percent), font_size=8, fill=INK, text_anchor=anchor)
        )
    return _svg(width, height, body, title)
