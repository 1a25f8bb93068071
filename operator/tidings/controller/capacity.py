"""Pure: which held runs to release now, and whether a run that has not started is waiting
for capacity (not the report's failure).

A run waits for capacity when its Job is suspended (held by the concurrent-run cap, or by
Kueue until it admits it), or its pod is Pending because the node is full (the scheduler's
Unschedulable for resources, or ContainerCreating on a busy node). Such a wait never shows as
RunNotStarted, and its Job's deadline is pushed on while it lasts (run_start): the run's
timeout counts from its pod starting.

Releasing: with `operator.maxConcurrentRuns` (or `operator.startJitterSeconds`) on, every Job
is created suspended (the CronJob's jobTemplate) and released here in fire order (plus the
report's jitter offset) while fewer than the caps of the operator's own runs are unsuspended
and unfinished. Only runs the operator has shown to be its own
(run_ownership) are counted or released: a namespace editor's look-alike Jobs are neither.
Other rules that hold a run suspended (a duplicate fire, for example) plug in as a `Hold`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tidings.contract import (
    DUPLICATE_OF_ANNOTATION,
    REPORT_UID_LABEL,
    RUN_NOW_LABEL,
    SCHEDULED_TIMESTAMP_ANNOTATION,
)
from tidings.controller.settings import Settings
from tidings.schedule import parse_rfc3339

# On the jobTemplate when the cap is on: the Job is suspended for the cap and the operator may
# release it. A Job suspended for any other reason (Kueue, a hand edit) is left alone.
CAPACITY_HOLD_ANNOTATION = "tidings.dev/held-for-capacity"
# Kueue's label: Kueue suspends such a Job itself and unsuspends it when it admits it.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# The timeout a run was created with, once its deadline has been pushed on for a capacity wait.
TIMEOUT_ANNOTATION = "tidings.dev/timeout-seconds"
START_SLACK = 10  # seconds between a Job's start and its pod's that need no deadline change
# What the scheduler says when the node has no room (resources, pod slots, ports).
_FULL_NODE = ("Insufficient ", "Too many pods", "didn't have free ports")


@dataclass(frozen=True)
class Caps:
    """Concurrent runs allowed (0 means no cap), and the start jitter window in seconds."""

    per_namespace: int = 0
    cluster: int = 0
    jitter: int = 0

    @property
    def on(self) -> bool:
        """Runs are created suspended and released by the operator."""
        return bool(self.per_namespace or self.cluster or self.jitter)


def jitter_offset(report_uid: str, window: int) -> int:
    """Seconds after each fire time a report's scheduled runs start: the same for every run
    of the report (so nextSendAt can say it), spread evenly over 0..window across reports."""
    if window <= 0:
        return 0
    return int(hashlib.sha256(report_uid.encode()).hexdigest()[:12], 16) % (window + 1)


def report_jitter(settings: Settings, report: Mapping[str, Any]) -> int:
    """The report's jitter offset under the operator's settings."""
    return jitter_offset(report["metadata"].get("uid", ""), settings.start_jitter_seconds)


NextFire = Callable[[str, str, datetime], datetime | None]


def jittered(next_fire: NextFire, offset: int) -> NextFire:
    """`next_fire` moved on by the report's offset: when its next run really starts."""
    if not offset:
        return next_fire

    def fire(schedule: str, zone: str, after: datetime) -> datetime | None:
        moment = next_fire(schedule, zone, after - timedelta(seconds=offset))
        return moment + timedelta(seconds=offset) if moment else None

    return fire


@dataclass(frozen=True)
class Run:
    """One of the operator's runs, as the release decision needs it."""

    namespace: str
    name: str
    uid: str
    due: datetime  # the fire time it was scheduled for (creation time for run-now)
    suspended: bool
    releasable: bool  # suspended by the cap (ours to release), not by Kueue or a hand
    report_uid: str = ""
    scheduled: bool = False  # fired by the CronJob (jitter applies), not run-now or a test

    def start_at(self, caps: Caps) -> datetime:
        """When it may start: its fire time, plus the report's jitter for a scheduled run."""
        offset = jitter_offset(self.report_uid, caps.jitter) if self.scheduled else 0
        return self.due + timedelta(seconds=offset)


