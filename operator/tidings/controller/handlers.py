"""kopf handlers: thin glue between watch events and the pure modules.

- A report (created, changed, or seen at start-up) -> validate, decide (status.reconcile), make
  its ConfigMap and CronJob match, start a run-now Job, write status.
- A CronJob of ours deleted or edited by hand -> the report is reconciled, which puts it back.
- A Job of ours finished -> its ReportDelivery record is written (named from the Job, so at most
  once), then its outcome is applied to the report's status once (its name in status.history is
  the record), with a resourceVersion precondition so two writers cannot both count it.
- Every TIDINGS_DELIVERY_PRUNE_INTERVAL_SECONDS, expired ReportDelivery records are deleted.

Status is written with conditional merge patches to the status subresource, never through
kopf's patch object: Job events and report events both write conditions, and an unconditional
patch from one would silently drop the other's. Handlers return None (kopf would store a return
value in status) and kopf keeps its own bookkeeping under status.kopf, not in annotations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import models, schedule, testsend, validation
from tidings.controller import cronjob as cj
from tidings.controller import metrics, record_store, records
from tidings.controller import status as st
from tidings.controller.kube import (
    Kube,
    configmap_path,
    cronjob_path,
    job_path,
    load_api_client,
    pods_path,
    report_path,
)
from tidings.controller.settings import Settings, load_settings

REPORTS = (models.GROUP, models.VERSION, models.PLURAL)
MANAGED = {cj.MANAGED_BY_LABEL: cj.MANAGED_BY}
API_THREADS = 32  # API calls in flight at once
ATTEMPTS = 8  # conflicting status writes / transient API errors before giving up on an event

log = logging.getLogger("tidings.operator")


def _now() -> datetime:
    return datetime.now(UTC)


def _next_fire(schedule_text: str, time_zone: str, after: datetime) -> datetime | None:
    try:
        return schedule.next_fire_time(schedule_text, time_zone, after)
    except ValueError:  # only reachable if validation and the schedule module ever disagree
        return None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Bookkeeping under status (the CRD preserves unknown status fields), so the user's
    # annotations stay exactly as applied and GitOps tools see no drift.
    settings.persistence.progress_storage = kopf.StatusProgressStorage()
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage()
    # Events are for humans: ours are posted explicitly; kopf's per-handler chatter is not.
    settings.posting.level = logging.WARNING
    # issue 15: Events say `From: tidings` (kopf's default is "kopf"), and which replica.
    settings.posting.reporting_component = "tidings"
    settings.posting.reporting_instance = os.environ.get("POD_ID") or socket.gethostname()
    # After its own status patch kopf waits this long for that version to come back on the watch
    # before acting on an older one. The 5 s default is too short under a burst (1,000 reports
    # applied at once keep the event loop busy for longer): it then re-ran the creation handler
    # for up to three reports in four. Waiting is cheap: any newer event ends it at once.
    settings.persistence.consistency_timeout = 30
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    if not hasattr(memo, "settings"):
        memo.settings = load_settings(os.environ)
    if memo.settings.webhook_port:
        settings.admission.server = kopf.WebhookServer(
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


@kopf.on.cleanup()
async def close_client(memo: kopf.Memo, **_: Any) -> None:
    if getattr(memo, "pruning", None):  # issue 12: delivery record retention
        memo.pruning.cancel()
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
    outcome: st.RunOutcome,
    pods: list[dict[str, Any]],
) -> None:
    """The Job's ReportDelivery, before status counts it: a crash in between leaves a record
    whose second write is a 409. A refusal other than a server error is logged and does not
    stop status from being recorded."""
    record = records.delivery_record(
        report, job, outcome, st.job_result(pods), retention(memo.settings)
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


# --------------------------------------------------------------------------------- reports


@kopf.on.resume(*REPORTS)
@kopf.on.create(*REPORTS)
@kopf.on.update(*REPORTS)
async def reconcile_report(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    meta = body["metadata"]
    await sync_report(memo, meta["namespace"], meta["name"], seen=dict(body))


@kopf.on.event(*REPORTS)
async def report_metrics(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    meta = body["metadata"]
    if event["type"] == "DELETED":
        metrics.forget_report(meta["namespace"], meta["name"])
    else:
        metrics.observe_report(body)


async def sync_report(
    memo: kopf.Memo, namespace: str, name: str, seen: Mapping[str, Any] | None = None
) -> None:
    """Make the report's children and status match its spec and annotations. Idempotent.

    `seen` is the report as the watch delivered it: the first attempt uses it rather than
    reading it again (the status write is conditional on its resourceVersion, so a stale copy
    costs a 409 and a re-read, never a lost update)."""
    kube: Kube = memo.kube
    async with memo.locks[(namespace, name)]:
        for attempt in range(ATTEMPTS):
            if attempt == 0 and seen is not None:
                report = seen
            else:
                report = await kube.get(report_path(namespace, name))
            if report is None or report["metadata"].get("deletionTimestamp"):
                return  # garbage collection removes the children
            problems = [str(p) for p in validation.validate_spec(report.get("spec")).errors]
            decision = st.reconcile(report, problems, _now(), _next_fire)
            events = await apply_children(memo, report, decision.phase)
            if decision.run_now:
                events.append(await start_run_now(kube, report, decision.run_now))
            test_fields, test_events = await start_test_send(kube, report, not problems)
            events.extend(test_events)
            if await write_status(kube, report, {**decision.change.status, **test_fields}):
                post(report, [*events, *decision.change.events])
                return
    raise kopf.TemporaryError("the report kept changing while being reconciled", delay=5)


async def apply_children(memo: kopf.Memo, report: Mapping[str, Any], phase: str) -> list[st.Event]:
    """Create or correct the spec ConfigMap and the CronJob; returns Events worth posting."""
    kube: Kube = memo.kube
    settings: Settings = memo.settings
    namespace = report["metadata"]["namespace"]
    if phase == models.Phase.INVALID:
        # An invalid spec cannot be turned into a pod; just make sure nothing runs.
        name = cj.cronjob_name(report["metadata"]["name"])
        existing = await kube.get(cronjob_path(namespace, name))
        if existing and _owned(existing, report) and not existing["spec"].get("suspend"):
            await kube.merge_patch(cronjob_path(namespace, name), {"spec": {"suspend": True}})
        return []
    events = []
    for path, desired in (
        (configmap_path, cj.spec_configmap(report)),
        (cronjob_path, cj.desired_cronjob(report, settings, st.suspends_cronjob(phase))),
    ):
        event = await _ensure(kube, report, path, desired)
        if event:
            events.append(event)
    return events


def _owned(child: Mapping[str, Any], report: Mapping[str, Any]) -> bool:
    uid = report["metadata"]["uid"]
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in child["metadata"].get("ownerReferences") or ()
    )


async def _ensure(kube: Kube, report: Mapping[str, Any], path_for: Any, desired: dict) -> Any:
    namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    kind = desired["kind"]
    # A report never reconciled has no children yet: create at once, read only on a conflict.
    first = (report.get("status") or {}).get("observedGeneration") is None
    actual = None if first else await kube.get(path_for(namespace, name))
    if actual is None:
        try:
            await kube.create(path_for(namespace), desired)
        except ApiException as exc:
            if exc.status != 409:
                raise
            actual = await kube.get(path_for(namespace, name))
        else:
            if (report.get("status") or {}).get("observedGeneration") is None:
                return None  # first reconcile: nothing to tell
            return st.Event("Normal", f"{kind}Restored", f"Recreated the missing {kind} {name}.")
    if actual is None:
        return None
    if not _owned(actual, report):
        message = f"{kind} {name} already exists and is not owned by this report; rename one"
        post(report, [st.Event("Warning", "NameConflict", message)])
        raise kopf.TemporaryError(message, delay=60)
    if cj.drifted(desired, actual):
        await kube.merge_patch(path_for(namespace, name), desired)
        return st.Event(
            "Warning",
            f"{kind}Reverted",
            f"{kind} {name} was changed outside the ScheduledReport; restored it. "
            "Edit the ScheduledReport instead.",
        )
    return None


async def start_run_now(kube: Kube, report: Mapping[str, Any], value: str) -> st.Event:
    """One Job from the CronJob's template, named from the value so retries cannot double it."""
    namespace = report["metadata"]["namespace"]
    cronjob = await kube.get(cronjob_path(namespace, cj.cronjob_name(report["metadata"]["name"])))
    if cronjob is None:
        raise kopf.TemporaryError("the CronJob is not there yet", delay=2)
    job = cj.run_now_job(cronjob, value, _now())
    try:
        await kube.create(job_path(namespace), job)
    except ApiException as exc:
        if exc.status != 409:
            raise
    return st.Event(
        "Normal",
        "RunNowStarted",
        f"Started Job {job['metadata']['name']} for {cj.RUN_NOW_ANNOTATION}={value}.",
    )


