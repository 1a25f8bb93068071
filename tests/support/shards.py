"""Operators sharded by namespace: kopf's cluster-scoped peering CRD and objects, fresh
namespaces, and who wrote an object (its managedFields)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tidings_dev.cluster import ControlPlane

OPEN_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# kopf's cluster-scoped peering CRD (kopf's docs/peering.rst); the chart installs it.
CLUSTER_PEERING_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "clusterkopfpeerings.kopf.dev"},
    "spec": {
        "scope": "Cluster",
        "group": "kopf.dev",
        "names": {
            "kind": "ClusterKopfPeering",
            "plural": "clusterkopfpeerings",
            "singular": "clusterkopfpeering",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "properties": {"status": OPEN_OBJECT}}
                },
            }
        ],
    },
}


def install_cluster_peerings(plane: ControlPlane, kube: client.ApiClient, names: Iterable[str]):
    """The CRD (once) and one ClusterKopfPeering per name, as the chart makes per shard."""
    try:
        client.ApiextensionsV1Api(kube).create_custom_resource_definition(CLUSTER_PEERING_CRD)
    except ApiException as exc:
        if exc.status != 409:
            raise
    plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd",
        "clusterkopfpeerings.kopf.dev",
    )  # fmt: skip
    for name in names:
        client.CustomObjectsApi(kube).create_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
        )  # fmt: skip


def cluster_peering(kube: client.ApiClient, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(kube).get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", name
    )


def delete_cluster_peerings(kube: client.ApiClient, names: Iterable[str]) -> None:
    for name in names:
        client.CustomObjectsApi(kube).delete_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", name
        )


def new_namespace(kube: client.ApiClient, prefix: str) -> str:
    """A fresh namespace, once its default ServiceAccount exists (pods need it)."""
    core = client.CoreV1Api(kube)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    watcher = watch.Watch()
    for event in watcher.stream(core.list_namespaced_service_account, name, timeout_seconds=30):
        if event["object"].metadata.name == "default":
            watcher.stop()
    return name


def managers(obj: dict[str, Any]) -> set[str]:
    """Field managers that wrote the object (or a subresource of it: status, finalizers)."""
    return {entry["manager"] for entry in obj["metadata"].get("managedFields") or ()}
