"""A run whose pod never starts shows RunNotStarted with the pod's own reason, and its failure
is counted with that reason when the Job ends."""

from __future__ import annotations

import pytest
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    history,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import contract
from tidings.controller import cronjob as cj

pytestmark = pytest.mark.cluster


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"TIDINGS_RUN_START_TIMEOUT": "2"}  # the bound, small for the test


def test_stuck_pod_shows_run_not_started(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    cluster.create_manual_report(manifest("adhoc"), timeoutSeconds=30)
    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: "stuck"})
    job = cj.run_now_job_name("adhoc", "stuck")
    pod = kubelet.pending_pod(job)
    # What a kubelet reports for an image it cannot pull (the one stand-in in these tests).
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nope:1"'}
    status = {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": cj.CONTAINER,
                "image": "nope:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": waiting},
            }
        ],
    }
    cluster.core.patch_namespaced_pod_status(
        pod["metadata"]["name"], cluster.ns, {"status": status}
    )

    def delivered(s: dict) -> dict:
        return next((c for c in s.get("conditions", []) if c["type"] == "Delivered"), {})

    status = cluster.wait_status(
        "adhoc",
        "RunNotStarted with the pod's reason",
        lambda s: "ImagePullBackOff" in delivered(s).get("message", ""),
    )
    assert (delivered(status)["status"], delivered(status)["reason"]) == (
        "Unknown",
        "RunNotStarted",
    )
    warnings = wait_for("the Warning", lambda: cluster.events("RunNotStarted", "adhoc"))
    assert warnings[-1].type == "Warning"
    # The Job reaches its deadline: the failure is counted with the reason, not as slow.
    status = cluster.wait_status("adhoc", "the run counted", lambda s: job in history(s))
    entry = history(status)[job]
    assert entry["error"].startswith("the run never started: ImagePullBackOff")
    assert delivered(status)["reason"] == "RunNotStarted"
