"""The row column shared by Meridian's program-scoped types."""

from __future__ import annotations

from tidings.renderer.reports.model import SchemaColumn

PROGRAM_COLUMN = SchemaColumn(
    "program",
    "text",
    "compliance program; rows of other programs than `spec.program` are left out (needed in "
    "inline rows)",
)
