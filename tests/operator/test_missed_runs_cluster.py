"""The operator down across a fire time: the real CronJob controller still starts the run, and the
operator, back, counts it once (docs/operator.md, "Missed runs after downtime")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    finished,
    history,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest
from tests.support.zones import ceil_minute

from tidings import contract
from tidings.schedule import rfc3339

pytestmark = pytest.mark.cluster

HOLD = {"failurePolicy": {"disableAfter": 5, "retries": 0, "timeoutSeconds": 600}}


def test_a_fire_while_the_operator_is_down_runs_and_is_counted_once(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    fire = ceil_minute(datetime.now(UTC) + timedelta(seconds=40))
    cluster.create_report(
        manifest("daily", schedule=f"{fire.minute} {fire.hour} * * *", timeZone="UTC", **HOLD)
    )
    status = cluster.wait_status("daily", "Active", lambda s: s.get("phase") == "Active")
    assert status["nextSendAt"] == rfc3339(fire)
    wait_for("the CronJob", lambda: cluster.cronjob("daily"))
    run_operator.stop()

    job = f"daily-{int(fire.timestamp()) // 60}"
    wait = (fire - datetime.now(UTC)).total_seconds() + 60
    created = wait_for(f"the controller's Job {job}", lambda: cluster.job(job), timeout=wait)
    # Born held by the admission policy, with nobody there to hold it.
    assert contract.FINALIZER in created["metadata"]["finalizers"]
    kubelet.run(job, 0, result_line(True, scheduledTime=rfc3339(fire)))
    finished(cluster, job)
    assert job not in history(cluster.status("daily"))  # nothing counted it yet

    run_operator.start()
    status = cluster.wait_status("daily", "the run counted", lambda s: job in history(s))
    assert [h["jobName"] for h in status["history"]] == [job]
    assert history(status)[job]["outcome"] == "Delivered"
    assert status["lastSentAt"]
    assert status["nextSendAt"] == rfc3339(fire + timedelta(days=1))
    released = wait_for(
        "the Job let go",
        lambda: (
            (j := cluster.job(job))
            and contract.COUNTED_ANNOTATION in j["metadata"]["annotations"]
            and j
        ),
    )
    assert contract.FINALIZER not in (released["metadata"].get("finalizers") or ())
    assert len(cluster.events("Delivered", "daily")) == 1

    # A second restart finds it counted: no second entry, no second Event.
    run_operator.stop()
    run_operator.start()
    cluster.annotate("daily", **{contract.RUN_NOW_ANNOTATION: "after-restart"})
    cluster.wait_status("daily", "run-now handled", lambda s: s.get("runNowHandled"))
    assert [h["jobName"] for h in cluster.status("daily")["history"]] == [job]
    assert len(cluster.events("Delivered", "daily")) == 1
