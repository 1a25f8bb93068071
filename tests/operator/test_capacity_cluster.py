"""Bursts on the real control plane (kube-apiserver, etcd, kube-controller-manager's Job and
CronJob controllers; pods finished by the stand-in kubelet): the concurrent-run cap holds runs
suspended and releases them in fire order, a namespace editor's Jobs take no slot and are never
released, and a run waiting for capacity neither shows RunNotStarted nor times out."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from tests.support.operator_harness import (
    MONDAY,
    Cluster,
    OperatorProcess,
    StandInKubelet,
    finished,
    history,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import contract
from tidings.controller import capacity
from tidings.controller import cronjob as cj
from tidings.schedule import next_fire_time, parse_rfc3339, rfc3339

pytestmark = pytest.mark.cluster

CAP = 2
RUNS = 5


@pytest.fixture
def operator_env() -> dict[str, str]:
    # A short start bound: a held run that counted as stuck would show within the test.
    return {"TIDINGS_MAX_CONCURRENT_RUNS": str(CAP), "TIDINGS_RUN_START_TIMEOUT": "5"}


def _done(job: dict) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or ()
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


def going(cluster: Cluster, ours: list[str]) -> set[str]:
    """Which of `ours` are unsuspended and unfinished now."""
    return {
        job["metadata"]["name"]
        for job in cluster.jobs()
        if job["metadata"]["name"] in ours and not job["spec"].get("suspend") and not _done(job)
    }


class Watcher(threading.Thread):
    """Polls the Jobs: the most of ours unsuspended at once, and the order they were let go."""

    def __init__(self, cluster: Cluster, ours: list[str]) -> None:
        super().__init__(daemon=True)
        self.cluster, self.ours = cluster, ours
        self.most, self.order = 0, []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            now = going(self.cluster, self.ours)
            self.most = max(self.most, len(now))
            self.order += sorted(now - set(self.order))
            self.done.wait(0.05)


def _forged(cluster: Cluster, report: str, name: str, suspended: bool) -> str:
    """A namespace editor's Job: the report's labels, owned by its CronJob, her container."""
    job = cj.job_from_template(cluster.cronjob(report), name, {})
    job["spec"]["suspend"] = suspended
    container = job["spec"]["template"]["spec"]["containers"][0]
    container.update(image="busybox", command=["sh", "-c", "sleep 3600"])
    cluster.batch.create_namespaced_job(cluster.ns, job)
    return name


def test_cap_releases_in_fire_order_and_counts_only_its_own_runs(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    names = [f"burst-{i}" for i in range(RUNS)]
    for name in names:
        cluster.create_report(manifest(name))
    for name in names:
        cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")
        template = cluster.cronjob(name)["spec"]["jobTemplate"]
        assert template["spec"]["suspend"] is True  # the cap makes every run born held
    # Her Jobs first: one running (it must take no slot), one held that looks releasable.
    squatter = _forged(cluster, names[0], "squatter", suspended=False)
    sneaky = _forged(cluster, names[0], "sneaky", suspended=True)
    wait_for("her Jobs refused", lambda: len(cluster.events("ForeignRun", names[0])) == 2)

    # Five runs due in the same burst. The first two take the slots as they come; the three
    # that wait, created last-due first, are released oldest fire time first.
    fire = {name: MONDAY + timedelta(seconds=10 * i) for i, name in enumerate(names)}
    created = names[:CAP] + list(reversed(names[CAP:]))
    jobs = {name: cluster.create_scheduled_job(name, fire[name]) for name in created}
    due_order = [jobs[name] for name in names]
    watcher = Watcher(cluster, due_order)
    watcher.start()
    pending, bound = list(due_order), set()
    try:
        while pending:
            wanted = min(CAP, len(pending))
            wait_for(f"{wanted} runs going", lambda w=wanted: len(going(cluster, due_order)) == w)
            now_going = going(cluster, due_order)
            assert now_going == set(pending[:wanted]), "released out of fire order"
            for job in sorted(now_going - bound):
                kubelet.unschedulable(kubelet.pending_pod(job))  # a full node: capacity
                bound.add(job)
            oldest = pending.pop(0)
            kubelet.finish(kubelet.pending_pod(oldest), 0, json.dumps(result_line(True)))
            finished(cluster, oldest)
    finally:
        watcher.done.set()
        watcher.join()

    assert watcher.most == CAP  # never more, and the squatter took no slot
    assert watcher.order == due_order
    for name in names:
        status = cluster.wait_status(
            name, "its run counted", lambda s, j=jobs[name]: j in history(s)
        )
        assert history(status)[jobs[name]]["outcome"] == "Delivered", status
        assert not cluster.events("RunNotStarted", name)
    assert cluster.job(sneaky)["spec"]["suspend"] is True  # hers is never released
    assert not cluster.job(squatter)["spec"].get("suspend")


@pytest.mark.parametrize("operator_env", [{"TIDINGS_RUN_START_TIMEOUT": "2"}])
def test_a_capacity_wait_longer_than_the_timeout_is_not_a_failure(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    """No cap: the pod waits for room on a full node longer than the run's whole timeout (30 s);
    the operator pushes the deadline on, and the run's 30 s count from its pod's start."""
    cluster.create_manual_report(manifest("waits"), timeoutSeconds=30)
    cluster.annotate("waits", **{contract.RUN_NOW_ANNOTATION: "burst"})
    job = cj.run_now_job_name("waits", "burst")
    pod = kubelet.pending_pod(job)
    kubelet.unschedulable(pod)  # the node is full: it waits for room, not stuck
    wait_for(
        "the deadline pushed past the wait",
        lambda: cluster.job(job)["spec"]["activeDeadlineSeconds"] > 30,
        timeout=40,
    )
    started = cluster.job(job)["status"]["startTime"]
    while (time.time() - parse_rfc3339(started).timestamp()) < 40:  # past the 30 s timeout
        assert not _done(cluster.job(job)), cluster.job(job)["status"]
        time.sleep(1)
    kubelet.finish(pod, 0, json.dumps(result_line(True)))
    status = cluster.wait_status("waits", "the run counted", lambda s: job in history(s))
    assert history(status)[job]["outcome"] == "Delivered", status
    assert not cluster.events("RunNotStarted", "waits")
    final = cluster.job(job)
    assert final["metadata"]["annotations"][capacity.TIMEOUT_ANNOTATION] == "30"
    assert final["spec"]["activeDeadlineSeconds"] > 40  # past the wait: the timeout came after


@pytest.mark.parametrize("operator_env", [{"TIDINGS_START_JITTER_SECONDS": "30"}])
def test_jitter_starts_each_report_at_its_own_offset_and_next_says_so(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    # A report whose offset is big enough to see (uids are random; most are).
    for attempt in range(10):
        name = f"spread-{attempt}"
        report = cluster.create_report(manifest(name))
        offset = capacity.jitter_offset(report["metadata"]["uid"], 30)
        if 10 <= offset <= 25:
            break
    status = cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")
    spec = report["spec"]
    after = parse_rfc3339(status["nextSendAt"]) - timedelta(seconds=offset + 1)
    fire = next_fire_time(spec["schedule"], spec["timeZone"], after)
    assert status["nextSendAt"] == rfc3339(fire + timedelta(seconds=offset))  # NEXT is honest

    due = datetime.now(UTC).replace(microsecond=0)
    job = cluster.create_scheduled_job(name, due)
    deadline = due + timedelta(seconds=offset)
    while datetime.now(UTC) < deadline - timedelta(seconds=1):
        assert cluster.job(job)["spec"]["suspend"] is True, "released before its offset"
        time.sleep(0.5)
    wait_for("the run released at its offset", lambda: not cluster.job(job)["spec"]["suspend"])
    assert datetime.now(UTC) < deadline + timedelta(seconds=10)
    kubelet.run(job, 0, result_line(True))
    status = cluster.wait_status(name, "the run counted", lambda s: job in history(s))
    assert history(status)[job]["outcome"] == "Delivered"


@pytest.mark.parametrize("operator_env", [{"TIDINGS_RUN_START_TIMEOUT": "2"}])
def test_containers_created_for_longer_than_the_bound_are_stuck_not_waiting(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    """ContainerCreating is a busy node for a while; past the start bound it is what a
    missing Secret volume looks like, and shows RunNotStarted as before."""
    cluster.create_manual_report(manifest("mounts"), timeoutSeconds=30)
    cluster.annotate("mounts", **{contract.RUN_NOW_ANNOTATION: "stuck"})
    job = cj.run_now_job_name("mounts", "stuck")
    kubelet.creating(kubelet.pending_pod(job))
    wait_for("RunNotStarted", lambda: cluster.events("RunNotStarted", "mounts"), timeout=30)
    assert cluster.job(job)["spec"]["activeDeadlineSeconds"] == 30  # not pushed on
