"""Job outcomes -> report status, with the real Job controller deciding each Job's fate and a
stand-in kubelet ending the pods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from op_harness import Cluster, OperatorProcess, StandInKubelet, result_line, wait_for
from sr_bodies import manifest

from tidings.controller import cronjob as cj

pytestmark = pytest.mark.cluster

MONDAY = datetime(2025, 3, 31, 7, 0, tzinfo=UTC)  # Monday 09:00 Europe/Berlin


def _finished(cluster: Cluster, job: str) -> dict:
    def probe() -> dict | None:
        found = cluster.job(job)
        conditions = (found or {}).get("status", {}).get("conditions", [])
        done = any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions
        )
        return found if done else None

    return wait_for(f"Job {job} to finish", probe)


def _history(status: dict) -> dict[str, dict]:
    return {h["jobName"]: h for h in status.get("history", [])}


def _recorded(cluster: Cluster, name: str, job: str) -> dict:
    return cluster.wait_status(name, f"{job} recorded", lambda s: job in _history(s))


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
    entry = _history(status)[ok]
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
    assert cj.REACTIVATE_ANNOTATION in disabled.message

    # The annotation reactivates, once per value.
    cluster.annotate("weekly", **{cj.REACTIVATE_ANNOTATION: "fixed-relay"})
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
    job = _finished(cluster, permanent)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert len(cluster.pods(permanent)) == 1
    status = _recorded(cluster, "weekly", permanent)
    assert _history(status)[permanent]["error"] == "550 5.1.1 no such mailbox"
    delivered = next(c for c in status["conditions"] if c["type"] == "Delivered")
    assert delivered["reason"] == "PermanentFailure"

    transient = cluster.create_scheduled_job("weekly", MONDAY + timedelta(weeks=1))
    unconfirmed = "delivery unconfirmed, not sent again: outcome unknown (closed)"
    kubelet.run(transient, 75, result_line(False, error=unconfirmed))
    job = _finished(cluster, transient)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert len(cluster.pods(transient)) == 1  # no second pod, no second copy
    status = _recorded(cluster, "weekly", transient)
    assert _history(status)[transient]["error"] == unconfirmed  # not "after N attempts"
    assert status["consecutiveFailures"] == 2
    assert cluster.report("weekly")["metadata"]["generation"] == 1


def test_run_now_starts_one_job_per_value(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    cluster.create_report(manifest("adhoc", schedule=""))
    cluster.wait_status("adhoc", "Manual", lambda s: s.get("phase") == "Manual")

    cluster.annotate("adhoc", **{cj.RUN_NOW_ANNOTATION: "first"})
    cluster.wait_status("adhoc", "first handled", lambda s: s.get("runNowHandled") == "first")
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
    cluster.annotate("adhoc", **{cj.RUN_NOW_ANNOTATION: "second"})
    cluster.wait_status("adhoc", "second handled", lambda s: s.get("runNowHandled") == "second")
    names = sorted(j["metadata"]["name"] for j in cluster.jobs())
    assert len(names) == 2
    assert names == sorted(
        [cj.run_now_job_name("adhoc", "first"), cj.run_now_job_name("adhoc", "second")]
    )
    assert len(cluster.events("RunNowStarted", "adhoc")) == 2
    assert cluster.report("adhoc")["metadata"]["generation"] == 1


def test_jobs_finished_while_stopped_are_counted_once(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    spec = {"failurePolicy": {"disableAfter": 5, "retries": 0, "timeoutSeconds": 600}}
    cluster.create_report(manifest("weekly", **spec))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    first = cluster.create_scheduled_job("weekly", MONDAY)
    second = cluster.create_scheduled_job("weekly", MONDAY + timedelta(weeks=1))
    kubelet.pending_pod(first)
    kubelet.pending_pod(second)

    run_operator.stop()
    kubelet.run(first, 0, result_line(True))
    _finished(cluster, first)
    kubelet.run(second, 75, result_line(False, error="relay down"))
    _finished(cluster, second)
    run_operator.start()

    status = cluster.wait_status(
        "weekly", "both recorded", lambda s: {first, second} <= set(_history(s))
    )
    assert status["consecutiveFailures"] == 1  # the failure finished after the success
    assert status["lastError"] == "relay down"
    assert len(status["history"]) == 2
    # kopf posts Events from a background queue: wait for them before stopping it again.
    wait_for(
        "one Delivered and one RunFailed Event",
        lambda: (
            len(cluster.events("RunFailed", "weekly")) == 1
            and len(cluster.events("Delivered", "weekly")) == 1
        ),
    )

    # Listed again on another restart: both Jobs are seen again, nothing is counted twice.
    restart_and_see_jobs(run_operator, [first, second])
    status = cluster.status("weekly")
    assert len(status["history"]) == 2
    assert status["consecutiveFailures"] == 1
    assert len(cluster.events("RunFailed", "weekly")) == 1
    assert len(cluster.events("Delivered", "weekly")) == 1
    assert cluster.report("weekly")["metadata"]["generation"] == 1


def restart_and_see_jobs(operator: OperatorProcess, jobs: list[str]) -> None:
    """Restart the operator and wait until it has handled each finished Job again."""
    offset = operator.log_path.stat().st_size
    operator.stop()
    operator.start()
    wait_for(
        "the restarted operator to handle the Jobs again",
        lambda: all(
            f'"name": "{job}"' in line and "job_changed" in line
            for job in jobs
            for line in [_line_for(operator, offset, job)]
        ),
    )


def _line_for(operator: OperatorProcess, offset: int, name: str) -> str:
    """The first log line after `offset` that is about object `name` (JSON logs)."""
    with operator.log_path.open() as log:
        log.seek(offset)
        return next((line for line in log if f'"name": "{name}"' in line), "")