def caps_of(settings: Settings) -> Caps:
    return Caps(
        settings.max_runs_per_namespace, settings.max_runs_cluster, settings.start_jitter_seconds
    )


def hold_runs(job_template: dict[str, Any], caps: Caps) -> None:
    """Make a CronJob's jobTemplate create its Jobs suspended when a cap or the jitter is on,
    and say so; explicitly unsuspended otherwise, so that switching them off changes the
    CronJob."""
    job_template["spec"]["suspend"] = caps.on
    if caps.on:
        meta = job_template["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}), CAPACITY_HOLD_ANNOTATION: "true"}


Hold = Callable[[Run], str | None]  # why this run stays suspended, or None


def _time(text: str | None) -> datetime | None:
    try:
        return parse_rfc3339(text or "")
    except ValueError:
        return None


def run_of(job: Mapping[str, Any]) -> Run:
    """The decision's view of a Job (the caller has shown it is the operator's own)."""
    meta = job.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    fired = _time(annotations.get(SCHEDULED_TIMESTAMP_ANNOTATION))
    due = fired or _time(meta.get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)
    suspended = bool((job.get("spec") or {}).get("suspend"))
    releasable = (
        suspended
        and annotations.get(CAPACITY_HOLD_ANNOTATION) == "true"
        and KUEUE_QUEUE_LABEL not in labels
        and DUPLICATE_OF_ANNOTATION not in annotations  # a DST duplicate: slot_guard deletes it
    )
    return Run(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""), due,
               suspended, releasable, labels.get(REPORT_UID_LABEL, ""),
               fired is not None and RUN_NOW_LABEL not in labels)  # fmt: skip


def was_held(job: Mapping[str, Any]) -> bool:
    """Created suspended for the cap or the jitter (or for Kueue): its creation is not when
    its clock started."""
    meta = job.get("metadata") or {}
    return (meta.get("annotations") or {}).get(CAPACITY_HOLD_ANNOTATION) == "true" or (
        KUEUE_QUEUE_LABEL in (meta.get("labels") or {})
    )


def releases(
    runs: Iterable[Run], caps: Caps, now: datetime, holds: Sequence[Hold] = ()
) -> list[Run]:
    """The held runs to release now, oldest start time first (fire time plus jitter), so that
    the caps are never exceeded; every unfinished unsuspended run counts against them. With no
    cap, every releasable run whose time has come goes (also one held before the cap was
    switched off). A run some `hold` names stays held and lets later ones pass."""
    runs = list(runs)
    running: dict[str, int] = {}
    for run in runs:
        if not run.suspended:
            running[run.namespace] = running.get(run.namespace, 0) + 1
    total = sum(running.values())
    chosen: list[Run] = []
    waiting = sorted(
        (r for r in runs if r.suspended and r.releasable),
        key=lambda r: (r.start_at(caps), r.namespace, r.name),
    )
    for run in waiting:
        if run.start_at(caps) > now and run.start_at(caps) > run.due:
            continue  # its jitter offset has not passed (without one, skewed clocks wait not)
        if any(hold(run) for hold in holds):
            continue
        if caps.cluster and total >= caps.cluster:
            break  # fire order across the cluster: nobody jumps the queue
        if caps.per_namespace and running.get(run.namespace, 0) >= caps.per_namespace:
            continue  # this namespace is full; others may go
        chosen.append(run)
        running[run.namespace] = running.get(run.namespace, 0) + 1
        total += 1
    return chosen


def released(run: Run) -> Run:
    """The run as it is once released: going, and counted against the caps."""
    return replace(run, suspended=False, releasable=False)


