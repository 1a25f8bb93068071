"""Which reports have their CronJob (OperatorState.cronjobs), known before the first report
event: listed at start-up, kept from the CronJob watch, and listed once more after start-up
and after resuming, for a CronJob deleted while nothing watched."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tidings import contract
from tidings.controller import metrics
from tidings.controller.kube import Kube, cronjob_path
from tidings.controller.reconcile import sync_or_retry_later
from tidings.controller.state import OperatorState, ReportKey

LIST_CHUNK = 500  # objects per page when listing (kopf's initial lists and ours)
RECHECK_SECONDS = 30  # after start-up, when the CronJob list is taken again (recheck_cronjobs)

log = logging.getLogger("tidings.operator")


def report_key(cronjob: Mapping[str, Any]) -> ReportKey | None:
    """The report a CronJob of ours belongs to, from its annotation."""
    meta = cronjob["metadata"]
    report_name = (meta.get("annotations") or {}).get(contract.REPORT_NAME_ANNOTATION)
    return (meta["namespace"], report_name) if report_name else None


async def list_cronjobs(kube: Kube, namespaces: Sequence[str]) -> dict[ReportKey, str]:
    """(namespace, report name) -> uid of each CronJob the operator manages, listed a page at
    a time (per namespace served, or one cluster-wide list)."""
    found = {}
    for namespace in namespaces or [""]:
        path = cronjob_path(namespace)
        async for page in kube.list_pages(path, contract.MANAGED_SELECTOR, LIST_CHUNK):
            found.update((key, c["metadata"]["uid"]) for c in page if (key := report_key(c)))
    return found


async def recheck_cronjobs(
    state: OperatorState, listed: Mapping[ReportKey, str], delay: float = RECHECK_SECONDS
) -> None:
    """A CronJob deleted between the start-up list and the start of kopf's watch sends no
    DELETED event. Once the watch is surely running, list again: a CronJob of the first list
    that is gone now is forgotten and its report reconciled, which recreates it."""
    await asyncio.sleep(delay)
    if not metrics.LEADERSHIP.leading:
        return  # a paused replica acts on nothing; resuming starts another re-check
    try:
        now = await list_cronjobs(state.kube, state.settings.namespaces)
    except Exception as exc:  # best effort: the report's next event reconciles it anyway
        log.warning("re-listing CronJobs after start-up failed (%s)", exc)
        return
    for key, uid in listed.items():
        if now.get(key) != uid and state.cronjobs.get(key) == uid:
            del state.cronjobs[key]
            await sync_or_retry_later(state, *key, check_children=True)


async def cronjob_changed(
    state: OperatorState, event_type: str | None, cronjob: Mapping[str, Any]
) -> None:
    """A deleted CronJob, or one whose spec someone else changed, is put back by reconciling
    its report. The CronJob controller's status updates and our own writes need no read."""
    meta = cronjob["metadata"]
    key = report_key(cronjob)
    if key is None:
        return
    if event_type == "DELETED":
        if state.cronjobs.get(key) == meta["uid"]:
            del state.cronjobs[key]
    else:
        state.cronjobs[key] = meta["uid"]
    stamped = (meta.get("annotations") or {}).get(contract.WRITTEN_GENERATION)
    if event_type == "DELETED" or stamped != str(meta.get("generation")):
        await sync_or_retry_later(state, *key, check_children=True)
    else:  # as the operator wrote it: runs made from it are its own (run_ownership)
        state.remember_template(cronjob)
