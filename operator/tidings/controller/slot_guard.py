"""One run per local wall-clock slot on the real CronJob controller (tidings.slots decides).

- A fall-back's second fire of a slot: the mutating webhook on Job CREATE (Jobs of ours whose
  controlling owner is a CronJob) makes it `suspend: true` with DUPLICATE_ANNOTATION, so the Job
  controller never starts its pod. Its watch event then brings it to `stop_duplicate`: a Skipped
  history entry and a DuplicateRunStopped Event on the report, then the Job is deleted (the
  outcome handler lets it go as already counted). The webhook fails open: with the operator
  down the duplicate runs, as it would without Tidings (docs/operator.md).
- A spring-forward's skipped slot: the CronJob controller never fires it, so `gap_runs_forever`
  starts it at the first instant after the gap, as a Job named like the controller names a fire
  time's Job (`<cronjob>-<minutes>`) and owned by the report (as run-now Jobs are), with
  TIDINGS_SCHEDULED_TIME set. Started late (the operator was down) it still starts within
  TIDINGS_STARTING_DEADLINE_SECONDS, the CronJob controller's own catch-up rule.

`release_blocker` is the one place that says why a new Job of ours must not start now; a cap on
concurrent runs can add its reason there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import contract, slots
from tidings.controller import cronjob, metrics, run_ownership, status
from tidings.controller.clock import utc_now
from tidings.controller.kube import cronjob_path, job_path, report_path
from tidings.controller.retry import retry_on_conflict
from tidings.controller.run_checks import foreign_reason
from tidings.controller.state import OperatorState
from tidings.controller.writes import patch_status, post_events
from tidings.schedule import parse_rfc3339, rfc3339, zone

log = logging.getLogger("tidings.operator")

MUTATE_WEBHOOK_ID = f"slots.jobs.{contract.MANAGED_BY}"
DUPLICATE_ANNOTATION = contract.DUPLICATE_OF_ANNOTATION  # the slot's first occurrence (RFC 3339)
GAP_ANNOTATION = "tidings.dev/gap-slot"  # on a run the operator started after a DST gap


@dataclass(frozen=True)
class CronJobSlots:
    report: str
    schedule: str
    time_zone: str
    suspended: bool
    created: datetime | None  # a gap before the CronJob existed is not its to run


@dataclass
class SlotState:
    """The schedule and zone of every CronJob of ours, kept from the CronJob watch."""

    cronjobs: dict[tuple[str, str], CronJobSlots] = field(default_factory=dict)
    # (CronJob key, gap instant) whose run was started or found started by this process.
    gap_runs: set[tuple[tuple[str, str], datetime]] = field(default_factory=set)


def cronjob_seen(slot_state: SlotState, event_type: str | None, body: Mapping[str, Any]) -> None:
    meta, spec = body["metadata"], body.get("spec") or {}
    key = (meta["namespace"], meta["name"])
    report = (meta.get("annotations") or {}).get(contract.REPORT_NAME_ANNOTATION)
    if event_type == "DELETED" or not report:
        slot_state.cronjobs.pop(key, None)
        return
    slot_state.cronjobs[key] = CronJobSlots(
        report,
        spec.get("schedule") or "",
        spec.get("timeZone") or "UTC",
        bool(spec.get("suspend")),
        _created(meta.get("creationTimestamp")),
    )


def _created(stamp: str | None) -> datetime | None:
    try:
        return parse_rfc3339(stamp) if stamp else None
    except ValueError:
        return None


# ------------------------------------------------------------------------ the duplicate fire


def scheduled_time(job: Mapping[str, Any]) -> datetime | None:
    """The fire time the CronJob controller stamped on a Job it made, or None."""
    stamp = ((job.get("metadata") or {}).get("annotations") or {}).get(
        contract.SCHEDULED_TIMESTAMP_ANNOTATION
    )
    try:
        return parse_rfc3339(stamp) if stamp else None
    except ValueError:
        return None


def _owning_cronjob(job: Mapping[str, Any]) -> str | None:
    refs = (job.get("metadata") or {}).get("ownerReferences") or ()
    owner = next((r for r in refs if r.get("controller")), {})
    return owner.get("name") if owner.get("kind") == "CronJob" else None


def release_blocker(job: Mapping[str, Any], time_zone: str) -> str | None:
    """Why a new Job of a report must not start its pod, or None. Today one reason: it is a
    second fire of a wall-clock slot (the annotation value to mark it with)."""
    scheduled = scheduled_time(job)
    if scheduled is None or _owning_cronjob(job) is None:
        return None
    try:
        first = slots.duplicate_of(scheduled, time_zone)
    except ValueError:
        return None
    return rfc3339(first) if first else None


async def mark_duplicate(
    body: Mapping[str, Any], patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    """The mutating webhook: a duplicate slot's Job is created suspended, never run."""
    meta = body.get("metadata") or {}
    owner = _owning_cronjob(body)
    if owner is None or scheduled_time(body) is None:
        return
    slot_state: SlotState | None = getattr(memo, "slots", None)
    known = slot_state.cronjobs.get((meta.get("namespace", ""), owner)) if slot_state else None
    time_zone = known.time_zone if known else None
    if time_zone is None:
        found = await memo.kube.get(cronjob_path(meta.get("namespace", ""), owner))
        time_zone = ((found or {}).get("spec") or {}).get("timeZone") or "UTC"
    first = release_blocker(body, time_zone)
    if first is not None:
        patch["spec"] = {"suspend": True}
        patch["metadata"] = {"annotations": {DUPLICATE_ANNOTATION: first}}


