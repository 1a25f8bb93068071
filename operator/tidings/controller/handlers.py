"""kopf handlers: thin glue between watch events and the pure modules. Level-triggered: every
event of a report, its CronJob or its Jobs leads to the same idempotent reconcile, and nothing of
the spec is kept on the report (no kopf progress or diff base: only event handlers are
registered, and they store nothing on the objects).

- A report event -> validate, decide (status.reconcile), make its CronJob match when something
  may have changed, start a run-now Job, write status. A new report costs two writes: its
  CronJob and its status.
- A CronJob of ours deleted, or its spec changed by someone else (its generation moved past the
  one the operator stamped when it last wrote it) -> put back, with a Warning: a hand edit.
- A Job of ours finished -> its outcome is applied to the report's status once, with a
  resourceVersion precondition, and only then is the Job let go (docs/operator.md, "Each run
  counted once").
- A Job whose pod has not started within the bound -> Delivered=Unknown, reason RunNotStarted.
- A finished Job's ReportDelivery record is written before its outcome counts (named from the
  Job, so at most once).
- Every TIDINGS_DELIVERY_PRUNE_INTERVAL_SECONDS, expired ReportDelivery records are deleted.

Status is written with conditional merge patches to the status subresource: Job events and
report events both write conditions, and an unconditional patch from one would silently drop
the other's. Events are posted by the operator itself, not through kopf's queue, so that an
Event that must appear once has a name derived from what it is about (posting it again is a
409), and none is lost in a queue when the process dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import contract, models, schedule, validation
from tidings.controller import cronjob as cj
from tidings.controller import metrics, record_store, records, run_outcome, testsend
from tidings.controller import status as st
from tidings.controller.kube import (
    Kube,
    cronjob_path,
    events_path,
    job_path,
    load_api_client,
    pods_path,
    report_path,
)
from tidings.controller.settings import Settings, load_settings
from tidings.schedule import parse_rfc3339, rfc3339

REPORTS = (models.GROUP, models.VERSION, models.PLURAL)
MANAGED = {contract.MANAGED_BY_LABEL: contract.MANAGED_BY}
MANAGED_SELECTOR = f"{contract.MANAGED_BY_LABEL}={contract.MANAGED_BY}"
API_THREADS = 32  # API calls in flight at once
LIST_CHUNK = 500  # objects per page when listing (kopf's initial lists and ours)
RECHECK_SECONDS = 30  # after start-up, when the CronJob list is taken again (recheck_cronjobs)
ATTEMPTS = 8  # conflicting status writes / transient API errors before giving up on an event
MAX_EVENT_MESSAGE = 1024

log = logging.getLogger("tidings.operator")


def _now() -> datetime:
    return datetime.now(UTC)


def _next_fire(schedule_text: str, time_zone: str, after: datetime) -> datetime | None:
    try:
        return schedule.next_fire_time(schedule_text, time_zone, after)
    except ValueError:  # only reachable if validation and the schedule module ever disagree
        return None


class _Conflict(Exception):
    """An object changed between read and conditional write: read again and retry."""


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Events are for humans: ours are posted explicitly; kopf's per-handler chatter is not.
    settings.posting.level = logging.WARNING
    # issue 15: Events say `From: tidings` (kopf's default is "kopf"), and which replica.
    settings.posting.reporting_component = "tidings"
    settings.posting.reporting_instance = os.environ.get("POD_ID") or socket.gethostname()
    # The apiserver filters CronJobs and Jobs by label: kopf's `labels=` filters client-side, so
    # every CronJob and Job in the cluster would get a worker and a memory.
    for plural in ("cronjobs", "jobs"):
        settings.watching.label_selectors["batch", "v1", plural] = MANAGED_SELECTOR
    # kopf lists what exists before it watches; unchunked, a restart among 10,000 reports and
    # their CronJobs held every object at once, well past the chart's 512Mi memory limit.
    settings.watching.chunk_size = LIST_CHUNK
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    if not hasattr(memo, "settings"):
        memo.settings = load_settings(os.environ)
    if memo.settings.webhook_port:
        from tidings.controller.admission import LargeRequestWebhookServer

        settings.admission.server = LargeRequestWebhookServer(
            addr="0.0.0.0",
            port=memo.settings.webhook_port,
            certfile=memo.settings.webhook_cert_file or None,
            pkeyfile=memo.settings.webhook_key_file or None,
        )
    # Every API call runs in a worker thread (kube.py): the default executor's min(32, cores
    # + 4) threads would cap a burst of reports at a handful of requests in flight.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(API_THREADS))
    memo.kube = Kube(load_api_client(pool_size=API_THREADS))
    memo.locks = defaultdict(asyncio.Lock)
    memo.pruning = asyncio.get_running_loop().create_task(prune_forever(memo))  # issue 12
    memo.retries = {}  # (namespace, name) -> task re-syncing a report after an error
    memo.start_checks = {}  # Job uid -> task watching that its pod starts in time
    memo.instance = os.environ.get("POD_ID") or socket.gethostname()
    # Which reports have their CronJob, known before the first report event (kopf starts the
    # watches after this handler). Not a kopf index: until an index has seen every object once,
    # each new object's worker wakes all the waiting ones, quadratic in the number of reports.
    memo.cronjobs = await list_cronjobs(memo.kube, memo.settings.namespaces)
    memo.rechecks = set()  # running recheck_cronjobs tasks (the loop keeps only weak references)
    loop = asyncio.get_running_loop()

    def recheck() -> None:
        task = loop.create_task(recheck_cronjobs(memo, dict(memo.cronjobs)))
        memo.rechecks.add(task)
        task.add_done_callback(memo.rechecks.discard)

    recheck()
    # A paused peering replica sees no deletions; kopf's lists on resuming bring what exists,
    # and the same re-check finds what its map still holds but is gone.
    metrics.LEADERSHIP.leading = settings.peering.standalone  # kopf starts a peer paused
    metrics.LEADERSHIP.add_resume_hook(recheck)
    metrics.LEADERSHIP.install()


@kopf.on.cleanup()
async def close_client(memo: kopf.Memo, **_: Any) -> None:
    if getattr(memo, "pruning", None):  # issue 12: delivery record retention
        memo.pruning.cancel()
    for task in list(getattr(memo, "rechecks", ())):
        task.cancel()
    memo.kube.api.close()


# ------------------------------------------------------------------ delivery records (issue 12)


def retention(settings: Settings) -> records.Retention:
    return records.Retention(
        default_days=settings.delivery_retention_days,
        max_days=settings.delivery_retention_max_days,
        per_report=settings.delivery_records_per_report,
    )


async def prune_forever(memo: kopf.Memo) -> None:
    """Prune now, then every interval: one list call each time, no steady traffic."""
    settings: Settings = memo.settings
    while True:
        try:
            deleted = await record_store.prune(
                memo.kube, _now(), retention(settings), settings.namespaces
            )
            if deleted:
                log.info("pruned %d expired ReportDelivery records", len(deleted))
        except Exception as exc:  # a background loop: one failed round must not end it
            log.warning("pruning ReportDelivery records failed (%s); next try later", exc)
        await asyncio.sleep(settings.delivery_prune_interval)


async def write_record(
    memo: kopf.Memo,
    report: Mapping[str, Any],
    job: Mapping[str, Any],
    outcome: run_outcome.RunOutcome,
    pods: list[dict[str, Any]],
) -> None:
    """The Job's ReportDelivery, before status counts it: a crash in between leaves a record
    whose second write is a 409. A refusal other than a server error is logged and does not
    stop status from being recorded."""
    record = records.delivery_record(
        report, job, outcome, run_outcome.job_result(pods), retention(memo.settings)
    )
    try:
        await record_store.create_record(memo.kube, record)
    except ApiException as exc:
        if exc.status >= 500 or exc.status == 429:
            raise
        log.error("ReportDelivery %s was refused: %s", record["metadata"]["name"], exc.body)


@kopf.on.probe(id="reports")
async def reports_seen(**_: Any) -> int:
    return metrics.reports_seen()


# ------------------------------------------------------------------------------- reports


def _report_key(cronjob: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = cronjob["metadata"]
    report_name = (meta.get("annotations") or {}).get(contract.REPORT_NAME_ANNOTATION)
    return (meta["namespace"], report_name) if report_name else None


async def list_cronjobs(kube: Kube, namespaces: Sequence[str]) -> dict[tuple[str, str], str]:
    """(namespace, report name) -> uid of each CronJob the operator manages, listed a page at
    a time (per namespace served, or one cluster-wide list)."""
    found = {}
    for namespace in namespaces or [""]:
        async for page in kube.list_pages(cronjob_path(namespace), MANAGED_SELECTOR, LIST_CHUNK):
            found.update((key, c["metadata"]["uid"]) for c in page if (key := _report_key(c)))
    return found


async def recheck_cronjobs(
    memo: kopf.Memo, listed: Mapping[tuple[str, str], str], delay: float = RECHECK_SECONDS
) -> None:
    """A CronJob deleted between the start-up list and the start of kopf's watch sends no
    DELETED event. Once the watch is surely running, list again: a CronJob of the first list
    that is gone now is forgotten and its report reconciled, which recreates it."""
    await asyncio.sleep(delay)
    if not metrics.LEADERSHIP.leading:
        return  # a paused replica acts on nothing; resuming starts another re-check
    try:
        now = await list_cronjobs(memo.kube, memo.settings.namespaces)
    except Exception as exc:  # best effort: the report's next event reconciles it anyway
        log.warning("re-listing CronJobs after start-up failed (%s)", exc)
        return
    for key, uid in listed.items():
        if now.get(key) != uid and memo.cronjobs.get(key) == uid:
            del memo.cronjobs[key]
            await _guarded(memo, *key, check_children=True)


@kopf.on.event(*REPORTS)
async def report_event(
    event: Mapping[str, Any],
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if event["type"] == "DELETED":
        metrics.forget_report(namespace, name)
        return
    metrics.observe_report(body)
    has_cronjob = (namespace, name) in memo.cronjobs
    await _guarded(memo, namespace, name, seen=dict(body), check_children=not has_cronjob)


async def _guarded(memo: kopf.Memo, namespace: str, name: str, **kwargs: Any) -> None:
    """sync_report, retried later with backoff on failure: event handlers are not retried by
    kopf, and a level-triggered reconcile only needs to run again, with fresh reads."""
    try:
        await sync_report(memo, namespace, name, **kwargs)
    except Exception as exc:
        log.warning("reconciling %s/%s failed (%s); retrying", namespace, name, exc)
        _retry_later(memo, namespace, name, attempt=1)


def _retry_later(memo: kopf.Memo, namespace: str, name: str, attempt: int) -> None:
    key = (namespace, name)
    if key in memo.retries:
        return

    async def retry() -> None:
        await asyncio.sleep(min(2**attempt, 60))
        memo.retries.pop(key, None)
        try:
            await sync_report(memo, namespace, name, check_children=True)
        except Exception as exc:
            log.warning("reconciling %s/%s failed again (%s)", namespace, name, exc)
            _retry_later(memo, namespace, name, attempt + 1)

    memo.retries[key] = asyncio.create_task(retry())


async def sync_report(
    memo: kopf.Memo,
    namespace: str,
    name: str,
    seen: Mapping[str, Any] | None = None,
    check_children: bool = False,
) -> None:
    """Make the report's CronJob and status match its spec and annotations. Idempotent.

    `seen` is the report as the watch delivered it: the first attempt uses it rather than
    reading it again (the status write is conditional on its resourceVersion, so a stale copy
    costs a 409 and a re-read, never a lost update). The CronJob is read only when something
    may have changed it: a new generation or phase, a missing or edited CronJob, a run-now."""
    kube: Kube = memo.kube
    async with memo.locks[(namespace, name)]:
        for attempt in range(ATTEMPTS):
            report = seen if attempt == 0 and seen is not None else None
            if report is None:
                report = await kube.get(report_path(namespace, name))
            if report is None or report["metadata"].get("deletionTimestamp"):
                return  # garbage collection removes the children
            status = report.get("status") or {}
            problems = [str(p) for p in validation.validate_spec(report.get("spec")).errors]
            pending = st.pending_run_now(report)
            busy = pending is not None and await _run_going(kube, report)
            decision = st.reconcile(report, problems, _now(), _next_fire, busy)
            first = status.get("observedGeneration") is None
            changed = report["metadata"].get("generation") != status.get(
                "observedGeneration"
            ) or decision.phase != status.get("phase")
            events: list[st.Event] = []
            try:
                if first or changed or check_children or decision.run_now:
                    events += await apply_children(memo, report, decision.phase, first)
                if decision.run_now:
                    events.append(await start_run_now(memo, report, decision.run_now))
            except _Conflict:
                continue
            if busy and pending is not None:
                events.append(
                    st.Event(
                        "Normal",
                        "RunNowWaiting",
                        f"{contract.RUN_NOW_ANNOTATION}: waits for the run in progress to end "
                        "(one run per report at a time).",
                        key=contract.digest(pending),
                    )
                )
            test_fields, test_events = await start_test_send(kube, report, not problems)
            events += test_events
            if await write_status(kube, report, {**decision.change.status, **test_fields}):
                await post(memo, report, [*events, *decision.change.events], strict=False)
                return
    raise kopf.TemporaryError("the report kept changing while being reconciled", delay=5)


async def _run_going(kube: Kube, report: Mapping[str, Any]) -> bool:
    """Whether a Job of this report is still running (not finished, not being deleted)."""
    meta = report["metadata"]
    jobs = await kube.list(
        job_path(meta["namespace"]), f"{contract.REPORT_UID_LABEL}={meta['uid']}"
    )
    return any(
        run_outcome.job_finished(job) is None and not job["metadata"].get("deletionTimestamp")
        for job in jobs
    )


async def apply_children(
    memo: kopf.Memo, report: Mapping[str, Any], phase: str, first: bool = False
) -> list[st.Event]:
    """Create or correct the CronJob; returns Events worth posting. A spec change updates it
    silently; only a CronJob someone else changed or deleted is worth a Warning."""
    kube: Kube = memo.kube
    settings: Settings = memo.settings
    namespace = report["metadata"]["namespace"]
    name = cj.cronjob_name(report["metadata"]["name"])
    path = cronjob_path(namespace, name)
    if phase == models.Phase.INVALID:
        # An invalid spec cannot be turned into a pod; just make sure nothing runs.
        existing = await kube.get(path)
        if existing and _owned(existing, report) and not existing["spec"].get("suspend"):
            await kube.merge_patch(path, {"spec": {"suspend": True}})
        return []
    desired = cj.desired_cronjob(report, settings, st.suspends_cronjob(phase))
    # A report never reconciled has no CronJob yet: create at once, read only on a conflict.
    actual = None if first else await kube.get(path)
    if actual is None:
        desired["metadata"]["annotations"][contract.WRITTEN_GENERATION] = "1"
        try:
            created = await kube.create(cronjob_path(namespace), desired)
        except ApiException as exc:
            if exc.status != 409:
                raise
            actual = await kube.get(path)
        else:
            # Known at once: the report's next event need not wait for the CronJob's.
            memo.cronjobs[(namespace, report["metadata"]["name"])] = created["metadata"]["uid"]
            if first:
                return []
            message = f"CronJob {name} was deleted outside the ScheduledReport; recreated it."
            return [st.Event("Warning", "CronJobRecreated", message)]
    if actual is None:
        raise _Conflict()
    if not _owned(actual, report):
        message = f"CronJob {name} already exists and is not owned by this report; rename one"
        await post(memo, report, [st.Event("Warning", "NameConflict", message)], strict=False)
        raise kopf.TemporaryError(message, delay=60)
    stamped = (actual["metadata"].get("annotations") or {}).get(contract.WRITTEN_GENERATION)
    generation = actual["metadata"].get("generation", 0)
    desired["metadata"]["annotations"][contract.WRITTEN_GENERATION] = stamped or ""
    hand_edited = stamped is not None and stamped != str(generation)
    if not cj.drifted(desired, actual) and not hand_edited:
        return []
    spec_differs = cj.drifted(desired["spec"], actual["spec"])
    desired["metadata"]["annotations"][contract.WRITTEN_GENERATION] = str(generation + spec_differs)
    desired["metadata"]["resourceVersion"] = actual["metadata"]["resourceVersion"]
    try:
        await kube.merge_patch(path, desired)
    except ApiException as exc:
        if exc.status == 409:
            raise _Conflict() from None
        raise
    if hand_edited and spec_differs:
        return [
            st.Event(
                "Warning",
                "CronJobReverted",
                f"CronJob {name} was changed outside the ScheduledReport; restored it. "
                "Edit the ScheduledReport instead.",
            )
        ]
    return []


def _owned(child: Mapping[str, Any], report: Mapping[str, Any]) -> bool:
    uid = report["metadata"]["uid"]
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in child["metadata"].get("ownerReferences") or ()
    )


async def start_run_now(memo: kopf.Memo, report: Mapping[str, Any], value: str) -> st.Event:
    """One Job from the CronJob's template, named from the value so retries cannot double it."""
    namespace = report["metadata"]["namespace"]
    template = cj.desired_cronjob(report, memo.settings, suspend=True)  # only its jobTemplate
    job = cj.run_now_job(report, template, value, _now())
    try:
        await memo.kube.create(job_path(namespace), job)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return st.Event(
        "Normal",
        "RunNowStarted",
        f"Started Job {job['metadata']['name']} for {contract.RUN_NOW_ANNOTATION}.",
        key=contract.digest(value),
    )


