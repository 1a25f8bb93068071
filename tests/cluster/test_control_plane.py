"""The local control plane is a real Kubernetes: these tests pin down what the rest of the suite
relies on (API round trips, the real Job controller, RBAC, CRDs from crds/)."""

from __future__ import annotations

import time

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tidings import models
from tidings_dev.cluster import REPO_ROOT, ControlPlane, pinned_versions

pytestmark = pytest.mark.cluster


def test_version_is_the_pinned_release(control_plane: ControlPlane) -> None:
    out = control_plane.kubectl("get", "--raw", "/version").stdout
    assert yaml.safe_load(out)["gitVersion"] == pinned_versions()["KUBERNETES_VERSION"]


def test_namespace_and_cronjob_round_trip(kube: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube)
    assert core.read_namespace(namespace).status.phase == "Active"

    batch = client.BatchV1Api(kube)
    cronjob = client.V1CronJob(
        metadata=client.V1ObjectMeta(name="weekly"),
        spec=client.V1CronJobSpec(
            schedule="0 9 * * 1",
            time_zone="Europe/Berlin",
            suspend=True,
            job_template=client.V1JobTemplateSpec(
                spec=client.V1JobSpec(
                    template=client.V1PodTemplateSpec(
                        spec=client.V1PodSpec(
                            restart_policy="Never",
                            containers=[client.V1Container(name="r", image="renderer:dev")],
                        )
                    )
                )
            ),
        ),
    )
    batch.create_namespaced_cron_job(namespace, cronjob)
    stored = batch.read_namespaced_cron_job("weekly", namespace)
    assert (stored.spec.schedule, stored.spec.time_zone, stored.spec.suspend) == (
        "0 9 * * 1",
        "Europe/Berlin",
        True,
    )
    # The apiserver filled in defaults, which proves this went through real admission/storage.
    assert stored.spec.concurrency_policy == "Allow"
    assert stored.metadata.uid


def test_job_controller_creates_pods_that_stay_pending(
    kube: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(kube)
    core = client.CoreV1Api(kube)
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="once"),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="r", image="renderer:dev")],
                )
            ),
        ),
    )
    batch.create_namespaced_job(namespace, job)

    deadline = time.monotonic() + 60
    pods: list[client.V1Pod] = []
    while time.monotonic() < deadline and not pods:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=once").items
        time.sleep(0.5)
    assert len(pods) == 1, "the real Job controller (kube-controller-manager) created no Pod"
    pod = pods[0]
    assert pod.metadata.owner_references[0].kind == "Job"
    # There is no kubelet and no scheduler in this control plane, so the Pod is never bound
    # to a node and never runs: it stays Pending.
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None


def test_user_without_rolebinding_is_forbidden(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str
) -> None:
    stranger = control_plane.api_client("mallory", ["engineering"])
    try:
        with pytest.raises(ApiException) as refused:
            client.CoreV1Api(stranger).list_namespaced_config_map(namespace)
        assert refused.value.status == 403
        assert "mallory" in refused.value.body
    finally:
        stranger.close()
    assert client.CoreV1Api(kube).list_namespaced_config_map(namespace).items is not None


def test_rolebinding_grants_exactly_what_it_says(
    control_plane: ControlPlane, kube: client.ApiClient, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="alice-view"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"
            ),
            subjects=[
                client.RbacV1Subject(
                    kind="User", name="alice", api_group="rbac.authorization.k8s.io"
                )
            ],
        ),
    )
    alice = control_plane.api_client("alice")
    try:
        core = client.CoreV1Api(alice)
        assert core.list_namespaced_config_map(namespace).items is not None
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_config_map(
                namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
            )
        assert refused.value.status == 403
    finally:
        alice.close()


def test_crds_from_the_repo_are_installed_and_served(
    kube: client.ApiClient, namespace: str
) -> None:
    manifests = sorted((REPO_ROOT / "crds").glob("*.yaml"))
    assert manifests, "crds/ holds no CRD manifest"
    ext = client.ApiextensionsV1Api(kube)
    for manifest in manifests:
        name = yaml.safe_load(manifest.read_text())["metadata"]["name"]
        crd = ext.read_custom_resource_definition(name)
        established = {c.type: c.status for c in crd.status.conditions}
        assert established.get("Established") == "True", name

    custom = client.CustomObjectsApi(kube)
    listed = custom.list_namespaced_custom_object(
        models.GROUP, models.VERSION, namespace, models.PLURAL
    )
    assert listed["items"] == []