async def job_seen(state: OperatorState, event_type: str | None, job: Mapping[str, Any]) -> None:
    """A suspended duplicate of ours: recorded as stopped, then deleted."""
    meta = job["metadata"]
    annotations = meta.get("annotations") or {}
    if (
        event_type == "DELETED"
        or meta.get("deletionTimestamp")
        or DUPLICATE_ANNOTATION not in annotations
        or not (job.get("spec") or {}).get("suspend")
        or contract.COUNTED_ANNOTATION in annotations
    ):
        return
    report_name = annotations.get(contract.REPORT_NAME_ANNOTATION)
    if report_name:
        async with state.locks[(meta["namespace"], report_name)]:
            await retry_on_conflict(
                lambda _: stop_duplicate(state, report_name, job), f"stop Job {meta['name']}"
            )


async def stop_duplicate(state: OperatorState, report_name: str, job: Mapping[str, Any]) -> None:
    meta = job["metadata"]
    namespace = meta["namespace"]
    report = await state.kube.get(report_path(namespace, report_name))
    if report is None:
        return
    current = report.get("status") or {}
    if not status.already_recorded(current, meta["name"], meta.get("uid", "")):
        if await foreign_reason(state, job, report):
            return  # not ours to speak for: the outcome handler refuses it
        # Decided again from the report's own zone: the annotation is anyone's to write.
        time_zone = (report.get("spec") or {}).get("timeZone") or "UTC"
        scheduled = scheduled_time(job)
        first = release_blocker(job, time_zone)
        if scheduled is None or first is None:
            return
        now = utc_now()
        change = status.duplicate_stopped(
            report, meta["name"], meta.get("uid", ""), scheduled, parse_rfc3339(first), now
        )
        await post_events(state.kube, state.instance, report, change.events, strict=True)
        await patch_status(state.kube, report, change.status)
        log.info("stopped Job %s/%s: a second fire of its slot", namespace, meta["name"])
    await state.kube.delete(job_path(namespace, meta["name"]))


# ---------------------------------------------------------------------------- the skipped slot


async def gap_runs_forever(state: OperatorState, slot_state: SlotState) -> None:
    """Every TIDINGS_SLOT_CHECK_SECONDS, start the runs of slots a spring-forward skipped in the
    last TIDINGS_STARTING_DEADLINE_SECONDS, like the CronJob controller's catch-up. The whole
    window every time: a CronJob the watch brings only after start-up is caught up too."""
    deadline = timedelta(seconds=state.settings.starting_deadline_seconds)
    while True:
        now = utc_now()
        try:
            if metrics.LEADERSHIP.leading:  # a standby replica leaves it to the leader
                await start_gap_runs(state, slot_state, now - deadline, now, deadline)
        except (ApiException, kopf.TemporaryError) as exc:
            log.warning("could not start the runs of skipped DST slots (retrying): %s", exc)
        await asyncio.sleep(state.settings.slot_check_seconds)