async def start_test_send(
    kube: Kube, report: Mapping[str, Any], valid: bool
) -> tuple[dict[str, Any], list[st.Event]]:
    """tidings.dev/send-test (tidings.testsend): one Job to that address only, once per value.
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
    job = testsend.test_job(cronjob, address, fields["testSendCount"], _now())
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


def post(report: Mapping[str, Any], events: list[st.Event]) -> None:
    for event in events:
        kopf.event(dict(report), type=event.type, reason=event.reason, message=event.message)


# ------------------------------------------------------------------------------- children


@kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED)
async def cronjob_changed(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any):
    """A deleted or hand-edited CronJob is put back by reconciling its report."""
    meta = body["metadata"]
    report_name = (meta.get("annotations") or {}).get(cj.REPORT_NAME_ANNOTATION)
    if not report_name:
        return
    if event["type"] == "DELETED" or event["type"] == "MODIFIED":
        await sync_report(memo, meta["namespace"], report_name)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_changed(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any):
    meta = body["metadata"]
    report_name = (meta.get("annotations") or {}).get(cj.REPORT_NAME_ANNOTATION)
    if not report_name or event["type"] == "DELETED":
        return
    namespace = meta["namespace"]
    if st.job_finished(body) is None:
        if event["type"] == "ADDED":
            # A new run means the previous fire time passed: nextSendAt moves on.
            await sync_report(memo, namespace, report_name)
        return
    for attempt in range(ATTEMPTS):
        try:
            await record_outcome(memo, namespace, report_name, dict(body))
            return
        except ApiException as exc:
            if exc.status < 500 and exc.status != 429:
                raise
            log.warning("recording Job %s failed (%s); retrying", meta["name"], exc.reason)
            await asyncio.sleep(min(2**attempt, 30))
    log.error("gave up recording Job %s; it is retried when the operator restarts", meta["name"])


async def record_outcome(
    memo: kopf.Memo, namespace: str, report_name: str, job: Mapping[str, Any]
) -> None:
    """Apply a finished Job to its report's status, exactly once."""
    kube: Kube = memo.kube
    job_name = job["metadata"]["name"]
    job_report_uid = (job["metadata"].get("labels") or {}).get(cj.REPORT_UID_LABEL)
    async with memo.locks[(namespace, report_name)]:
        for _attempt in range(ATTEMPTS):
            report = await kube.get(report_path(namespace, report_name))
            if report is None or report["metadata"]["uid"] != job_report_uid:
                return  # the report is gone (or is a new one with the same name)
            if st.already_recorded(report.get("status"), job_name):
                return
            pods = await kube.list(pods_path(namespace), f"{cj.JOB_NAME_LABEL}={job_name}")
            now = _now()
            outcome = st.job_outcome(job, pods, now)
            if outcome is not None:
                await write_record(memo, report, job, outcome, pods)  # issue 12
            change = st.apply_outcome(report, outcome, now, _next_fire) if outcome else None
            if change is None:
                return
            if await write_status(kube, report, change.status):
                metrics.observe_run(outcome)
                post(report, change.events)
                if change.phase == models.Phase.DISABLED:
                    updated = {
                        **report,
                        "status": {**(report.get("status") or {}), **change.status},
                    }
                    await apply_children(memo, updated, models.Phase.DISABLED.value)
                return
    raise kopf.TemporaryError(f"could not record Job {job_name}: the report kept changing")
