"""One run per local wall-clock slot, on the real CronJob controller, across both DST changes.

Each test compiles its own zone (zic) whose change falls a minute or so after it starts, shifting
the clocks by minutes (3 forward, 2 back: each test waits under 5). kube-apiserver and
kube-controller-manager read it through ZONEINFO (the session control plane's zoneinfo
directory), the operator through PYTHONTZPATH. The mutating webhook the operator serves
(tidings.controller.slot_guard) is registered for the test's namespace.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    finished,
    history,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest
from tests.support.zones import ceil_minute, compile_zone, python_tzpath

from tidings import contract
from tidings.controller import slot_guard
from tidings.schedule import rfc3339
from tidings_dev.cluster import ControlPlane
from tidings_dev.procs import free_port

pytestmark = pytest.mark.cluster

SHIFT = timedelta(minutes=3)  # clocks go forward 3 minutes
BACK = timedelta(minutes=2)  # and back 2: the second fire comes 2 minutes after the first
SETUP = timedelta(seconds=25)  # report, CronJob, webhook in effect: before the first fire
HOLD = {"failurePolicy": {"disableAfter": 5, "retries": 0, "timeoutSeconds": 600}}


@pytest.fixture
def zone_name() -> str:
    return f"Tidings/Dst{uuid.uuid4().hex[:8]}"


@pytest.fixture
def webhook_port() -> int:
    return free_port()


@pytest.fixture
def operator_env(control_plane: ControlPlane, tmp_path: Path, webhook_port: int) -> dict:
    assert control_plane.zoneinfo_dir is not None
    cert, key = control_plane.ca.issue(
        tmp_path, "webhook", "127.0.0.1", ip_addresses=("127.0.0.1",)
    )
    return {
        "TIDINGS_WEBHOOK_PORT": str(webhook_port),
        "TIDINGS_WEBHOOK_CERT_FILE": str(cert),
        "TIDINGS_WEBHOOK_KEY_FILE": str(key),
        "TIDINGS_SLOT_CHECK_SECONDS": "2",
        "PYTHONTZPATH": python_tzpath(control_plane.zoneinfo_dir),
    }


@pytest.fixture
def slot_webhook(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str, webhook_port: int
) -> Iterator[None]:
    ca = base64.b64encode(control_plane.ca.cert_path.read_bytes()).decode()
    config = slot_guard.webhook_configuration(
        f"tidings-slots-{namespace}",
        {"url": f"https://127.0.0.1:{webhook_port}/", "caBundle": ca},
        namespace,
    )
    api = client.AdmissionregistrationV1Api(kube)
    api.create_mutating_webhook_configuration(config)
    yield
    api.delete_mutating_webhook_configuration(config["metadata"]["name"])


class JobsSeen:
    """Every Job of the namespace as the watch first delivered it: what it was created as."""

    def __init__(self, kube: client.ApiClient, namespace: str) -> None:
        self.first: dict[str, Any] = {}
        self.error: Exception | None = None
        self._watch = watch.Watch()
        batch = client.BatchV1Api(kube)

        def run() -> None:
            try:
                for event in self._watch.stream(batch.list_namespaced_job, namespace):
                    job = event["object"]
                    self.first.setdefault(job.metadata.name, job)
            except Exception as exc:  # the stream ends when the control plane stops
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._watch.stop()


def _webhook_suspends(cluster: Cluster, cronjob: dict, stamp: str) -> bool:
    """A dry-run create of a Job as the CronJob controller would make it at `stamp`."""
    meta = cronjob["metadata"]
    body = {
        "metadata": {
            "name": f"probe-{uuid.uuid4().hex[:6]}",
            "labels": cronjob["spec"]["jobTemplate"]["metadata"]["labels"],
            "annotations": {contract.SCHEDULED_TIMESTAMP_ANNOTATION: stamp},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "tidings-renderer:test"}],
                }
            }
        },
    }
    created = cluster.batch.create_namespaced_job(cluster.ns, body, dry_run="All")
    return bool(created.spec.suspend)


def _pod_created_events(cluster: Cluster, job: str) -> list:
    """The Job controller's `Created pod` Events for a Job (they outlive the Job)."""
    return cluster.events("SuccessfulCreate", job)