async def start_gap_runs(
    state: OperatorState,
    slot_state: SlotState,
    after: datetime,
    now: datetime,
    deadline: timedelta,
) -> None:
    by_zone: dict[str, list[tuple[tuple[str, str], CronJobSlots]]] = {}
    for key, entry in list(slot_state.cronjobs.items()):
        if not entry.suspended:
            by_zone.setdefault(entry.time_zone, []).append((key, entry))
    for time_zone, entries in by_zone.items():
        try:
            found = slots.gaps(time_zone, after, now)
        except ValueError:
            continue
        for gap in found:
            if now - gap.instant > deadline:
                continue
            for key, entry in entries:
                if (key, gap.instant) in slot_state.gap_runs:
                    continue
                existed = entry.created is None or entry.created <= gap.instant
                if existed and slots.gap_run_due(entry.schedule, gap):
                    await start_gap_run(state, key[0], key[1], entry, gap)
                slot_state.gap_runs.add((key, gap.instant))
    # Forget what is past the look-back: it is never due again.
    slot_state.gap_runs = {k for k in slot_state.gap_runs if now - k[1] <= deadline}


async def start_gap_run(
    state: OperatorState, namespace: str, cronjob_name: str, entry: CronJobSlots, gap: slots.Gap
) -> None:
    """The run of the slots a gap skipped, once: named from its instant, so a second create is
    a 409; GAP_ANNOTATION lists those slots (local wall times)."""
    report = await state.kube.get(report_path(namespace, entry.report))
    live = await state.kube.get(cronjob_path(namespace, cronjob_name))
    if report is None or live is None or (live.get("spec") or {}).get("suspend"):
        return
    if run_ownership.controller_uid(live) != report["metadata"]["uid"]:
        return  # not the CronJob the operator made for this report
    name = slots.scheduled_name(cronjob_name, gap.instant)
    if status.already_recorded(report.get("status"), name):
        return  # ran and was counted before a restart
    stamp = gap.instant.astimezone(zone(live["spec"].get("timeZone") or "UTC"))
    job = cronjob.job_from_template(
        live,
        name,
        {
            contract.SCHEDULED_TIMESTAMP_ANNOTATION: stamp.isoformat(),
            GAP_ANNOTATION: ",".join(
                wall.isoformat(timespec="minutes") for wall in slots.gap_slots(entry.schedule, gap)
            ),
        },
        {contract.SCHEDULED_TIME_ENV: rfc3339(gap.instant)},
    )
    cronjob.owned_by_report(job, report)
    try:
        await state.kube.create(job_path(namespace), job)
    except ApiException as exc:
        if exc.status == 409:
            return  # started before (this replica, or one before a restart)
        raise
    log.info("started Job %s/%s for a slot the DST change skipped", namespace, name)


# ------------------------------------------------------------------------------ registration


def webhook_configuration(
    name: str, client_config: Mapping[str, Any], namespace: str | None = None
) -> dict[str, Any]:
    """The MutatingWebhookConfiguration sending the creation of every Job of ours to
    `mark_duplicate`. `client_config` as for admission.webhook_configuration (the handler's path
    is appended). Failure policy Ignore: a run never waits for the operator; with the operator
    down a duplicate fire runs (docs/operator.md)."""
    config = dict(client_config)
    if "url" in config:
        config["url"] = f"{config['url'].rstrip('/')}/{MUTATE_WEBHOOK_ID}"
    if "service" in config:
        config["service"] = {**config["service"], "path": f"/{MUTATE_WEBHOOK_ID}"}
    webhook: dict[str, Any] = {
        "name": MUTATE_WEBHOOK_ID,
        "clientConfig": config,
        "rules": [
            {
                "apiGroups": ["batch"],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["jobs"],
                "scope": "Namespaced",
            }
        ],
        "objectSelector": {
            "matchLabels": {contract.MANAGED_BY_LABEL: contract.MANAGED_BY},
            "matchExpressions": [{"key": contract.REPORT_UID_LABEL, "operator": "Exists"}],
        },
        # Only what the CronJob controller creates: it stamps the fire time on each Job.
        "matchConditions": [
            {
                "name": "cronjob-fire",
                "expression": "has(object.metadata.annotations) && "
                f"'{contract.SCHEDULED_TIMESTAMP_ANNOTATION}' in object.metadata.annotations",
            }
        ],
        "failurePolicy": "Ignore",
        "reinvocationPolicy": "Never",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5,
    }
    if namespace is not None:
        webhook["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


def register(registry: kopf.OperatorRegistry | None = None) -> None:
    """Add the mutating handler to a registry; only with a webhook server (kopf refuses to
    start with admission handlers and none)."""
    kopf.on.mutate(
        "batch",
        "v1",
        "jobs",
        id=MUTATE_WEBHOOK_ID,
        operations=["CREATE"],
        ignore_failures=True,
        registry=registry,
    )(mark_duplicate)
