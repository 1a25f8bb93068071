"""Status and Event writes on a report.

Status is written with conditional merge patches to the status subresource: Job events and
report events both write conditions, and an unconditional patch from one would silently drop
the other's. Events are posted by the operator itself, not through kopf's queue, so that an
Event that must appear once has a name derived from what it is about (posting it again is a
409), and none is lost in a queue when the process dies.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from tidings import models
from tidings.contract import digest
from tidings.controller import metrics
from tidings.controller.kube import Kube, events_path, report_path
from tidings.controller.objects import truncate
from tidings.controller.retry import Conflict
from tidings.controller.status import Event
from tidings.schedule import rfc3339

MAX_EVENT_MESSAGE = 1024

log = logging.getLogger("tidings.operator")


async def patch_status(kube: Kube, report: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    """Merge `fields` into status if the report is unchanged since read; Conflict if not."""
    current = report.get("status") or {}
    if all(current.get(key) == value for key, value in fields.items()):
        return
    meta = report["metadata"]
    body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": dict(fields)}
    try:
        await kube.merge_patch(report_path(meta["namespace"], meta["name"]) + "/status", body)
    except ApiException as exc:
        if exc.status == 409:
            raise Conflict() from None
        raise
    metrics.observe_report({**report, "status": {**current, **fields}})


def event_body(
    report: Mapping[str, Any], event: Event, instance: str, now: datetime
) -> dict[str, Any]:
    """The Event object. One with a key gets a name derived from the report, its key and its
    reason, so posting it again (after a restart, a retry) is a 409, not a second Event."""
    meta = report["metadata"]
    key = f"{event.key}/{event.reason}"
    suffix = digest(key)[7:23] if event.key else uuid.uuid4().hex[:16]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name'][:200]}.{suffix}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": event.type,
        "reason": event.reason,
        "message": truncate(event.message, MAX_EVENT_MESSAGE),
        "source": {"component": "tidings"},
        "reportingComponent": "tidings",
        "reportingInstance": instance[:128],
        "firstTimestamp": rfc3339(now),
        "lastTimestamp": rfc3339(now),
        "count": 1,
    }


async def post_events(
    kube: Kube, instance: str, report: Mapping[str, Any], events: Sequence[Event], strict: bool
) -> None:
    """Post Events on the report, each at most once (event_body). `strict`: raise if an
    Event cannot be posted (the caller retries), else log."""
    now = datetime.now(UTC)
    namespace = report["metadata"]["namespace"]
    for event in events:
        try:
            await kube.create(events_path(namespace), event_body(report, event, instance, now))
        except ApiException as exc:
            if exc.status == 409:
                continue  # posted before
            if strict:
                raise
            name = report["metadata"]["name"]
            log.warning("could not post Event %s on %s: %s", event.reason, name, exc)
