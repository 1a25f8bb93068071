"""The operator's state in one process: what the startup handler builds and every handler
reads (from kopf's memo, as `memo.state`)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import kopf

from tidings.controller.kube import Kube
from tidings.controller.settings import Settings

ReportKey = tuple[str, str]  # (namespace, report name)


@dataclass
class OperatorState:
    settings: Settings
    kube: Kube
    instance: str  # this replica, as Events name it (reportingInstance)
    # One reconcile or outcome write per report at a time.
    locks: defaultdict[ReportKey, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )
    # Which reports have their CronJob (report key -> CronJob uid), kept from the CronJob watch.
    # Not a kopf index: until an index has seen every object once, each new object's worker
    # wakes all the waiting ones, quadratic in the number of reports.
    cronjobs: dict[ReportKey, str] = field(default_factory=dict)
    retries: dict[ReportKey, asyncio.Task[None]] = field(default_factory=dict)  # after an error
    start_checks: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # by Job uid
    # Background loops (pruning, CronJob re-checks): the event loop keeps only weak references.
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` in the background, held until it ends; cancelled at cleanup."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def state_of(memo: kopf.Memo) -> OperatorState:
    state: OperatorState = memo.state
    return state
