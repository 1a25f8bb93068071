"""kopf registrations only: each watch event goes to the module that does the work.

- A report event -> reconcile.py: validate, decide, make its CronJob match, write status.
- A CronJob of ours deleted, or its spec changed by someone else -> cronjob_index.py, which
  puts it back by reconciling its report (a Warning: a hand edit).
- A Job of ours -> slot_guard.py first (a DST duplicate fire is stopped), then
  job_outcomes.py: a finished one is counted once, a running one held and
  watched for a pod that never starts (run_start.py).
- A RecipientGroup event -> recipient_groups_store.py: the recipients ConfigMap of each report
  naming it (and every report event, before its CronJob is made to match).
- A namespace's default time zone changed -> namespace_zone.py: its reports reconciled again.
- A Job of ours, and every few seconds -> run_release.py: runs held by the concurrent-run cap
  are released in fire order (capacity.py decides).
- A namespace being deleted -> namespace_end.py: its held Jobs are let go (no record or Event
  can be written there, and kopf stops serving it).
- Every TIDINGS_DELIVERY_PRUNE_INTERVAL_SECONDS, expired ReportDelivery records are deleted
  (record_store.py).

Only event handlers are registered, and they store nothing on the objects: no kopf progress or
diff base is kept on a report.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from tidings import contract, models
from tidings.controller import (
    capacity,
    cronjob_index,
    job_outcomes,
    metrics,
    namespace_end,
    namespace_zone,
    owner_notices_send,
    recipient_groups_store,
    record_store,
    run_release,
    slot_guard,
)
from tidings.controller.kube import Kube, load_api_client
from tidings.controller.reconcile import sync_or_retry_later
from tidings.controller.settings_load import load_settings
from tidings.controller.state import OperatorState, state_of

REPORTS = (models.GROUP, models.VERSION, models.PLURAL)
MANAGED = {contract.MANAGED_BY_LABEL: contract.MANAGED_BY}
API_THREADS = 32  # API calls in flight at once


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Events are for humans: ours are posted explicitly; kopf's per-handler chatter is not.
    settings.posting.level = logging.WARNING
    # Events say `From: tidings` (kopf's default is "kopf"), and which replica.
    instance = os.environ.get("POD_ID") or socket.gethostname()
    settings.posting.reporting_component = "tidings"
    settings.posting.reporting_instance = instance
    # The apiserver filters CronJobs and Jobs by label: kopf's `labels=` filters client-side, so
    # every CronJob and Job in the cluster would get a worker and a memory.
    for plural in ("cronjobs", "jobs"):
        settings.watching.label_selectors["batch", "v1", plural] = contract.MANAGED_SELECTOR
    # kopf lists what exists before it watches; unchunked, a restart among 10,000 reports and
    # their CronJobs held every object at once, well past the chart's 512Mi memory limit.
    settings.watching.chunk_size = cronjob_index.LIST_CHUNK
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    if not hasattr(memo, "settings"):  # `tidings operator` passes them; a bare `kopf run` not
        memo.settings = load_settings(os.environ)
    if memo.settings.webhook_port:
        from tidings.controller.admission import LargeRequestWebhookServer

        slot_guard.register()  # the DST duplicate-fire webhook, on the same server

        settings.admission.server = LargeRequestWebhookServer(
            addr="0.0.0.0",
            port=memo.settings.webhook_port,
            certfile=memo.settings.webhook_cert_file or None,
            pkeyfile=memo.settings.webhook_key_file or None,
        )
    # Blocking work kept off the loop (aiohttp's DNS lookups among it) runs in this executor.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(API_THREADS))
    # The admission webhook reads memo.kube and memo.settings; everything else memo.state.
    memo.kube = Kube(load_api_client(pool_size=API_THREADS), shard=memo.settings.shard)
    state = memo.state = OperatorState(settings=memo.settings, kube=memo.kube, instance=instance)
    state.spawn(record_store.prune_forever(state.kube, state.settings))
    memo.slots = slot_guard.SlotState()  # filled by the CronJob watch; the webhook reads it
    state.spawn(slot_guard.gap_runs_forever(state, memo.slots))
    # kopf starts the watches after this handler: the map is complete before the first event.
    await namespace_zone.load(state)  # as the zones: a report's first reconcile has its own
    state.cronjobs = await cronjob_index.list_cronjobs(state.kube, state.settings.namespaces)
    releaser = memo.releaser = run_release.Releaser(capacity.caps_of(state.settings))
    if releaser.caps.on:  # the runs already going count before the watch brings them
        await releaser.resync(state)
        state.spawn(releaser.forever(state))

    def recheck() -> None:
        state.spawn(cronjob_index.recheck_cronjobs(state, dict(state.cronjobs)))

    recheck()
    # A paused peering replica sees no deletions; kopf's lists on resuming bring what exists,
    # and the same re-check finds what its map still holds but is gone.
    metrics.LEADERSHIP.leading = settings.peering.standalone  # kopf starts a peer paused
    metrics.LEADERSHIP.add_resume_hook(recheck)
    if releaser.caps.on:  # what a paused replica knows of the runs is stale
        metrics.LEADERSHIP.add_resume_hook(lambda: state.spawn(releaser.resync(state)))
    metrics.LEADERSHIP.install()


@kopf.on.cleanup()
async def close_client(memo: kopf.Memo, **_: Any) -> None:
    state = state_of(memo)
    for task in list(state.tasks):  # the pruning loop and CronJob re-checks
        task.cancel()
    await state.kube.close()


@kopf.on.probe(id="reports")
async def reports_seen(**_: Any) -> int:
    return metrics.reports_seen()


@kopf.on.event(*REPORTS)
async def report_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    state = state_of(memo)
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if event["type"] == "DELETED":
        metrics.forget_report(namespace, name)
        return
    metrics.observe_report(body)
    await recipient_groups_store.sync_report_logged(state.kube, body)  # before its CronJob can fire
    owner_notices_send.resume(state, body)  # notices a stopped operator still owed
    has_cronjob = (namespace, name) in state.cronjobs
    await sync_or_retry_later(
        state, namespace, name, seen=dict(body), check_children=not has_cronjob
    )


@kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED)
async def cronjob_event(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    slot_guard.cronjob_seen(memo.slots, event["type"], body)
    await cronjob_index.cronjob_changed(state_of(memo), event["type"], body)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_event(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await slot_guard.job_seen(state_of(memo), event["type"], dict(body))  # a duplicate fire
    await job_outcomes.job_changed(state_of(memo), event["type"], dict(body))


@kopf.on.event(models.GROUP, models.VERSION, models.GROUP_PLURAL)
async def recipient_group_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await recipient_groups_store.group_changed(state_of(memo).kube, dict(body))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="release")
async def job_release(
    event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:  # after job_event, which decides whether the Job is ours
    await run_release.job_changed(memo.releaser, state_of(memo), event["type"], dict(body))


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await namespace_zone.namespace_changed(state_of(memo), dict(body))
    await namespace_end.namespace_changed(state_of(memo), dict(body))
