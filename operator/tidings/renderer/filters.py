"""Row filtering: the data window on the report type's time column, then status, tags, assignee,
team, and the report's program.

Rows come from YAML (dates and datetimes already parsed), JSON (strings) or SQL (driver types),
so values are normalized here: times to aware datetimes in the report's zone (a naive value is
a wall time in that zone), tags to a list of strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tidings import models
from tidings.renderer.result import InputError, MissingColumn

Row = dict[str, Any]


def to_datetime(value: Any, tz: ZoneInfo) -> datetime | None:
    """A row value as an aware datetime; None for empty; ValueError if it is not a time."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).astimezone(tz)
    elif isinstance(value, str):
        text = value.strip()
        moment = datetime.fromisoformat(text) if len(text) > 10 else _date_only(text)
    else:
        raise ValueError(f"{value!r} is not a date or date-time")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    return moment.astimezone(tz)


def _date_only(text: str) -> datetime:
    day = date.fromisoformat(text)
    return datetime(day.year, day.month, day.day)


def row_time(row: Row, column: str, index: int, tz: ZoneInfo) -> datetime | None:
    """to_datetime for a row's column, with an error that names the row and the column."""
    try:
        return to_datetime(row.get(column), tz)
    except (ValueError, TypeError, OverflowError):
        raise InputError(
            f"row {index}: {column} {row.get(column)!r} is not an ISO 8601 date or date-time"
        ) from None


def tags_of(value: Any) -> list[str]:
    """Tags as a list: a list/tuple as is, a comma-separated string split (SQL text columns)."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple | set):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def check_columns(rows: Sequence[Row], columns: Iterable[str], needed_by: str) -> None:
    """MissingColumn naming the first row that lacks one of `columns`."""
    wanted = list(columns)
    for index, row in enumerate(rows):
        missing = [c for c in wanted if c not in row]
        if missing:
            have = ", ".join(sorted(row)) or "no columns"
            raise MissingColumn(
                f"{needed_by} needs column(s) {', '.join(missing)}, but row {index} has only: "
                f"{have}"
            )


def apply_filters(
    rows: Sequence[Row],
    filters: models.Filters,
    window: tuple[datetime, datetime],
    time_column: str | None,
    tz: ZoneInfo,
    program: str | None = None,
    program_column_required: bool = False,
) -> list[Row]:
    """The rows inside [start, end) on time_column (when the type has one) that match every set
    filter and the program. Matching of status, tags, assignee, team and program ignores case.
    Rows are filtered on the program when they have a `program` column; inline rows must have
    it (program_column_required), sql and http sources may have scoped their rows already
    (:program, ?program=). Row order is kept."""
    start, end = window
    checks: list[tuple[str, set[str]]] = [
        (key, {v.casefold() for v in values})
        for key, values in (
            ("status", filters.status),
            ("tags", filters.tags),
            ("assignee", filters.assignee),
            ("team", filters.team),
        )
        if values
    ]
    for key, _ in checks:
        check_columns(rows, [key], f"filters.{key}")
    if program is not None:
        if program_column_required:
            check_columns(rows, ["program"], "spec.program (on inline rows)")
        if any("program" in row for row in rows):
            checks.append(("program", {program.casefold()}))
    kept: list[Row] = []
    for index, row in enumerate(rows):
        if time_column is not None:
            moment = row_time(row, time_column, index, tz)
            if moment is None or not (start <= moment < end):
                continue
        if all(_matches(row.get(key), key, wanted) for key, wanted in checks):
            kept.append(row)
    return kept


def _matches(value: Any, key: str, wanted: set[str]) -> bool:
    if key == "tags":
        return any(tag.casefold() in wanted for tag in tags_of(value))
    return value is not None and str(value).casefold() in wanted
