"""Two operators sharded by namespace (docs/operator.md, "Sharding") on one control plane: each
serves its own list, peers through its own ClusterKopfPeering, and never writes to the other's
reports, CronJobs, Jobs or Events. Who wrote what is read from the apiserver, not the logs:
every object's managedFields name the writer (a shard's field manager is tidings-shard-<name>),
and the operator's Events name the replica that posted them."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    finished,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest
from tests.support.shards import (
    cluster_peering,
    delete_cluster_peerings,
    install_cluster_peerings,
    managers,
    new_namespace,
)

from tidings import contract
from tidings.controller import cronjob as cj
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster

SHARDS = {"a": 2, "b": 1}  # shard -> how many namespaces it serves


@pytest.fixture
def shards(
    control_plane: ControlPlane, kube: client.ApiClient, report_crd: None, tmp_path: Path
) -> Iterator[dict[str, tuple[OperatorProcess, list[str], str]]]:
    """Each shard: its operator (peering, not standalone), its namespaces, its peering name."""
    tag = uuid.uuid4().hex[:6]
    peerings = {shard: f"tidings-{tag}-{shard}" for shard in SHARDS}
    install_cluster_peerings(control_plane, kube, peerings.values())
    made: dict[str, tuple[OperatorProcess, list[str], str]] = {}
    try:
        for shard, count in SHARDS.items():
            namespaces = [new_namespace(kube, f"shard-{shard}{n}") for n in range(count)]
            env = {
                "TIDINGS_SHARD": shard,
                "TIDINGS_PEERING": peerings[shard],
                "POD_ID": f"shard-{shard}-0",
            }
            operator = OperatorProcess(
                control_plane.kubeconfig,
                namespaces[0],
                tmp_path / f"shard-{shard}.log",
                env,
                standalone=False,
                more_namespaces=tuple(namespaces[1:]),
            )
            made[shard] = (operator, namespaces, peerings[shard])
            operator.start()
        yield made
    finally:
        for operator, namespaces, _ in made.values():
            operator.stop()
            for namespace in namespaces:
                client.CoreV1Api(kube).delete_namespace(namespace)
        delete_cluster_peerings(kube, peerings.values())


def test_two_shards_never_act_on_each_other(
    shards: dict[str, tuple[OperatorProcess, list[str], str]], kube: client.ApiClient
) -> None:
    # Each shard's peering object holds its own replica only: one standby set per shard.
    for shard, (_, _, peering) in shards.items():
        wait_for(
            f"shard {shard} in its ClusterKopfPeering",
            lambda p=peering: (cluster_peering(kube, p).get("status") or {}).keys(),
        )
        assert set(cluster_peering(kube, peering)["status"]) == {f"shard-{shard}-0"}

    # One report per namespace, run once by hand and finished as a kubelet would.
    runs: dict[str, tuple[str, Cluster]] = {}
    for _, namespaces, _ in shards.values():
        for namespace in namespaces:
            cluster = Cluster(kube, namespace)
            name = cluster.create_manual_report(manifest("weekly"))
            cluster.annotate(name, **{contract.RUN_NOW_ANNOTATION: "first"})
            job = wait_for(f"the run-now Job in {namespace}", lambda c=cluster: c.jobs())[0]
            runs[namespace] = (job["metadata"]["name"], cluster)
    for job, cluster in runs.values():
        StandInKubelet(cluster).run(job, 0, result_line(True))
        finished(cluster, job)
        cluster.wait_status("weekly", "the run in history", lambda s, j=job: j in _jobs_in(s))
        wait_for(f"{job}'s finalizer let go", lambda c=cluster, j=job: _let_go(c, j))

    for shard, (operator, namespaces, _) in shards.items():
        own = f"tidings-shard-{shard}"
        others = {f"tidings-shard-{s}" for s in shards if s != shard}
        for namespace in namespaces:
            job, cluster = runs[namespace]
            report = cluster.report("weekly")
            cronjob = cluster.cronjob(cj.cronjob_name("weekly"))
            assert cronjob is not None
            written = {
                "report status": _status_managers(report),
                "CronJob": managers(cronjob),
                "Job": managers(cluster.job(job) or {"metadata": {}}),
            }
            for what, by in written.items():
                assert own in by, f"{what} in {namespace} not written by shard {shard}: {by}"
                assert not by & others, f"{what} in {namespace} written by {by & others}"
            events = [
                e for e in cluster.core.list_namespaced_event(namespace).items
                if e.reporting_component == "tidings"
            ]  # fmt: skip
            assert {e.reason for e in events} >= {"RunNowStarted"}, [e.reason for e in events]
            instances = {e.reporting_instance for e in events}
            assert instances == {f"shard-{shard}-0"}, f"Events in {namespace} from {instances}"
            for event in events:
                by = {m.manager for m in event.metadata.managed_fields or ()}
                assert by == {own}, f"Event {event.reason} in {namespace} written by {by}"
        # Nor did it handle the other shards' objects: no report, CronJob or Job event of theirs.
        foreign = [ns for s, (_, nss, _) in shards.items() if s != shard for ns in nss]
        for line in operator.log_text().splitlines():
            if any(ns in line for ns in foreign):
                assert not any(h in line for h in ("report_event", "cronjob_event", "job_event")), (
                    f"shard {shard} handled another shard's object: {line}"
                )


def _jobs_in(status: dict) -> set[str]:
    return {entry["jobName"] for entry in status.get("history", [])}


def _let_go(cluster: Cluster, job: str) -> bool:
    found = cluster.job(job)
    return found is None or contract.FINALIZER not in found["metadata"].get("finalizers", [])


def _status_managers(report: dict) -> set[str]:
    return {
        entry["manager"]
        for entry in report["metadata"].get("managedFields") or ()
        if entry.get("subresource") == "status"
    }


def test_a_shard_without_namespaces_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tidings", "operator"],
        env={"PATH": "/usr/bin:/bin", "TIDINGS_SHARD": "a", "KUBECONFIG": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "TIDINGS_SHARD needs the shard's namespaces (TIDINGS_NAMESPACES or -n)" in done.stderr
