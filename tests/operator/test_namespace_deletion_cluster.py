"""`kubectl delete namespace` with a run held by the outcome finalizer finishes within a minute
on the real control plane: the record create and Event post are refused there (the namespace is
terminating, and kopf stops serving it), so the operator lets the Job go without them as soon
as it sees the namespace marked for deletion, and logs why."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.operator_harness import (
    MONDAY,
    Cluster,
    OperatorProcess,
    StandInKubelet,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import contract
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster


def test_deleting_a_namespace_with_a_held_run_finishes(
    control_plane: ControlPlane, kube: client.ApiClient, report_crd: None, tmp_path: Path
) -> None:
    core = client.CoreV1Api(kube)
    name = f"ns-deletion-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def has_default_account() -> bool:
        accounts = core.list_namespaced_service_account(name).items
        return any(a.metadata.name == "default" for a in accounts)

    wait_for("the default ServiceAccount", has_default_account)
    operator = OperatorProcess(control_plane.kubeconfig, name, tmp_path / "operator.log", {})
    operator.start()
    try:
        cluster = Cluster(kube, name)
        cluster.create_report(manifest("weekly"))
        cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
        job = cluster.create_scheduled_job("weekly", MONDAY)
        StandInKubelet(cluster).pending_pod(job)
        assert contract.FINALIZER in cluster.job(job)["metadata"]["finalizers"]

        started = time.monotonic()
        core.delete_namespace(name)

        def gone() -> bool:
            try:
                core.read_namespace(name)
            except client.ApiException as exc:
                return exc.status == 404
            return False

        wait_for(f"namespace {name} to be deleted", gone, timeout=60)
        assert time.monotonic() - started < 60
        assert f"namespace {name} is being deleted: Job {job} let go" in operator.log_text()
    finally:
        operator.stop()
