"""Two replicas with peering: random priorities mean exactly one acts, the other pauses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.support.operator_harness import (
    HOLD_SPEC,
    Cluster,
    OperatorProcess,
    StandInKubelet,
    assert_counted_once,
    finish_runs,
    start_runs,
    wait_for,
    wait_for_cleanup,
)
from tests.support.report_bodies import manifest

from tidings import contract
from tidings.controller import cronjob as cj
from tidings.controller import cronjob_index
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster

OPEN_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# kopf's namespaced peering CRD (docs/peering.rst); the chart installs it in real clusters.
PEERING_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "kopfpeerings.kopf.dev"},
    "spec": {
        "scope": "Namespaced",
        "group": "kopf.dev",
        "names": {"kind": "KopfPeering", "plural": "kopfpeerings", "singular": "kopfpeering"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {"status": OPEN_OBJECT},
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def peering(control_plane: ControlPlane, kube: client.ApiClient, namespace: str) -> None:
    try:
        client.ApiextensionsV1Api(kube).create_custom_resource_definition(PEERING_CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "kopfpeerings.kopf.dev"
    )
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        "kopf.dev",
        "v1",
        namespace,
        "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "tidings"}},
    )


def test_two_replicas_never_both_act(
    replicas: dict[str, OperatorProcess],
    kube: client.ApiClient,
    namespace: str,
    cluster: Cluster,
) -> None:
    peers = client.CustomObjectsApi(kube)

    def announced() -> dict | None:
        peering = peers.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", "tidings"
        )
        status = peering.get("status") or {}
        return status if status.keys() >= replicas.keys() else None

    # Both replicas have announced themselves: the higher random priority must win.
    status = wait_for("both replicas in the KopfPeering status", announced)
    winner = max(replicas, key=lambda name: status[name]["priority"])
    active = replicas[winner]
    (paused,) = [r for name, r in replicas.items() if name != winner]
    # kopf starts paused and logs only transitions, so a replica that never saw itself
    # alone stays silent; the winner must resume and the other must not be running.
    wait_for(
        "only the higher-priority replica to run",
        lambda: last_peering_state(active) == "running" and last_peering_state(paused) != "running",
    )

    body = manifest("weekly", schedule="")
    body["metadata"]["annotations"] = {contract.RUN_NOW_ANNOTATION: "once"}
    cluster.create_report(body)
    cluster.wait_status(
        "weekly", "run-now handled", lambda s: s.get("runNowHandled") == contract.digest("once")
    )
    assert len(cluster.jobs()) == 1
    assert "report_event" in active.log_path.read_text()
    assert "report_event" not in paused.log_path.read_text()
    assert last_peering_state(paused) != "running"
    # Both are scraped behind the metrics Service; only the active one exports reports.
    leading = active.metrics()
    assert "tidings_operator_leader 1.0" in leading
    assert (
        f'tidings_report_phase{{namespace="{namespace}",phase="Manual",report="weekly"}} 1.0'
        in leading
    )
    standing_by = paused.metrics()
    assert "tidings_operator_leader 0.0" in standing_by
    assert "tidings_report" not in standing_by.replace("tidings_operator_leader", "")


@pytest.fixture
def replicas(
    control_plane: ControlPlane, report_crd: None, peering: None, namespace: str, tmp_path: Path
) -> Iterator[dict[str, OperatorProcess]]:
    """Two peering operators, started; POD_ID is kopf's identity for a replica (the chart sets
    it to the pod name)."""
    made = {
        name: OperatorProcess(
            control_plane.kubeconfig,
            namespace,
            tmp_path / f"{name}.log",
            {"POD_ID": name},
            standalone=False,
        )
        for name in ("replica-1", "replica-2")
    }
    try:
        for replica in made.values():
            replica.start()
        yield made
    finally:
        for replica in made.values():
            replica.stop()


def last_peering_state(replica: OperatorProcess) -> str | None:
    """ "running" or "paused" from the replica's last peering transition; None before any."""
    state = None
    for line in replica.log_path.read_text().splitlines():
        if "Resuming operations" in line:
            state = "running"
        elif "Pausing operations" in line:
            state = "paused"
    return state


def test_runs_finished_during_a_hand_over_are_counted_once(
    replicas: dict[str, OperatorProcess], cluster: Cluster
) -> None:
    """The active replica is killed with -9 while 20 runs finish and the CronJob controller
    cleans up; the other replica takes over once the dead one's peering entry expires."""
    kubelet = StandInKubelet(cluster)
    wait_for(
        "one replica to run",
        lambda: [r for r in replicas.values() if last_peering_state(r) == "running"],
    )
    cluster.create_report(manifest("weekly", **HOLD_SPEC))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    jobs = start_runs(cluster, kubelet, "weekly", 20)
    (active,) = [r for r in replicas.values() if last_peering_state(r) == "running"]
    (standby,) = [r for r in replicas.values() if r is not active]

    active.kill()
    finish_runs(cluster, kubelet, jobs)
    wait_for_cleanup(cluster, jobs)
    # kopf's peering lifetime is 60 s: the standby resumes only after that.
    wait_for("the standby to resume", lambda: last_peering_state(standby) == "running", 180)
    assert_counted_once(cluster, "weekly", jobs)
    metrics = standby.metrics()
    assert 'tidings_runs_total{failure="none",outcome="Delivered"} 10.0' in metrics
    assert 'tidings_runs_total{failure="transient",outcome="Failed"} 10.0' in metrics


def test_a_cronjob_deleted_while_no_replica_leads_is_recreated_by_the_next_leader(
    replicas: dict[str, OperatorProcess], namespace: str, cluster: Cluster
) -> None:
    """A standby knows which CronJobs exist from its start-up list and sees no deletion while
    paused. The active replica dies, the CronJob is deleted before the standby takes over, and
    the standby's re-check on resuming puts it back."""
    wait_for("one replica to run", lambda: len(running(replicas)) == 1)
    cluster.create_report(manifest("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    (standby,) = [r for r in replicas.values() if r not in running(replicas)]
    # Restarted, the standby lists the CronJob at start-up; whichever replica wins the
    # peering now, the paused one holds the CronJob in its map.
    standby.stop()
    standby.start()
    wait_for("the peering to settle", lambda: len(running(replicas)) == 1, 180)
    (active,) = running(replicas)
    (standby,) = [r for r in replicas.values() if r is not active]
    uid = cluster.cronjob("weekly")["metadata"]["uid"]
    # Past the standby's start-up re-check: only the re-check on resuming can catch it.
    time.sleep(cronjob_index.RECHECK_SECONDS + 5)

    active.kill()
    cluster.batch.delete_namespaced_cron_job(cj.cronjob_name("weekly"), namespace)
    wait_for("the standby to resume", lambda: last_peering_state(standby) == "running", 180)
    recreated = wait_for("the CronJob back", lambda: cluster.cronjob("weekly"))
    assert recreated["metadata"]["uid"] != uid
    assert cluster.events("CronJobRecreated", "weekly")


def running(replicas: dict[str, OperatorProcess]) -> list[OperatorProcess]:
    return [
        r
        for r in replicas.values()
        if r.proc is not None and r.proc.poll() is None and last_peering_state(r) == "running"
    ]
