"""A `kubectl patch --subresource=status` of phase Active on a Disabled report, on the real
control plane: put back to Disabled at once with an Event, the CronJob still suspended; the
annotation then reactivates fully (controller.status_guard)."""

from __future__ import annotations

import pytest
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

pytestmark = pytest.mark.cluster


def test_status_patch_of_active_is_put_back_and_the_annotation_reactivates(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    spec = {"failurePolicy": {"disableAfter": 1, "retries": 0, "timeoutSeconds": 600}}
    cluster.create_report(manifest("weekly", **spec))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    job = cluster.create_scheduled_job("weekly", MONDAY)
    failure = result_line(False, failure="permanent", error="SMTP 550 no such user")
    kubelet.run(job, 65, failure)
    cluster.wait_status("weekly", "Disabled", lambda s: job in history(s))
    wait_for("the CronJob suspended", lambda: cluster.cronjob("weekly")["spec"]["suspend"])

    patched = cluster.custom.patch_namespaced_custom_object_status(
        models.GROUP,
        models.VERSION,
        cluster.ns,
        models.PLURAL,
        "weekly",
        {"status": {"phase": "Active"}},
    )
    assert patched["status"]["phase"] == "Active"  # the API server took it as written
    (event,) = wait_for("the revert Event", lambda: cluster.events("StatusPatchReverted", "weekly"))
    assert event.type == "Warning"
    assert "kubectl tidings reactivate weekly" in event.message
    status = cluster.wait_status("weekly", "Disabled again", lambda s: s["phase"] == "Disabled")
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
