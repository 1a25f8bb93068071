"""The operator's state in one process: what the startup handler builds and every handler
reads (from kopf's memo, as `memo.state`)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import kopf

from tidings import contract
from tidings.controller import run_ownership
from tidings.controller.kube import Kube
from tidings.controller.settings import Settings

ReportKey = tuple[str, str]  # (namespace, report name)
TEMPLATES_KEPT = 8  # spec changes a run may outlive and still be recognised


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
    # Digests of the pod templates each report's CronJob had as the operator wrote them (by
    # report uid, newest last): a run started before a spec change still matches its own.
    templates: dict[str, list[str]] = field(default_factory=dict)
    # Job uids looked at (run_ownership): running runs shown to be ours, and Jobs that are not
    # (refused once, their later events ignored).
    own_jobs: set[str] = field(default_factory=set)
    foreign_jobs: set[str] = field(default_factory=set)
    # When each namespace's test sends of the last hour started (the per-namespace limit).
    test_sends: dict[str, list[datetime]] = field(default_factory=dict)
    start_checks: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # by Job uid
    # Namespace -> its default time zone (controller.zones), from the Namespace watch; and why
    # a namespace's annotation is not used, when it is not.
    zone_defaults: dict[str, str] = field(default_factory=dict)
    zone_problems: dict[str, str] = field(default_factory=dict)
    # Owner notices being sent now (namespace/report/notice id): one sender each.
    notices_in_flight: set[str] = field(default_factory=set)
    # Background loops (pruning, CronJob re-checks): the event loop keeps only weak references.
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def remember_template(self, cronjob: Mapping[str, Any]) -> None:
        """Keep the digest of a CronJob's pod template as the operator wrote it (the last
        TEMPLATES_KEPT per report)."""
        report_uid = (cronjob["metadata"].get("labels") or {}).get(contract.REPORT_UID_LABEL)
        if not report_uid:
            return
        seen = self.templates.setdefault(report_uid, [])
        wrote = run_ownership.template_digest(run_ownership.cronjob_template(cronjob))
        if wrote in seen:
            seen.remove(wrote)
        seen.append(wrote)
        del seen[:-TEMPLATES_KEPT]

    def take_test_send(self, namespace: str, now: datetime) -> bool:
        """Count one test send against the namespace's hourly limit; False when it is used up.
        Kept in the process: a restart or a leader hand-over starts the hour afresh."""
        hour_ago = now - timedelta(hours=1)
        started = [t for t in self.test_sends.get(namespace, ()) if t > hour_ago]
        if len(started) >= self.settings.test_sends_per_hour:
            self.test_sends[namespace] = started
            return False
        self.test_sends[namespace] = [*started, now]
        return True

    def give_back_test_send(self, namespace: str) -> None:
        """The test send just taken did not start after all."""
        if self.test_sends.get(namespace):
            self.test_sends[namespace].pop()

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` in the background, held until it ends; cancelled at cleanup."""
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def state_of(memo: kopf.Memo) -> OperatorState:
    state: OperatorState = memo.state
    return state
