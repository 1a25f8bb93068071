"""What a report is made of: the row schema of a type, its table columns, the figures,
breakdowns and sections a summary produces, and the Report every template renders. Pure data."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    """A column of the detail table."""

    key: str
    label: str
    kind: str = "text"  # text | name | time | date | tags | badge | number | computed
    decimals: int | None = None  # numbers: fixed decimals for the whole column


@dataclass(frozen=True)
class SchemaColumn:
    """One documented column of a type's rows (docs/renderer.md shows these as a table)."""

    key: str
    type: str  # as documented: text, time, date, number, integer, boolean, list or text, ...
    meaning: str = ""
    required: bool = False


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
    options: Any = None  # the type's spec options (spec.customQuery for custom_query)
    scheduled: datetime | None = None  # the fire time; None: the window's end

    @property
    def as_of(self) -> datetime:
        """The moment a snapshot describes and due dates are judged against: the scheduled
        fire time (a Monday 09:00 run is as of 09:00, not the window's midnight)."""
        return self.scheduled or self.end


@dataclass
class Section:
    """A titled extract of the detail rows shown before the full table (e.g. denied events)."""

    title: str
    note: str
    rows: list[Row]
    table: list[list[Cell]] = field(default_factory=list)


@dataclass
class Summary:
    figures: list[Figure]
    breakdowns: list[Breakdown]
    chart_title: str
    chart_svg: str
    extra: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    # A summary may replace the detail rows (custom_query's roll-up) and their columns.
    rows: list[Row] | None = None
    columns: list[Column] | None = None


CellHook = Callable[[Row, Column, Context, dict[str, Any]], Cell | None]


@dataclass(frozen=True)
class Kind:
    """A report type: everything about it is registered here, in the type's own folder."""

    name: str
    label: str
    time_column: str | None  # the window applies to this column; None = a snapshot
    schema: tuple[SchemaColumn, ...]
    columns: tuple[Column, ...]
    summarize: Callable[[list[Row], Context], Summary]
    sort_key: Callable[[Row], Any] | None = None
    time_optional: bool = False  # window applies only when the rows have the time column
    cell: CellHook | None = None  # the type's own rendering of some cells
    empty_message: str = "No rows in this window."

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.schema if c.required)

    @property
    def snapshot(self) -> bool:
        return self.time_column is None


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
    rows: list[Row]  # every row of the detail table, in table order (for the CSV attachment)
    extra: dict[str, Any] = field(default_factory=dict)
    program: str = ""
    filters_label: str = ""  # the set filters, as shown under the title
    sections: list[Section] = field(default_factory=list)
    empty_message: str = "No rows in this window."
    csv_columns: list[str] = field(default_factory=list)
    page_css: str = "A4"  # the CSS @page size, e.g. "Letter landscape"

    @property
    def total_rows(self) -> int:
        return len(self.rows)

    @property
    def shown_rows(self) -> int:
        return len(self.table)

    @property
    def empty(self) -> bool:
        """Nothing to report: the page says so once, with no empty tables or levels."""
        return not self.rows

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
