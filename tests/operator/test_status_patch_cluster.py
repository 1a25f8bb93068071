"""A `kubectl patch --subresource=status` of phase Active on a Disabled report, on the real
control plane: put back to Disabled at once with an Event, the CronJob still suspended; the
annotation then reactivates fully (controller.status_guard). The patch is made by a user whose
only grant is the status subresource: she cannot set the reactivate annotation."""

from __future__ import annotations

import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.support.operator_harness import (
    MONDAY,
    Cluster,
    OperatorProcess,
    StandInKubelet,
    history,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import contract, models
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster


def _status_writer(plane: ControlPlane, cluster: Cluster) -> client.CustomObjectsApi:
    """A user whose only grant is writing scheduledreports/status in the namespace."""
    user = f"stella-{uuid.uuid4().hex[:6]}"
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rule = client.V1PolicyRule(
        api_groups=[models.GROUP], resources=[f"{models.PLURAL}/status"], verbs=["get", "patch"]
    )
    rbac.create_namespaced_role(
        cluster.ns, client.V1Role(metadata=client.V1ObjectMeta(name=user), rules=[rule])
    )
    rbac.create_namespaced_role_binding(
        cluster.ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=user),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=user
            ),
            subjects=[client.RbacV1Subject(kind="User", name=user)],
        ),
    )
    return client.CustomObjectsApi(plane.api_client(user))


def test_status_patch_of_active_is_put_back_and_the_annotation_reactivates(
    control_plane: ControlPlane,
    run_operator: OperatorProcess,
    cluster: Cluster,
    kubelet: StandInKubelet,
) -> None:
    spec = {"failurePolicy": {"disableAfter": 1, "retries": 0, "timeoutSeconds": 600}}
    cluster.create_report(manifest("weekly", **spec))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    job = cluster.create_scheduled_job("weekly", MONDAY)
    failure = result_line(False, failure="permanent", error="SMTP 550 no such user")
    kubelet.run(job, 65, failure)
    cluster.wait_status("weekly", "Disabled", lambda s: job in history(s))
    wait_for("the CronJob suspended", lambda: cluster.cronjob("weekly")["spec"]["suspend"])

    # Stella may write status (a bespoke Role: no Tidings role grants it) but not the report.
    stella = _status_writer(control_plane, cluster)
    with pytest.raises(ApiException) as refused:
        stella.patch_namespaced_custom_object(
            models.GROUP, models.VERSION, cluster.ns, models.PLURAL, "weekly",
            {"metadata": {"annotations": {contract.REACTIVATE_ANNOTATION: "mine"}}},
        )  # fmt: skip
    assert refused.value.status == 403  # the way that reactivates is not hers

    def write_active() -> dict | None:
        try:
            return stella.patch_namespaced_custom_object_status(
                models.GROUP, models.VERSION, cluster.ns, models.PLURAL, "weekly",
                {"status": {"phase": "Active"}},
            )  # fmt: skip
        except ApiException as error:
            if error.status == 403:
                return None  # her RoleBinding has not reached the authorizer's cache yet
            raise

    patched = wait_for("Stella's status write", write_active)
    written = time.monotonic()
    assert patched["status"]["phase"] == "Active"  # the API server took it as written
    (event,) = wait_for("the revert Event", lambda: cluster.events("StatusPatchReverted", "weekly"))
    assert event.type == "Warning"
    assert "kubectl tidings reactivate weekly" in event.message
    status = cluster.wait_status("weekly", "Disabled again", lambda s: s["phase"] == "Disabled")
    print(f"status patch put back to Disabled within {time.monotonic() - written:.2f}s")
    assert status["consecutiveFailures"] == 1
    assert "nextSendAt" not in status
    assert cluster.cronjob("weekly")["spec"]["suspend"] is True
    assert cluster.events("Reactivated", "weekly") == []

    # What does reactivate: the annotation (kubectl tidings reactivate sets it).
    cluster.annotate("weekly", **{contract.REACTIVATE_ANNOTATION: "fixed-address"})
    status = cluster.wait_status("weekly", "reactivated", lambda s: s["phase"] == "Active")
    assert status["consecutiveFailures"] == 0
    assert status["nextSendAt"]
    wait_for("the CronJob resumed", lambda: not cluster.cronjob("weekly")["spec"]["suspend"])
    assert len(cluster.events("StatusPatchReverted", "weekly")) == 1
