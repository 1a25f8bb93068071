"""Report types: filtered rows in, a Report (figures, breakdowns, chart, table) out. Pure: no
I/O. Each type lives in its own folder under `types/` (summary, row schema, template);
`model` holds the shared structures, `fmt` the shared formatting, `build` puts a Report
together, `schema_doc` writes the row-schema tables of docs/renderer.md."""

from __future__ import annotations

from tidings.renderer.reports.build import KINDS, build_report, filters_label, time_column_for
from tidings.renderer.reports.fmt import window_label
from tidings.renderer.reports.model import (
    COMPACT_ABOVE,
    ELLIPSIS,
    LISTING_CHARS,
    Breakdown,
    Cell,
    Column,
    Context,
    Figure,
    Kind,
    Listing,
    Report,
    SchemaColumn,
    Section,
    Summary,
    listing,
)

__all__ = [
    "COMPACT_ABOVE",
    "ELLIPSIS",
    "KINDS",
    "LISTING_CHARS",
    "Breakdown",
    "Cell",
    "Column",
    "Context",
    "Figure",
    "Kind",
    "Listing",
    "Report",
    "SchemaColumn",
    "Section",
    "Summary",
    "build_report",
    "filters_label",
    "listing",
    "time_column_for",
    "window_label",
]
