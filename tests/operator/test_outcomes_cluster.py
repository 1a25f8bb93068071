"""Job outcomes -> report status, with the real Job controller deciding each Job's fate and a
stand-in kubelet ending the pods."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.support.operator_harness import (
    HOLD_SPEC,
    MONDAY,
    Cluster,
    OperatorProcess,
    StandInKubelet,
    assert_counted_once,
    finish_runs,
    finished,
    history,
    result_line,
    start_runs,
    wait_for,
    wait_for_cleanup,
)
from tests.support.report_bodies import manifest

from tidings import contract
from tidings.contract import digest
from tidings.controller import cronjob as cj
from tidings.controller import run_outcome

pytestmark = pytest.mark.cluster


def _recorded(cluster: Cluster, name: str, job: str) -> dict:
    return cluster.wait_status(name, f"{job} recorded", lambda s: job in history(s))


def test_success_failures_disable_and_reactivate(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    spec = {"failurePolicy": {"disableAfter": 3, "retries": 0, "timeoutSeconds": 600}}
    cluster.create_report(manifest("weekly", **spec))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")

    ok = cluster.create_scheduled_job("weekly", MONDAY)
    kubelet.run(
        ok, 0, result_line(True, scheduledTime="2025-03-31T07:00:00Z", recipientsAccepted=2)
    )
    status = _recorded(cluster, "weekly", ok)
    entry = history(status)[ok]
    assert entry["outcome"] == "Delivered"
    assert (entry["recipientsAccepted"], entry["bytes"], entry["renderer"]) == (2, 20480, "pdf")
    assert entry["scheduledTime"] == "2025-03-31T07:00:00Z"
    assert status["lastSentAt"] == status["lastAttemptAt"] == entry["finishedAt"]
    assert status["consecutiveFailures"] == 0
    delivered = next(c for c in status["conditions"] if c["type"] == "Delivered")
    assert (delivered["status"], delivered["reason"]) == ("True", "Delivered")
    assert cluster.events("Delivered", "weekly")

    def fail_runs(first_week: int, count: int) -> dict:
        for week in range(first_week, first_week + count):
            job = cluster.create_scheduled_job("weekly", MONDAY + timedelta(weeks=week))
            kubelet.run(job, 75, result_line(False, error=f"SMTP 451 on week {week}"))
            status = _recorded(cluster, "weekly", job)
        return status

    status = fail_runs(1, 2)
    assert (status["phase"], status["consecutiveFailures"]) == ("Active", 2)
    assert status["lastError"] == "SMTP 451 on week 2"
    assert status["lastSentAt"] == entry["finishedAt"]
    status = fail_runs(3, 1)
    assert (status["phase"], status["consecutiveFailures"]) == ("Disabled", 3)
    assert "nextSendAt" not in status
    wait_for("the CronJob to be suspended", lambda: cluster.cronjob("weekly")["spec"]["suspend"])
    (disabled,) = cluster.events("Disabled", "weekly")
    assert disabled.type == "Warning"
    assert "SMTP 451 on week 3" in disabled.message
    assert contract.REACTIVATE_ANNOTATION in disabled.message

    # The annotation reactivates, once per value.
    cluster.annotate("weekly", **{contract.REACTIVATE_ANNOTATION: "fixed-relay"})
    status = cluster.wait_status("weekly", "reactivated", lambda s: s["phase"] == "Active")
    assert status["consecutiveFailures"] == 0
    assert status["nextSendAt"]
    wait_for("the CronJob to resume", lambda: not cluster.cronjob("weekly")["spec"]["suspend"])

    status = fail_runs(4, 3)
    assert status["phase"] == "Disabled"
    # A spec change reactivates too.
    cluster.patch_report("weekly", {"spec": {"title": "Payments weekly (fixed)"}})
    status = cluster.wait_status("weekly", "reactivated by edit", lambda s: s["phase"] == "Active")
    assert status["consecutiveFailures"] == 0
    assert len(cluster.events("Reactivated", "weekly")) == 2
    assert len(status["history"]) == 7
    # Disable, reactivate and a spec change move the CronJob: none of that is a hand edit.
    assert cluster.events("CronJobReverted", "weekly") == []

    report = cluster.report("weekly")
    assert report["metadata"]["generation"] == 2  # created, then one edit: none by the operator
    metrics = run_operator.metrics()
    assert 'tidings_runs_total{failure="none",outcome="Delivered"} 1.0' in metrics
    assert 'tidings_runs_total{failure="transient",outcome="Failed"} 6.0' in metrics
    assert 'tidings_reports{phase="Active"} 1.0' in metrics


def test_one_pod_per_run_whether_the_failure_is_permanent_or_transient(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    """Retries live in the renderer (failurePolicy.retries); the Job never starts a second pod,
    which would repeat them and could mail the window again."""
    spec = {"failurePolicy": {"disableAfter": 5, "retries": 2, "timeoutSeconds": 600}}
    cluster.create_report(manifest("weekly", **spec))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")

    permanent = cluster.create_scheduled_job("weekly", MONDAY)
    bounced = result_line(False, failure="permanent", error="550 5.1.1 no such mailbox")
    kubelet.run(permanent, 69, bounced)
    job = finished(cluster, permanent)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert len(cluster.pods(permanent)) == 1
    status = _recorded(cluster, "weekly", permanent)
    assert history(status)[permanent]["error"] == "550 5.1.1 no such mailbox"
    delivered = next(c for c in status["conditions"] if c["type"] == "Delivered")
    assert delivered["reason"] == "PermanentFailure"

    transient = cluster.create_scheduled_job("weekly", MONDAY + timedelta(weeks=1))
    unconfirmed = "delivery unconfirmed, not sent again: outcome unknown (closed)"
    kubelet.run(transient, 75, result_line(False, error=unconfirmed))
    job = finished(cluster, transient)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert len(cluster.pods(transient)) == 1  # no second pod, no second copy
    status = _recorded(cluster, "weekly", transient)
    assert history(status)[transient]["error"] == unconfirmed  # not "after N attempts"
    assert status["consecutiveFailures"] == 2
    assert cluster.report("weekly")["metadata"]["generation"] == 1


def test_run_now_starts_one_job_per_value(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    cluster.create_report(manifest("adhoc", schedule=""))
    cluster.wait_status("adhoc", "Manual", lambda s: s.get("phase") == "Manual")

    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: "first"})
    cluster.wait_status(
        "adhoc", "first handled", lambda s: s.get("runNowHandled") == digest("first")
    )
    (job,) = cluster.jobs()
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["TIDINGS_SCHEDULED_TIME"].endswith("Z")
    kubelet.run(job["metadata"]["name"], 0, result_line(True))
    _recorded(cluster, "adhoc", job["metadata"]["name"])

    # Other metadata changes and a restart do not repeat the same value.
    cluster.annotate("adhoc", note="unrelated")
    run_operator.stop()
    run_operator.start()
    cluster.annotate("adhoc", note="still unrelated")
    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: "second"})
    cluster.wait_status(
        "adhoc", "second handled", lambda s: s.get("runNowHandled") == digest("second")
    )
    names = sorted(j["metadata"]["name"] for j in cluster.jobs())
    assert len(names) == 2
    assert names == sorted(
        [cj.run_now_job_name("adhoc", "first"), cj.run_now_job_name("adhoc", "second")]
    )
    assert len(cluster.events("RunNowStarted", "adhoc")) == 2
    assert cluster.report("adhoc")["metadata"]["generation"] == 1
    # Run-now Jobs are the report's, not the CronJob's: its controller has nothing to warn about.
    assert cluster.events("UnexpectedJob", "adhoc") == []


def test_jobs_finished_while_stopped_are_counted_once(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    """kill -9 while 20 runs finish, and the CronJob controller cleans up all but 3 + 3 of
    them meanwhile: after a restart every run is counted once, and a further restart re-posts
    no Event and re-counts no metric."""
    cluster.create_report(manifest("weekly", **HOLD_SPEC))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    jobs = start_runs(cluster, kubelet, "weekly", 20)

    run_operator.kill()
    finish_runs(cluster, kubelet, jobs)
    wait_for_cleanup(cluster, jobs)
    run_operator.start()

    assert_counted_once(cluster, "weekly", jobs)
    metrics = run_operator.metrics()
    assert 'tidings_runs_total{failure="none",outcome="Delivered"} 10.0' in metrics
    assert 'tidings_runs_total{failure="transient",outcome="Failed"} 10.0' in metrics

    offset = len(run_operator.log_text())
    run_operator.stop()
    run_operator.start()
    # Nothing is left to count: the cleaned-up Jobs are gone, the rest carry the counted mark.
    wait_for(
        "the restarted operator to see the kept Jobs",
        lambda: "job_event" in run_operator.log_text()[offset:],
    )
    cluster.annotate("weekly", **{contract.RUN_NOW_ANNOTATION: "after-restart"})
    cluster.wait_status(
        "weekly", "run-now handled", lambda s: s.get("runNowHandled") == digest("after-restart")
    )
    assert_counted_once(cluster, "weekly", jobs)
    assert "tidings_runs_total{" not in run_operator.metrics()


def test_long_annotation_values_act_exactly_once(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    cluster.create_manual_report(manifest("adhoc"), disableAfter=1)

    run_now = "n" * 300
    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: run_now})
    job = wait_for("the run-now Job", lambda: [j["metadata"]["name"] for j in cluster.jobs()])[0]
    kubelet.run(job, 75, result_line(False, error="relay down"))
    cluster.wait_status("adhoc", "Disabled", lambda s: s.get("phase") == "Disabled")
    cluster.batch.delete_namespaced_job(job, cluster.ns, propagation_policy="Background")
    wait_for("the counted Job to be deleted", lambda: cluster.job(job) is None)

    reactivate = "r" * 300
    cluster.annotate("adhoc", **{contract.REACTIVATE_ANNOTATION: reactivate})
    cluster.wait_status("adhoc", "reactivated", lambda s: s.get("phase") == "Manual")
    again = "m" * 300
    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: again})
    second = wait_for(
        "the second run-now Job",
        lambda: [j for j in cluster.jobs() if j["metadata"]["name"] != job],
    )[0]["metadata"]["name"]
    kubelet.run(second, 75, result_line(False, error="relay still down"))
    cluster.wait_status("adhoc", "Disabled again", lambda s: s.get("phase") == "Disabled")

    # A restart sees both long values again: neither acts a second time.
    run_operator.stop()
    run_operator.start()
    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: "marker"})
    status = cluster.wait_status(
        "adhoc", "marker handled", lambda s: s.get("runNowHandled") == digest("marker")
    )
    assert status["phase"] == "Disabled"
    assert cluster.job(job) is None  # not created again
    assert len(cluster.events("RunNowStarted", "adhoc")) == 3
    assert len(cluster.events("Reactivated", "adhoc")) == 1


def test_two_quick_run_nows_never_run_at_once(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    cluster.create_manual_report(manifest("adhoc"))
    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: "a"})
    wait_for("the first run", lambda: cluster.job(cj.run_now_job_name("adhoc", "a")))
    cluster.annotate("adhoc", **{contract.RUN_NOW_ANNOTATION: "b"})
    wait_for("the second run-now to wait", lambda: cluster.events("RunNowWaiting", "adhoc"))
    (first,) = cluster.jobs()
    kubelet.run(first["metadata"]["name"], 0, result_line(True))
    second = cj.run_now_job_name("adhoc", "b")
    wait_for("the waiting run-now to start", lambda: cluster.job(second))
    # By the time the second Job exists, the first has finished: never two pods at once.
    assert run_outcome.job_finished(cluster.job(first["metadata"]["name"])) is True
    cluster.wait_status("adhoc", "b handled", lambda s: s.get("runNowHandled") == digest("b"))