def capacity_wait(
    job: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
    creating_bound: float | None = None,
) -> str | None:
    """Why the run is waiting for capacity (suspended, the node full, containers being
    created), or None when it is not (it started, or it waits for something that is a fault:
    an image that cannot be pulled, a quota refusing the pod, or containers still being
    created `creating_bound` seconds after the pod was bound: a Secret that cannot be mounted
    looks like that, and must not wait for ever)."""
    if (job.get("spec") or {}).get("suspend"):
        labels = (job.get("metadata") or {}).get("labels") or {}
        if KUEUE_QUEUE_LABEL in labels:
            return f"waiting for Kueue to admit it (queue {labels[KUEUE_QUEUE_LABEL]})"
        return "held until a concurrent-run slot is free"
    if not pods:
        return None
    newest = max(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    status = newest.get("status") or {}
    if status.get("phase") != "Pending":
        return None
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = condition.get("message") or ""
            if condition.get("reason") == "Unschedulable" and any(m in message for m in _FULL_NODE):
                return f"waiting for room on a node: {message}"
            return None
    bound = next(
        (
            c
            for c in status.get("conditions") or ()
            if c.get("type") == "PodScheduled" and c.get("status") == "True"
        ),
        None,
    )
    waits = [
        (c.get("state") or {}).get("waiting") or {} for c in status.get("containerStatuses") or ()
    ]
    creating = all(w.get("reason") == "ContainerCreating" for w in waits)
    if bound is None or not creating:  # (no waits: bound, the kubelet has not reported yet)
        return None
    since = _time(bound.get("lastTransitionTime")) or _time(
        (newest.get("metadata") or {}).get("creationTimestamp")
    )
    if (
        now
        and creating_bound is not None
        and since
        and (now - since).total_seconds() > (creating_bound)
    ):
        return None  # creating for too long: a fault (FailedMount), not a busy node
    return "its containers are being created"


def pod_started_at(pods: Sequence[Mapping[str, Any]]) -> datetime | None:
    """When the newest pod's container started (or, before the kubelet says, the pod)."""
    if not pods:
        return None
    newest = max(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "")
    status = newest.get("status") or {}
    for container in status.get("containerStatuses") or ():
        state = container.get("state") or {}
        for key in ("running", "terminated"):
            if moment := _time((state.get(key) or {}).get("startedAt")):
                return moment
    return _time(status.get("startTime"))


def job_timeout(job: Mapping[str, Any]) -> int | None:
    """The run's own timeout (failurePolicy.timeoutSeconds): the deadline the Job was created
    with, kept in an annotation once the operator has pushed the deadline on."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    kept = annotations.get(TIMEOUT_ANNOTATION, "")
    current = (job.get("spec") or {}).get("activeDeadlineSeconds")
    if not isinstance(current, int):
        return None
    # Never more than the deadline now: the operator writes it only when it pushes it further.
    return min(int(kept), current) if kept.isdigit() else current


def pushed_deadline(
    job: Mapping[str, Any], now: datetime, ahead: float, pod_started: datetime | None = None
) -> int | None:
    """The activeDeadlineSeconds a run should have so that its timeout counts from its pod
    starting, or None to leave it. While it waits for capacity (`pod_started` None): pushed to
    what it waited plus its timeout once less than `ahead` seconds are left. Once its pod
    started: exactly the wait before the start plus its timeout."""
    started = _time((job.get("status") or {}).get("startTime"))
    timeout = job_timeout(job)
    current = (job.get("spec") or {}).get("activeDeadlineSeconds")
    if started is None or timeout is None or not isinstance(current, int):
        return None  # suspended: the Job controller starts its clock on resume
    if pod_started is not None:
        wanted = max(timeout, int((pod_started - started).total_seconds()) + timeout)
        if wanted < current or wanted - current >= START_SLACK:
            return wanted
        return None  # a pod that started within seconds of its Job is not worth a write
    waited = (now - started).total_seconds()
    if current - waited > ahead:
        return None
    return int(waited) + timeout
