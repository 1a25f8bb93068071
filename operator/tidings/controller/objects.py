"""Reading the API's plain objects (dicts as served): conditions, times, counts, text limits.
Pure helpers shared by report status (status.py) and Job outcomes (run_outcome.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tidings.schedule import parse_rfc3339, rfc3339


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def normalize_time(text: str | None) -> str | None:
    """RFC 3339 UTC `Z` form; None for missing or unparsable input (status is informative)."""
    try:
        return rfc3339(parse_rfc3339(text)) if text else None
    except ValueError:
        return None


def condition_is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions or ())


def find_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any]:
    """The condition of that type, or {}."""
    return next((c for c in conditions or () if c.get("type") == type_), {})


def count(value: Any) -> int:
    """An integer as served, else 0 (a bool is not a count)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
