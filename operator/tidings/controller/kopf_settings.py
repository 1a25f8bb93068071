"""kopf settings given to kopf.run by `tidings operator`, before any handler runs.

The operator registers event handlers only (handlers.py): nothing of kopf's is stored on a
report, and no handler is given a diff. kopf still builds the diff base of every event,
a deep copy of the whole body (`DiffBaseStorage.build`), and compares it with the last one;
it uses the result only for change handlers (on.create/update/resume/delete) and daemons. In a
burst of new reports that copy was 14% of the operator's time (docs/benchmarks.md). With
EventsOnlyDiffBase it is an empty essence instead. tests/unit/test_kopf_settings.py keeps the
premise: no change handler and no daemon is registered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf


class EventsOnlyDiffBase(kopf.DiffBaseStorage):
    """No diff base: for an operator whose handlers are all event handlers."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.diffbase_storage = EventsOnlyDiffBase()
    return settings