def test_repeated_hour_runs_its_slot_once_and_stops_the_second_fire(
    control_plane: ControlPlane,
    zone_name: str,
    run_operator: OperatorProcess,
    slot_webhook: None,
    cluster: Cluster,
    kubelet: StandInKubelet,
    kube: client.ApiClient,
) -> None:
    assert control_plane.zoneinfo_dir is not None
    first = ceil_minute(datetime.now(UTC) + SETUP)
    back = first + BACK  # clocks go back 2 minutes: wall [back, back+2) happens twice
    compile_zone(control_plane.zoneinfo_dir, zone_name, [(2, back), (0, None)])
    slot = back  # the wall time (offset 0 after the change) first seen at `first`
    cluster.create_report(
        manifest("fall", schedule=f"{slot.minute} {slot.hour} * * *", timeZone=zone_name, **HOLD)
    )
    status = cluster.wait_status("fall", "Active", lambda s: s.get("phase") == "Active")
    assert status["nextSendAt"] == rfc3339(first)  # NEXT: the first occurrence
    cronjob = wait_for("the CronJob", lambda: cluster.cronjob("fall"))
    second_stamp = back.isoformat().replace("+00:00", "Z")
    wait_for(
        "the slot webhook to take effect",
        lambda: _webhook_suspends(cluster, cronjob, second_stamp),
        timeout=60,
    )
    first_stamp = first.astimezone(timezone(BACK)).isoformat()  # ...T02:34:00+00:02
    assert not _webhook_suspends(cluster, cronjob, first_stamp), "the first pass runs"
    seen = JobsSeen(kube, cluster.ns)
    try:
        first_job = f"fall-{int(first.timestamp()) // 60}"
        wait_for(
            f"the controller's Job {first_job}",
            lambda: cluster.job(first_job),
            timeout=(first - datetime.now(UTC)).total_seconds() + 60,
        )
        kubelet.run(first_job, 0, result_line(True, scheduledTime=rfc3339(first)), attempt=1)
        finished(cluster, first_job)
        status = cluster.wait_status("fall", "first run", lambda s: first_job in history(s))
        assert history(status)[first_job]["outcome"] == "Delivered"
        # NEXT skips the second pass: the slot's next run is tomorrow's.
        assert status["nextSendAt"] == rfc3339(back + timedelta(days=1))

        duplicate = f"fall-{int(back.timestamp()) // 60}"
        status = wait_for(
            "the duplicate recorded",
            lambda: (s := cluster.status("fall")) and duplicate in history(s) and s,
            timeout=max(60.0, (back - datetime.now(UTC)).total_seconds() + 60),
        )
        wait_for("the duplicate Job gone", lambda: cluster.job(duplicate) is None)
    finally:
        seen.stop()
    entry = history(status)[duplicate]
    assert entry["outcome"] == "Skipped"
    assert rfc3339(first) in entry["error"] and "before its pod started" in entry["error"]
    assert entry["scheduledTime"] == rfc3339(back)
    # Created suspended by the webhook (as the watch first saw it), so no pod ever started.
    created = seen.first[duplicate]
    assert created.spec.suspend is True
    assert created.metadata.annotations[slot_guard.DUPLICATE_ANNOTATION] == rfc3339(first)
    assert created.metadata.annotations[contract.SCHEDULED_TIMESTAMP_ANNOTATION] == second_stamp
    assert _pod_created_events(cluster, first_job), "the first run's pod was created"
    assert not _pod_created_events(cluster, duplicate)
    stopped = cluster.events("DuplicateRunStopped", "fall")
    assert len(stopped) == 1 and duplicate in stopped[0].message
    # One run delivered for the slot, nothing counted against the report.
    assert [h["outcome"] for h in status["history"]] == ["Skipped", "Delivered"]
    assert status.get("consecutiveFailures", 0) == 0
    assert status["nextSendAt"] == rfc3339(back + timedelta(days=1))


