"""Sort keys the report types share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tidings.renderer.filters import to_datetime
from tidings.renderer.reports.model import Row


def by_time(column: str) -> Callable[[Row], Any]:
    """Oldest first. Rows were windowed on this column already, so every value parses."""

    def key(row: Row) -> Any:
        moment = to_datetime(row.get(column), ZoneInfo("UTC"))
        return (moment is None, moment or datetime.min)

    return key
