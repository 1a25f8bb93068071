"""`kubectl tidings run NAME --at TIME` and `kubectl tidings resend DELIVERY` against the real
control plane, end to end: the operator starts the Job, the real renderer runs it (the stand-in
kubelet with a pod-bound relay token), its mail goes through `tidings relay` to a real SMTP
server on loopback that requires the platform login, and the ReportDelivery says what ran.
A 70-character report name throughout (longer than a label value).

Shown: run --at mails the window of a run fired at TIME (the rows of that window, not of now),
its record's trigger is Rerun with the time asked; a future or malformed time is refused by
the plugin (exit 2, naming --at) and by the operator (an Event naming the annotation, handled
once). resend mails the recipients a run did not reach (refused upstream with 550) and nobody
else; its record's trigger is Resend naming the record; the relay's dedupe does not block the
refused address, and a second resend of the same record is not mailed again."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.support.operator_harness import Cluster, OperatorProcess, wait_for
from tests.support.relay_harness import (
    PlatformRelay,
    RelayPodRunner,
    RelayProcess,
    relay_env,
    serve_platform,
)
from tests.support.report_bodies import manifest

from tidings import contract, kubectl_plugin, models
from tidings.controller import cronjob as cj
from tidings.controller import reruns
from tidings.schedule import rfc3339
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster

LONG_NAME = "quarterly-compliance-readiness-report-for-the-payments-platform-team-x"
TO, CC = "ciso@example.com", "audit@example.com"


@pytest.fixture
def platform() -> Iterator[tuple[PlatformRelay, int]]:
    yield from serve_platform(PlatformRelay())


@pytest.fixture
def relay(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    platform: tuple[PlatformRelay, int],
    tmp_path: Path,
) -> Iterator[RelayProcess]:
    core = client.CoreV1Api(kube)
    home = f"tidings-system-{uuid.uuid4().hex[:6]}"  # the relay's dedupe records live here
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    process = RelayProcess(control_plane.kubeconfig, home, platform[1], tmp_path / "relay.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        core.delete_namespace(home)


@pytest.fixture
def operator_env(relay: RelayProcess) -> dict[str, str]:
    return relay_env(relay)


def plugin(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    code = kubectl_plugin.main([*argv, "--kubeconfig", str(control_plane.kubeconfig)])
    out, err = capsys.readouterr()
    return code, out, err


def report(rows_at: list[datetime]) -> dict[str, Any]:
    rows = [
        {"id": i, "title": f"Change {i}", "status": "completed", "completed_at": rfc3339(when)}
        for i, when in enumerate(rows_at, start=1)
    ]
    return manifest(
        LONG_NAME,
        title="Compliance readiness",
        source={"inline": {"rows": rows}},
        filters={"window": {"last": "7d"}},
        recipients={"to": [TO], "cc": [CC]},
        failurePolicy={"disableAfter": 10, "retries": 0, "timeoutSeconds": 600},
    )


def record_of(cluster: Cluster, job: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found = cluster.custom.list_namespaced_custom_object(
            models.GROUP, models.VERSION, cluster.ns, models.DELIVERY_PLURAL
        )["items"]
        return next((r for r in found if r["spec"]["jobName"] == job), None)

    return wait_for(f"the record of Job {job}", probe)


def test_run_at_mails_the_window_of_the_time_asked_and_says_so(
    run_operator: OperatorProcess,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    cluster: Cluster,
    control_plane: ControlPlane,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    box, _ = platform
    now = datetime.now(UTC).replace(microsecond=0)
    at = now - timedelta(days=40)
    # Two rows in the week before `at`, one in the week before now: only a window computed
    # as if fired at `at` holds exactly the first two.
    cluster.create_report(report([at - timedelta(days=2), at - timedelta(days=1), now]))
    cluster.wait_status(LONG_NAME, "Active", lambda s: s.get("phase") == "Active")

    # Refused before anything is written: a future time, a time without a zone.
    for bad, rule in (
        (rfc3339(now + timedelta(hours=1)), "is in the future"),
        ("2024-05-13T08:00:00", "is not an RFC 3339 time with a zone"),
    ):
        argv = ["run", LONG_NAME, "--at", bad, "-n", cluster.ns]
        code, _, err = plugin(control_plane, capsys, *argv)
        assert code == 2 and err.startswith("kubectl tidings run: --at: ") and rule in err, err
    assert (
        not cluster.report(LONG_NAME)["metadata"]
        .get("annotations", {})
        .get(contract.RUN_AT_ANNOTATION)
    )

    code, out, err = plugin(
        control_plane, capsys, "run", LONG_NAME, "--at", rfc3339(at), "-n", cluster.ns
    )
    assert code == 0, err
    job = out.rsplit("Job ", 1)[1].rstrip(")\n")
    assert len(job) <= 63
    # Another window asked while that run goes: it waits (one run per report at a time), and
    # starts once the first run's outcome is in.
    earlier = at - timedelta(days=7)
    cluster.annotate(LONG_NAME, **{contract.RUN_AT_ANNOTATION: f"{rfc3339(earlier)} queued"})
    wait_for("RunAtWaiting", lambda: cluster.events("RunAtWaiting", LONG_NAME))
    runner = RelayPodRunner(cluster, tmp_path)
    assert runner.execute(job) == 0

    record = record_of(cluster, job)["spec"]
    assert record["trigger"] == models.Trigger.RERUN == "Rerun"
    assert record["rerunAt"] == rfc3339(at)
    assert record["scheduledTime"] == record["windowEnd"] == rfc3339(at)
    assert record["windowStart"] == rfc3339(at - timedelta(days=7))
    assert record["rows"] == 2  # the rows of that window, not of the week before now
    assert record["outcome"] == "Delivered"
    assert box.recipients() == [CC, TO]
    box.messages.clear()

    def rerun_jobs() -> list[str]:
        jobs = cluster.jobs()
        marked = [
            j for j in jobs if contract.RERUN_AT_JOB_ANNOTATION in j["metadata"]["annotations"]
        ]
        return [j["metadata"]["name"] for j in marked]

    queued = wait_for("the queued run-at's Job", lambda: [j for j in rerun_jobs() if j != job])
    assert runner.execute(queued[0]) == 0
    second = record_of(cluster, queued[0])["spec"]
    assert second["rerunAt"] == second["windowEnd"] == rfc3339(earlier)
    assert second["rows"] == 0 and len(box.messages) == 1  # that week had no rows: still mailed
    value = f"{rfc3339(earlier)} queued"
    assert cluster.status(LONG_NAME)["runAtHandled"] == contract.digest(value)

    # Set by hand with a time in the future: the operator refuses it once, naming the field.
    future = f"{rfc3339(now + timedelta(days=1))} by-hand"
    cluster.annotate(LONG_NAME, **{contract.RUN_AT_ANNOTATION: future})
    cluster.wait_status(
        LONG_NAME,
        "the future run-at handled",
        lambda s: s.get("runAtHandled") == contract.digest(future),
    )
    (event,) = cluster.events("RunAtRefused", LONG_NAME)
    assert reruns.RUN_AT_PATH in event.message and "is in the future" in event.message
    assert sorted(rerun_jobs()) == sorted([job, queued[0]])  # the refused one started nothing


def test_resend_reaches_only_the_refused_recipient_and_only_once(
    run_operator: OperatorProcess,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    cluster: Cluster,
    control_plane: ControlPlane,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    box, _ = platform
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cluster.create_report(report([now - timedelta(days=2), now - timedelta(days=1)]))
    cluster.wait_status(LONG_NAME, "Active", lambda s: s.get("phase") == "Active")
    runner = RelayPodRunner(cluster, tmp_path)

    # The scheduled run: the platform relay refuses the cc address (550), the to gets it.
    box.refuse = {CC}
    scheduled = cluster.create_scheduled_job(cj.cronjob_name(LONG_NAME), now)
    runner.execute(scheduled)
    first = record_of(cluster, scheduled)
    refused = first["spec"]["recipients"]["cc"]["refused"]
    assert [r["address"] for r in refused] == [CC] and "550" in refused[0]["reply"]
    assert box.recipients() == [TO]
    box.refuse = set()

    def run_resend_jobs(count: int, seen: list[str]) -> None:
        for _ in range(count):
            job = wait_for(
                "a resend Job",
                lambda: next(
                    (
                        j["metadata"]["name"]
                        for j in cluster.jobs()
                        if j["metadata"]["annotations"].get(contract.RESEND_OF_JOB_ANNOTATION)
                        and j["metadata"]["name"] not in seen
                    ),
                    None,
                ),
            )
            seen.append(job)
            runner.execute(job)

    seen: list[str] = []
    worker = threading.Thread(target=run_resend_jobs, args=(1, seen), daemon=True)
    worker.start()
    name = first["metadata"]["name"]
    argv = ["resend", name, "--wait", "--timeout", "120", "-n", cluster.ns]
    code, out, err = plugin(control_plane, capsys, *argv)
    worker.join(timeout=60)
    assert code == 0, (out, err)
    assert f"to {CC} only" in out and "Delivered by Job" in out
    assert [rcpts for rcpts, _ in box.messages] == [[TO], [CC]]  # the cc, and nobody else
    resent = record_of(cluster, seen[0])["spec"]
    assert (resent["trigger"], resent["resendOf"]) == (models.Trigger.RESEND, name)
    assert resent["scheduledTime"] == first["spec"]["scheduledTime"]
    assert resent["windowEnd"] == first["spec"]["windowEnd"]
    assert resent["recipients"]["to"]["intended"] == []
    assert resent["recipients"]["cc"]["accepted"] == [CC]
    assert (resent["recipients"]["accepted"], resent["recipients"]["refused"]) == (1, 0)

    # The same record resent again: the relay knows CC has this resend already.
    worker = threading.Thread(target=run_resend_jobs, args=(1, seen), daemon=True)
    worker.start()
    code, out, err = plugin(control_plane, capsys, "resend", name, "-n", cluster.ns)
    assert code == 0, err
    worker.join(timeout=120)
    assert len(seen) == 2 and len(box.messages) == 2, "the resend of one record went twice"
    assert record_of(cluster, seen[1])["spec"]["resendOf"] == name

    # A record that reached everyone it was for: the plugin refuses, annotating nothing.
    done = record_of(cluster, seen[0])["metadata"]["name"]
    code, _, err = plugin(control_plane, capsys, "resend", done, "-n", cluster.ns)
    assert code == 1 and "nothing to resend" in err, err