def test_skipped_hour_runs_its_slot_at_the_first_instant_after_the_gap(
    control_plane: ControlPlane,
    zone_name: str,
    run_operator: OperatorProcess,
    cluster: Cluster,
    kubelet: StandInKubelet,
) -> None:
    assert control_plane.zoneinfo_dir is not None
    change = ceil_minute(datetime.now(UTC) + SETUP)  # wall jumps from `change` to change+3
    compile_zone(control_plane.zoneinfo_dir, zone_name, [(0, change), (3, None)])
    slot = change + timedelta(minutes=1)  # a wall time that never happens that day
    cluster.create_report(
        manifest("spring", schedule=f"{slot.minute} {slot.hour} * * *", timeZone=zone_name, **HOLD)
    )
    status = cluster.wait_status("spring", "Active", lambda s: s.get("phase") == "Active")
    assert status["nextSendAt"] == rfc3339(change)  # NEXT: the first instant after the gap

    job = f"spring-{int(change.timestamp()) // 60}"
    found = wait_for(
        f"the operator's run {job}",
        lambda: cluster.job(job),
        timeout=(change - datetime.now(UTC)).total_seconds() + 30,
    )
    started = datetime.now(UTC)
    assert started - change < timedelta(seconds=20)
    meta = found["metadata"]
    assert meta["ownerReferences"][0]["kind"] == "ScheduledReport"  # the operator's own run
    assert meta["annotations"][slot_guard.GAP_ANNOTATION] == slot.strftime("%Y-%m-%dT%H:%M")
    env = {
        e["name"]: e.get("value") for e in found["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env[contract.SCHEDULED_TIME_ENV] == rfc3339(change)
    kubelet.run(job, 0, result_line(True, scheduledTime=rfc3339(change)))
    status = cluster.wait_status("spring", "the run counted", lambda s: job in history(s))
    assert history(status)[job]["outcome"] == "Delivered"
    tomorrow = slot + timedelta(days=1) - SHIFT  # the wall time, at +0:03, tomorrow
    assert status["nextSendAt"] == rfc3339(tomorrow)
    # The CronJob controller fired nothing for the skipped slot, and nothing started twice.
    time.sleep(max(0.0, (change + timedelta(seconds=40) - datetime.now(UTC)).total_seconds()))
    assert [j["metadata"]["name"] for j in cluster.jobs()] == [job]
    assert len(cluster.status("spring")["history"]) == 1


def test_a_skipped_slot_missed_while_the_operator_is_down_runs_when_it_is_back(
    control_plane: ControlPlane,
    zone_name: str,
    run_operator: OperatorProcess,
    cluster: Cluster,
    kubelet: StandInKubelet,
) -> None:
    """Within startingDeadlineSeconds of the gap's end, as the controller catches up its own."""
    assert control_plane.zoneinfo_dir is not None
    change = ceil_minute(datetime.now(UTC) + SETUP)
    compile_zone(control_plane.zoneinfo_dir, zone_name, [(0, change), (3, None)])
    slot = change + timedelta(minutes=1)
    cluster.create_report(
        manifest("late", schedule=f"{slot.minute} {slot.hour} * * *", timeZone=zone_name, **HOLD)
    )
    status = cluster.wait_status("late", "Active", lambda s: s.get("phase") == "Active")
    assert status["nextSendAt"] == rfc3339(change)
    wait_for("the CronJob", lambda: cluster.cronjob("late"))
    run_operator.stop()
    time.sleep(max(0.0, (change + timedelta(seconds=20) - datetime.now(UTC)).total_seconds()))
    assert cluster.jobs() == []  # the CronJob controller does not fire a slot in the gap

    run_operator.start()
    job = f"late-{int(change.timestamp()) // 60}"
    found = wait_for(f"the operator's late run {job}", lambda: cluster.job(job), timeout=60)
    assert found["metadata"]["ownerReferences"][0]["kind"] == "ScheduledReport"
    kubelet.run(job, 0, result_line(True, scheduledTime=rfc3339(change)))
    status = cluster.wait_status("late", "the run counted", lambda s: job in history(s))
    assert [h["jobName"] for h in status["history"]] == [job]
    # Started again (its Job is still there, counted): no second run.
    run_operator.stop()
    run_operator.start()
    time.sleep(5)  # several slot checks (TIDINGS_SLOT_CHECK_SECONDS=2)
    assert [j["metadata"]["name"] for j in cluster.jobs()] == [job]
