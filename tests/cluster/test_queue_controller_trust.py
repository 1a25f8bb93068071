"""Kueue admits a run by unsuspending its Job. Under the chart's run-protection policy that
write is refused unless the queue controller is named in operator.runProtectionTrustedUsers:
on the real apiserver, the named controller may release a held run and a namespace editor
still may not (docs/operator.md, Under Kueue)."""

from __future__ import annotations

import uuid

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.support.chart_tools import render
from tests.support.operator_harness import wait_for
from tests.support.rbac_users import role_binding

from tidings.controller import capacity
from tidings.controller import cronjob as cj

pytestmark = pytest.mark.cluster

KUEUE = "system:serviceaccount:kueue-system:kueue-controller-manager"


def _held_run(name: str) -> dict:
    labels = {
        cj.MANAGED_BY_LABEL: cj.MANAGED_BY,
        cj.COMPONENT_LABEL: "report-run",
        cj.REPORT_UID_LABEL: str(uuid.uuid4()),
        capacity.KUEUE_QUEUE_LABEL: "reports",
    }
    pod = {"restartPolicy": "Never", "containers": [{"name": cj.CONTAINER, "image": "busybox"}]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {"suspend": True, "template": {"metadata": {"labels": labels}, "spec": pod}},
    }


def _release(api: client.ApiClient, ns: str, name: str, dry_run: bool = False) -> str:
    """ "ok", or why the apiserver refused to unsuspend the Job."""
    batch = client.BatchV1Api(api)
    try:
        kwargs = {"dry_run": "All"} if dry_run else {}
        batch.patch_namespaced_job(name, ns, {"spec": {"suspend": False}}, **kwargs)
    except ApiException as exc:
        return f"{exc.status} {exc.body}"
    return "ok"


def test_a_named_queue_controller_may_release_a_held_run_and_an_editor_may_not(
    control_plane, kube, namespace: str
) -> None:
    client.BatchV1Api(kube).create_namespaced_job(namespace, _held_run("queued"))
    suffix = uuid.uuid4().hex[:5]
    objects = render(
        f"kq{suffix}",
        f"tidings-kq-{suffix}",
        set_values=(
            f"operator.watchNamespaces={{{namespace}}}",
            f"operator.runProtectionTrustedUsers={{{KUEUE}}}",
        ),
    )
    policy = [o for o in objects if o["kind"].startswith("ValidatingAdmissionPolicy")]
    assert len(policy) == 2
    rbac = client.RbacAuthorizationV1Api(kube)
    for user in ("mallory", KUEUE):
        binding = role_binding(f"edit-{uuid.uuid4().hex[:5]}", "edit", user)
        rbac.create_namespaced_role_binding(namespace, binding)
    mallory = control_plane.api_client(user="mallory")
    kueue = control_plane.api_client(user=KUEUE)
    control_plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(policy))
    try:
        name = policy[0]["metadata"]["name"]
        # In force once the editor's dry run is refused by it (policies load asynchronously).
        wait_for(
            "the policy in force", lambda: name in _release(mallory, namespace, "queued", True)
        )
        refused = _release(mallory, namespace, "queued")
        assert refused.startswith("403") and name in refused
        assert client.BatchV1Api(kube).read_namespaced_job("queued", namespace).spec.suspend
        wait_for("the queue controller releases it", lambda: _release(kueue, namespace, "queued")
                 == "ok")  # fmt: skip
        assert not client.BatchV1Api(kube).read_namespaced_job("queued", namespace).spec.suspend
    finally:
        mallory.close()
        kueue.close()
        for obj in reversed(policy):
            control_plane.kubectl("delete", obj["kind"], obj["metadata"]["name"], check=False)