async def start_test_send(
    kube: Kube, report: Mapping[str, Any], valid: bool
) -> tuple[dict[str, Any], list[st.Event]]:
    """tidings.dev/send-test (controller.testsend): one Job to that address only, once per value.
    Returns the status fields that record it and the Events to post."""
    meta = report["metadata"]
    fields, address, refused = testsend.decide(
        meta.get("annotations") or {}, report.get("status") or {}, valid
    )
    if refused:
        return fields, [st.Event("Warning", "TestSendRefused", f"Not sent: {refused}.")]
    if address is None:
        return fields, []
    namespace = meta["namespace"]
    cronjob = await kube.get(cronjob_path(namespace, cj.cronjob_name(meta["name"])))
    if cronjob is None:
        raise kopf.TemporaryError("the CronJob is not there yet", delay=2)
    job = cj.owned_by_report(
        testsend.test_job(cronjob, address, fields["testSendCount"], _now()), report
    )
    try:
        await kube.create(job_path(namespace), job)
    except ApiException as exc:
        if exc.status != 409:
            raise
    name = job["metadata"]["name"]
    return fields, [
        st.Event("Normal", "TestSendStarted", f"Started Job {name}: to {address} only.")
    ]


async def write_status(kube: Kube, report: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Merge `fields` into status if the report is unchanged since read; False on conflict."""
    current = report.get("status") or {}
    if all(current.get(key) == value for key, value in fields.items()):
        return True
    meta = report["metadata"]
    body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": dict(fields)}
    try:
        await kube.merge_patch(report_path(meta["namespace"], meta["name"]) + "/status", body)
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    metrics.observe_report({**report, "status": {**current, **fields}})
    return True


async def post(
    memo: kopf.Memo, report: Mapping[str, Any], events: list[st.Event], strict: bool
) -> None:
    """Post Events on the report. An Event with a key gets a name derived from the report, its
    key and its reason, so posting it again (after a restart, a retry) is a 409, not a second
    Event. `strict`: raise if an Event cannot be posted (the caller retries), else log."""
    meta = report["metadata"]
    now = rfc3339(_now())
    for event in events:
        suffix = (
            contract.digest(f"{event.key}/{event.reason}")[7:23]
            if event.key
            else uuid.uuid4().hex[:16]
        )
        body = {
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
            "message": st.truncate(event.message, MAX_EVENT_MESSAGE),
            "source": {"component": "tidings"},
            "reportingComponent": "tidings",
            "reportingInstance": memo.instance[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await memo.kube.create(events_path(meta["namespace"]), body)
        except ApiException as exc:
            if exc.status == 409:
                continue  # posted before
            if strict:
                raise
            log.warning("could not post Event %s on %s: %s", event.reason, meta["name"], exc)


# ------------------------------------------------------------------------------ CronJobs


@kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED)
async def cronjob_event(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any):
    """A deleted CronJob, or one whose spec someone else changed, is put back by reconciling
    its report. The CronJob controller's status updates and our own writes need no read."""
    meta = body["metadata"]
    key = _report_key(body)
    if key is None:
        return
    if event["type"] == "DELETED":
        if memo.cronjobs.get(key) == meta["uid"]:
            del memo.cronjobs[key]
    else:
        memo.cronjobs[key] = meta["uid"]
    stamped = (meta.get("annotations") or {}).get(contract.WRITTEN_GENERATION)
    if event["type"] == "DELETED" or stamped != str(meta.get("generation")):
        await _guarded(memo, *key, check_children=True)


# ---------------------------------------------------------------------------------- Jobs


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any):
    meta = body["metadata"]
    annotations = meta.get("annotations") or {}
    report_name = annotations.get(contract.REPORT_NAME_ANNOTATION)
    job = dict(body)
    running = run_outcome.job_finished(job) is None and not meta.get("deletionTimestamp")
    if not running and (check := memo.start_checks.pop(meta["uid"], None)):
        check.cancel()  # no idle polling for runs that ended
    if not report_name or event["type"] == "DELETED" or contract.COUNTED_ANNOTATION in annotations:
        return  # a held Job is never gone before it is counted; a counted one is done
    namespace = meta["namespace"]
    if running:
        if contract.FINALIZER not in (meta.get("finalizers") or ()):
            # Born without it (the admission policy is not installed): hold it from now on.
            await _hold(memo.kube, job)
        if contract.NOT_STARTED_ANNOTATION not in annotations:
            _watch_start(memo, job, report_name)
        if event["type"] in (None, "ADDED"):
            # A new run means the previous fire time passed: nextSendAt moves on.
            await _guarded(memo, namespace, report_name)
        return
    for attempt in range(ATTEMPTS):
        try:
            await record_outcome(memo, namespace, report_name, job)
            return
        except (ApiException, kopf.TemporaryError) as exc:
            status = getattr(exc, "status", 500)
            if status < 500 and status not in (409, 429):
                raise
            log.warning("recording Job %s failed (%s); retrying", meta["name"], exc)
            await asyncio.sleep(min(2**attempt, 30))
    log.error("gave up recording Job %s; it stays held and is retried on restart", meta["name"])


