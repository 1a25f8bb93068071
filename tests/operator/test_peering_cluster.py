"""Two replicas with peering: random priorities mean exactly one acts, the other pauses."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from op_harness import Cluster, OperatorProcess, wait_for
from sr_bodies import manifest

from tidings.controller import cronjob as cj
from tidings.devcluster import ControlPlane

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
    control_plane: ControlPlane,
    report_crd: None,
    peering: None,
    namespace: str,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    replicas = [
        OperatorProcess(
            control_plane.kubeconfig, namespace, tmp_path / f"op{i}.log", {}, standalone=False
        )
        for i in (1, 2)
    ]
    try:
        for replica in replicas:
            replica.start()
        paused = wait_for(
            "one replica to pause in favour of the other",
            lambda: [r for r in replicas if "Pausing operations" in r.log_path.read_text()],
        )
        assert len(paused) == 1
        (active,) = [r for r in replicas if r is not paused[0]]

        body = manifest("weekly", schedule="")
        body["metadata"]["annotations"] = {cj.RUN_NOW_ANNOTATION: "once"}
        cluster.create_report(body)
        cluster.wait_status("weekly", "run-now handled", lambda s: s.get("runNowHandled") == "once")
        assert len(cluster.jobs()) == 1
        assert "reconcile_report" in active.log_path.read_text()
        assert "reconcile_report" not in paused[0].log_path.read_text()
    finally:
        for replica in replicas:
            replica.stop()
