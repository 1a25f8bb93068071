"""ReportDelivery records, I/O: write one, prune the expired (records.py decides), and the
pruning loop of the operator (every TIDINGS_DELIVERY_PRUNE_INTERVAL_SECONDS)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from tidings.controller import records
from tidings.controller.kube import Kube, delivery_path
from tidings.controller.settings import Settings

log = logging.getLogger("tidings.operator")


def retention(settings: Settings) -> records.Retention:
    return records.Retention(
        default_days=settings.delivery_retention_days,
        max_days=settings.delivery_retention_max_days,
        per_report=settings.delivery_records_per_report,
    )


async def create_record(kube: Kube, record: Mapping[str, Any]) -> bool:
    """Write the record; False when it was already there (409: this Job is recorded)."""
    try:
        await kube.create(delivery_path(record["metadata"]["namespace"]), dict(record))
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


async def prune(
    kube: Kube, now: datetime, retention: records.Retention, namespaces: Sequence[str] = ()
) -> list[str]:
    """Delete the records expired at `now`, whether or not their report still exists: one
    list call (per namespace served, or one cluster-wide) plus a delete per expired record.
    Returns `namespace/name` of each record deleted."""
    listed: list[dict[str, Any]] = []
    for namespace in namespaces or [""]:
        listed += await kube.list(delivery_path(namespace), records.RECORD_SELECTOR)
    deleted = []
    for record in records.expired(listed, now, retention):
        meta = record["metadata"]
        if await kube.delete(delivery_path(meta["namespace"], meta["name"])):
            deleted.append(f"{meta['namespace']}/{meta['name']}")
    return deleted


async def prune_forever(kube: Kube, settings: Settings) -> None:
    """Prune now, then every interval: one list call each time, no steady traffic."""
    while True:
        try:
            now = datetime.now(UTC)
            deleted = await prune(kube, now, retention(settings), settings.namespaces)
            if deleted:
                log.info("pruned %d expired ReportDelivery records", len(deleted))
        except Exception as exc:  # a background loop: one failed round must not end it
            log.warning("pruning ReportDelivery records failed (%s); next try later", exc)
        await asyncio.sleep(settings.delivery_prune_interval)