async def _hold(kube: Kube, job: Mapping[str, Any]) -> None:
    meta = job["metadata"]
    body = {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "finalizers": [*(meta.get("finalizers") or ()), contract.FINALIZER],
        }
    }
    try:
        await kube.merge_patch(job_path(meta["namespace"], meta["name"]), body)
    except ApiException as exc:
        if exc.status not in (404, 409):  # 409: a newer version comes with its own event
            raise


async def release(kube: Kube, job: Mapping[str, Any]) -> None:
    """Mark the Job counted and drop our finalizer, in one write: from then on it is done."""
    for _attempt in range(ATTEMPTS):
        meta = job["metadata"]
        body = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "finalizers": [f for f in meta.get("finalizers") or () if f != contract.FINALIZER],
                "annotations": {contract.COUNTED_ANNOTATION: "true"},
            }
        }
        path = job_path(meta["namespace"], meta["name"])
        try:
            await kube.merge_patch(path, body)
            return
        except ApiException as exc:
            if exc.status == 404:
                return
            if exc.status != 409:
                raise
        found = await kube.get(path)
        if found is None:
            return
        job = found
    raise kopf.TemporaryError(f"could not release Job {job['metadata']['name']}")


async def record_outcome(
    memo: kopf.Memo, namespace: str, report_name: str, job: Mapping[str, Any]
) -> None:
    """Apply a finished Job to its report's status exactly once, then let the Job go.

    Order matters for a crash at any point: the Events (named after the Job) go first, then the
    conditional status write that adds the Job's uid to status.countedJobs, then the release.
    Run again, each step is a no-op: the Events are 409s and the uid says it was counted."""
    kube: Kube = memo.kube
    job_meta = job["metadata"]
    job_report_uid = (job_meta.get("labels") or {}).get(contract.REPORT_UID_LABEL)
    async with memo.locks[(namespace, report_name)]:
        for _attempt in range(ATTEMPTS):
            report = await kube.get(report_path(namespace, report_name))
            if report is None or report["metadata"]["uid"] != job_report_uid:
                await release(kube, job)  # the report is gone (or is a new one, same name)
                return
            status = report.get("status") or {}
            if st.already_recorded(status, job_meta["name"], job_meta.get("uid", "")):
                await release(kube, job)
                return
            pods = await kube.list(
                pods_path(namespace), f"{contract.JOB_NAME_LABEL}={job_meta['name']}"
            )
            now = _now()
            outcome = run_outcome.job_outcome(job, pods, now)
            if outcome is not None:
                await write_record(memo, report, job, outcome, pods)  # issue 12
            change = st.apply_outcome(report, outcome, now, _next_fire) if outcome else None
            if outcome is None or change is None:
                return
            events = [
                st.Event(e.type, e.reason, e.message, key=outcome.job_uid) for e in change.events
            ]
            await post(memo, report, events, strict=True)
            if await write_status(kube, report, change.status):
                metrics.observe_run(outcome)
                updated = {**report, "status": {**status, **change.status}}
                if change.phase == models.Phase.DISABLED:
                    await _suspend(memo, updated)
                await release(kube, job)
                break
        else:
            raise kopf.TemporaryError(f"could not record Job {job_meta['name']}: it kept changing")
    if st.pending_run_now(updated) is not None:
        await _guarded(memo, namespace, report_name)  # a waiting run-now may start now


