"""Only the operator's own runs count, on the real control plane without the chart's admission
policy (defence in depth): a Job made by hand with a report's labels, whose container writes a
Delivered result line, leaves status, metrics and records as they were, and one Warning names
it; a genuine run of the same report, made by the same admin from the CronJob's template, still
counts."""

from __future__ import annotations

import pytest
from kubernetes import client
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
from tidings.controller import cronjob as cj

pytestmark = pytest.mark.cluster

FORGED = "weekly-forged"


def records(cluster: Cluster) -> list[dict]:
    found = client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        models.GROUP, models.VERSION, cluster.ns, models.DELIVERY_PLURAL
    )
    return found["items"]


def test_a_forged_job_is_named_and_never_counted(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    spec = {"failurePolicy": {"disableAfter": 5, "retries": 0, "timeoutSeconds": 600}}
    cluster.create_report(manifest("weekly", **spec))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    failing = cluster.create_scheduled_job("weekly", MONDAY)
    kubelet.run(failing, 75, result_line(False))
    before = cluster.wait_status("weekly", "a failure counted", lambda s: failing in history(s))
    assert before["consecutiveFailures"] == 1
    runs_before = [line for line in run_operator.metrics().splitlines() if "runs_total{" in line]

    # The report's labels and annotations, owned by its CronJob, a container of her own.
    template = cluster.cronjob("weekly")
    forged = cj.job_from_template(template, FORGED, {})
    container = forged["spec"]["template"]["spec"]["containers"][0]
    container.update(image="busybox", command=["sh", "-c", "echo delivered"])
    cluster.batch.create_namespaced_job(cluster.ns, forged)
    kubelet.run(FORGED, 0, result_line(True, messageId="<forged@evil.io>", recipientsAccepted=9))

    warning = wait_for("the ForeignRun Warning", lambda: cluster.events("ForeignRun", "weekly"))
    assert len(warning) == 1 and warning[0].type == "Warning"
    assert FORGED in warning[0].message and "not the one the operator wrote" in warning[0].message
    wait_for(
        "the forged Job let go",
        lambda: contract.FINALIZER not in (cluster.job(FORGED)["metadata"].get("finalizers") or ()),
    )
    # A genuine run after it is counted: the forged one was passed over, not merely slow.
    ok = cluster.create_scheduled_job("weekly", MONDAY.replace(day=7, month=4))
    kubelet.run(ok, 75, result_line(False, error="second failure"))
    after = cluster.wait_status("weekly", "the next run counted", lambda s: ok in history(s))
    assert FORGED not in history(after)
    assert after["consecutiveFailures"] == 2
    assert after.get("lastSentAt") == before.get("lastSentAt")
    assert sorted(r["spec"]["jobName"] for r in records(cluster)) == sorted([failing, ok])
    runs_after = [line for line in run_operator.metrics().splitlines() if "runs_total{" in line]
    assert runs_after != runs_before and 'outcome="Delivered"' not in "".join(runs_after)
    assert len(cluster.events("ForeignRun", "weekly")) == 1
