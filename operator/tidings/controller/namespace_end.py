"""A namespace being deleted, triggered by its watch event: nothing can be created in it any
more (no record, no Event), and kopf stops serving a namespace as soon as it is marked for
deletion, so its Jobs' later events never come. Every Job of ours still held there is let go at
once, without record or Event, and the log says why; otherwise the namespace would wait for the
outcome finalizer forever."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tidings import contract
from tidings.controller.job_outcomes import release
from tidings.controller.kube import job_path
from tidings.controller.state import OperatorState

log = logging.getLogger("tidings.operator")


async def namespace_changed(state: OperatorState, namespace: Mapping[str, Any]) -> None:
    meta = namespace["metadata"]
    name = meta["name"]
    served = not state.settings.namespaces or name in state.settings.namespaces
    if not meta.get("deletionTimestamp") or not served:
        return
    for job in await state.kube.list(job_path(name), contract.MANAGED_SELECTOR):
        job_meta = job["metadata"]
        if contract.FINALIZER not in (job_meta.get("finalizers") or ()):
            continue
        log.warning(
            "namespace %s is being deleted: Job %s let go without its record or Events",
            name,
            job_meta["name"],
        )
        await release(state.kube, job)
        state.own_jobs.discard(job_meta["uid"])
