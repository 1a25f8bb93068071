"""A namespace's default time zone (controller.zones), triggered by start-up and by the
Namespace watch: kept in the operator's state, and every report of a namespace reconciled again
when its default changes, so the CronJob, nextSendAt and the TZ column follow at once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tidings.controller import zones
from tidings.controller.kube import report_path
from tidings.controller.reconcile import sync_or_retry_later
from tidings.controller.state import OperatorState

log = logging.getLogger("tidings.operator")


def _served(state: OperatorState, name: str) -> bool:
    return not state.settings.namespaces or name in state.settings.namespaces


def remember(state: OperatorState, namespace: Mapping[str, Any]) -> bool:
    """Keep the namespace's default; whether it differs from what was kept."""
    name = namespace["metadata"]["name"]
    zone, problem = zones.namespace_default(namespace)
    before = (state.zone_defaults.get(name), state.zone_problems.get(name))
    for table, value in ((state.zone_defaults, zone), (state.zone_problems, problem)):
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value
    if problem and before[1] != problem:
        log.warning("%s", problem)
    return before != (zone, problem)


async def load(state: OperatorState) -> None:
    """Every served namespace's default, before the first report event (start-up)."""
    if state.settings.namespaces:
        found = [await state.kube.get(f"/api/v1/namespaces/{n}") for n in state.settings.namespaces]
        listed = [n for n in found if n is not None]
    else:
        listed = await state.kube.list("/api/v1/namespaces", "")
    for namespace in listed:
        remember(state, namespace)


async def namespace_changed(state: OperatorState, namespace: Mapping[str, Any]) -> None:
    name = namespace["metadata"]["name"]
    if not _served(state, name) or namespace["metadata"].get("deletionTimestamp"):
        return
    if not remember(state, namespace):
        return
    reports = await state.kube.list(report_path(name), "")
    log.info("namespace %s: default time zone changed; reconciling %d reports", name, len(reports))
    for report in reports:
        # check_children: the CronJob carries the zone, with no generation or phase change.
        state.spawn(
            sync_or_retry_later(state, name, report["metadata"]["name"], check_children=True)
        )
