"""The kube-apiserver restarts under a running operator: its watches break and resume (or
re-list), and every run is still counted once. This module has its own control plane, so the
restart does not disturb the session's."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from kubernetes import client
from tests.support.operator_harness import (
    HOLD_SPEC,
    Cluster,
    OperatorProcess,
    StandInKubelet,
    assert_counted_once,
    install_report_crd,
    result_line,
    start_runs,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import contract
from tidings.contract import digest
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    state_dir = tmp_path_factory.mktemp("cp-restart")
    with ControlPlane(state_dir=state_dir, die_with_parent=True) as plane:
        yield plane


@pytest.fixture(scope="module")
def kube(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    api = control_plane.api_client()
    yield api
    api.close()


@pytest.fixture(scope="module")
def report_crd(control_plane: ControlPlane, kube: client.ApiClient) -> None:
    install_report_crd(control_plane, kube)


def test_runs_finished_around_an_apiserver_restart_are_counted_once(
    control_plane: ControlPlane,
    run_operator: OperatorProcess,
    cluster: Cluster,
    kubelet: StandInKubelet,
) -> None:
    """10 runs: 5 deliver before the restart, 5 fail right after it while the operator's
    watches are resuming; the CronJob controller's cleanup runs throughout. Every run is
    counted once, in status, Events and metrics, and the re-listed Jobs count nothing again."""
    cluster.create_report(manifest("weekly", **HOLD_SPEC))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    jobs = start_runs(cluster, kubelet, "weekly", 10)
    before, after = jobs[:5], jobs[5:]
    for job in before:
        kubelet.run(job, 0, result_line(True))
    cluster.wait_status("weekly", "the first 5 counted", lambda s: len(s.get("history", [])) == 5)

    control_plane.restart_apiserver(down=3)
    for number, job in enumerate(after):
        kubelet.run(job, 75, result_line(False, error=f"down {number}"))

    assert_counted_once(cluster, "weekly", jobs)
    # The watches it retried while the apiserver was down ask for the operator's own CronJobs
    # and Jobs only: the apiserver filters them, so other workloads' cost the operator nothing.
    retried = re.findall(r"GET \S+/(?:cronjobs|jobs)\?watch=true\S*", run_operator.log_text())
    assert {url.split("/")[-1].split("?")[0] for url in retried} == {"cronjobs", "jobs"}
    assert all("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dtidings" in u for u in retried)
    # A second restart with nothing left to count: the operator re-sees the kept Jobs (counted
    # and released) and must post and count nothing. The marker run-now shows it is caught up.
    control_plane.restart_apiserver()
    cluster.annotate("weekly", **{contract.RUN_NOW_ANNOTATION: "after-restart"})
    cluster.wait_status(
        "weekly", "run-now handled", lambda s: s.get("runNowHandled") == digest("after-restart")
    )
    assert_counted_once(cluster, "weekly", jobs)
    metrics = wait_for("the operator's metrics", run_operator.metrics)
    assert 'tidings_runs_total{failure="none",outcome="Delivered"} 5.0' in metrics
    assert 'tidings_runs_total{failure="transient",outcome="Failed"} 5.0' in metrics