async def _suspend(memo: kopf.Memo, report: Mapping[str, Any]) -> None:
    """The CronJob of a report just Disabled: suspended, whatever else is writing it."""
    for _attempt in range(ATTEMPTS):
        try:
            await apply_children(memo, report, models.Phase.DISABLED.value)
            return
        except _Conflict:
            continue
    raise kopf.TemporaryError("could not suspend the CronJob of a Disabled report")


# ---------------------------------------------------------------------------- stuck runs


def _watch_start(memo: kopf.Memo, job: Mapping[str, Any], report_name: str) -> None:
    """Check, once the bound has passed since the Job was created, that its pod started."""
    meta = job["metadata"]
    uid = meta["uid"]
    if uid in memo.start_checks:
        return
    bound = memo.settings.run_start_timeout
    try:
        created = parse_rfc3339(meta.get("creationTimestamp") or "")
    except ValueError:
        created = _now()
    delay = max(0.0, (created - _now()).total_seconds() + bound)
    task = asyncio.create_task(
        _check_start(memo, meta["namespace"], meta["name"], report_name, delay)
    )
    memo.start_checks[uid] = task
    task.add_done_callback(lambda _: memo.start_checks.pop(uid, None))


async def _check_start(
    memo: kopf.Memo, namespace: str, job_name: str, report_name: str, delay: float
) -> None:
    kube: Kube = memo.kube
    bound = memo.settings.run_start_timeout
    await asyncio.sleep(delay)
    told = None
    while True:
        try:
            job = await kube.get(job_path(namespace, job_name))
            if (
                job is None
                or job["metadata"].get("deletionTimestamp")
                or run_outcome.job_finished(job)
            ):
                return
            pods = await kube.list(pods_path(namespace), f"{contract.JOB_NAME_LABEL}={job_name}")
            reason = run_outcome.not_started_reason(job, pods)
            if reason is None:
                return
            if reason != told:
                await _report_not_started(memo, job, report_name, reason)
                told = reason
        except ApiException as exc:
            log.warning("checking that Job %s started failed: %s", job_name, exc)
        await asyncio.sleep(min(bound, 30))


async def _report_not_started(
    memo: kopf.Memo, job: Mapping[str, Any], report_name: str, reason: str
) -> None:
    kube: Kube = memo.kube
    meta = job["metadata"]
    namespace = meta["namespace"]
    # On the Job, so its failure is counted with this reason even after a restart.
    body = {"metadata": {"annotations": {contract.NOT_STARTED_ANNOTATION: reason}}}
    await kube.merge_patch(job_path(namespace, meta["name"]), body)
    report_uid = (meta.get("labels") or {}).get(contract.REPORT_UID_LABEL)
    async with memo.locks[(namespace, report_name)]:
        for _attempt in range(ATTEMPTS):
            report = await kube.get(report_path(namespace, report_name))
            if report is None or report["metadata"]["uid"] != report_uid:
                return
            change = st.run_not_started(
                report, meta["name"], reason, memo.settings.run_start_timeout, _now()
            )
            if await write_status(kube, report, change.status):
                key = f"{meta['uid']}/{reason}"
                events = [st.Event(e.type, e.reason, e.message, key=key) for e in change.events]
                await post(memo, report, events, strict=False)
                return
