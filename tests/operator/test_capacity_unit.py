"""The release decision and the capacity-wait rules (controller/capacity.py), table-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.support.report_bodies import report_body

from tidings import contract
from tidings.controller import capacity, cronjob
from tidings.controller.capacity import Caps, Run
from tidings.controller.settings import Settings

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def run(name: str, minute: int = 0, ns: str = "a", suspended: bool = True) -> Run:
    return Run(ns, name, f"uid-{ns}-{name}", T0 + timedelta(minutes=minute), suspended, suspended)


def names(runs: list[Run]) -> list[str]:
    return [f"{r.namespace}/{r.name}" for r in runs]


def test_no_cap_releases_every_held_run() -> None:
    runs = [run("x"), run("y", ns="b"), run("z", suspended=False)]
    assert names(capacity.releases(runs, Caps(), NOW)) == ["a/x", "b/y"]


def test_cluster_cap_counts_running_and_releases_in_fire_order() -> None:
    runs = [run("late", 2), run("early", 0), run("mid", 1), run("going", suspended=False)]
    assert names(capacity.releases(runs, Caps(cluster=3), NOW)) == ["a/early", "a/mid"]
    full = [*runs, run("also", suspended=False, ns="b"), run("third", suspended=False, ns="c")]
    assert capacity.releases(full, Caps(cluster=3), NOW) == []


def test_namespace_cap_lets_other_namespaces_pass() -> None:
    runs = [run("a1", 0), run("a2", 1), run("b1", 2, ns="b"), run("busy", ns="a", suspended=False)]
    assert names(capacity.releases(runs, Caps(per_namespace=1), NOW)) == ["b/b1"]
    assert names(capacity.releases(runs, Caps(per_namespace=2), NOW)) == ["a/a1", "b/b1"]
    assert names(capacity.releases(runs, Caps(per_namespace=2, cluster=2), NOW)) == ["a/a1"]


def test_a_hold_keeps_its_run_and_lets_later_ones_pass() -> None:
    runs = [run("duplicate", 0), run("next", 1), run("after", 2)]

    def duplicate(r: Run) -> str | None:
        return "a second fire of the same slot" if r.name == "duplicate" else None

    assert names(capacity.releases(runs, Caps(cluster=1), NOW, [duplicate])) == ["a/next"]


def _job(**over: object) -> dict:
    job = {
        "metadata": {
            "name": "r-29000000",
            "namespace": "a",
            "uid": "u1",
            "creationTimestamp": "2026-12-07T09:00:01Z",
            "annotations": {
                contract.SCHEDULED_TIMESTAMP_ANNOTATION: "2026-12-07T10:00:00+01:00",
                capacity.CAPACITY_HOLD_ANNOTATION: "true",
            },
            "labels": {contract.REPORT_UID_LABEL: "report-u"},
        },
        "spec": {"suspend": True, "activeDeadlineSeconds": 600},
        "status": {},
    }
    job.update(over)
    return job


def test_run_of_reads_the_fire_time_and_who_holds_it() -> None:
    held = capacity.run_of(_job())
    assert (held.due, held.suspended, held.releasable) == (T0, True, True)
    assert (held.report_uid, held.scheduled) == ("report-u", True)
    kueue = _job()
    kueue["metadata"]["labels"][capacity.KUEUE_QUEUE_LABEL] = "reports"
    assert capacity.run_of(kueue).releasable is False  # Kueue admits it, not the operator
    by_hand = _job()
    del by_hand["metadata"]["annotations"][capacity.CAPACITY_HOLD_ANNOTATION]
    assert capacity.run_of(by_hand).releasable is False
    # A DST fall-back's second fire, created suspended by the slot webhook under a cap: the cap
    # must never release it (slot_guard deletes it instead).
    duplicate = _job()
    duplicate["metadata"]["annotations"][contract.DUPLICATE_OF_ANNOTATION] = "2026-10-25T00:30:00Z"
    assert capacity.run_of(duplicate).releasable is False
    run_now = _job()
    del run_now["metadata"]["annotations"][contract.SCHEDULED_TIMESTAMP_ANNOTATION]
    assert capacity.run_of(run_now).due == T0 + timedelta(seconds=1)
    assert capacity.run_of(run_now).scheduled is False  # jitter never delays a run-now


def _pod(phase: str = "Pending", scheduled: tuple[str, str, str] | None = None, waiting=None):
    status: dict = {"phase": phase, "conditions": []}
    if scheduled:
        state, reason, message = scheduled
        status["conditions"].append(
            {"type": "PodScheduled", "status": state, "reason": reason, "message": message}
        )
    if waiting:
        status["containerStatuses"] = [{"name": "renderer", "state": {"waiting": waiting}}]
    return {"metadata": {"creationTimestamp": "2026-12-07T09:00:02Z"}, "status": status}


FULL = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available."


@pytest.mark.parametrize(
    ("pods", "suspended", "waits"),
    [
        ([], True, True),  # held by the cap
        ([_pod(scheduled=("False", "Unschedulable", FULL))], False, True),
        ([_pod(scheduled=("False", "Unschedulable", "1 Too many pods"))], False, True),
        ([_pod(scheduled=("True", "", ""), waiting={"reason": "ContainerCreating"})], False, True),
        ([_pod(scheduled=("True", "", ""))], False, True),  # bound, no container status yet
        # Faults, not capacity: they show as RunNotStarted.
        ([_pod(scheduled=("False", "Unschedulable", "node(s) had untolerated taint"))], False,
         False),
        ([_pod(scheduled=("True", "", ""), waiting={"reason": "ImagePullBackOff"})], False, False),
        ([_pod(scheduled=("True", "", ""), waiting={"reason": "CreateContainerConfigError"})],
         False, False),
        ([], False, False),  # no pod at all: a quota or an admission policy
        ([_pod("Running", scheduled=("True", "", ""))], False, False),
    ],
)  # fmt: skip
def test_capacity_wait(pods: list, suspended: bool, waits: bool) -> None:
    job = _job(spec={"suspend": suspended})
    assert (capacity.capacity_wait(job, pods) is not None) is waits


def test_containers_created_for_too_long_are_a_fault() -> None:
    creating = _pod(scheduled=("True", "", ""), waiting={"reason": "ContainerCreating"})
    creating["status"]["conditions"][0]["lastTransitionTime"] = "2026-12-07T09:00:00Z"
    job = _job(spec={"suspend": False})
    soon, late = T0 + timedelta(seconds=60), T0 + timedelta(seconds=121)
    assert capacity.capacity_wait(job, [creating], soon, 120) is not None
    assert capacity.capacity_wait(job, [creating], late, 120) is None  # e.g. FailedMount
    full = _pod(scheduled=("False", "Unschedulable", FULL))
    assert capacity.capacity_wait(job, [full], late + timedelta(hours=1), 120) is not None


def test_kueue_wait_names_the_queue() -> None:
    job = _job()
    job["metadata"]["labels"][capacity.KUEUE_QUEUE_LABEL] = "reports"
    assert "Kueue" in (capacity.capacity_wait(job, []) or "")


def test_deadline_is_pushed_while_waiting_and_set_from_the_pod_start() -> None:
    job = _job(spec={"activeDeadlineSeconds": 600}, status={"startTime": "2026-12-07T09:00:00Z"})
    # Far from the deadline: left alone.
    assert capacity.pushed_deadline(job, T0 + timedelta(seconds=100), ahead=60) is None
    # Within `ahead` of it: the wait so far plus the whole timeout.
    assert capacity.pushed_deadline(job, T0 + timedelta(seconds=550), ahead=60) == 1150
    pushed = _job(
        spec={"activeDeadlineSeconds": 1150},
        status={"startTime": "2026-12-07T09:00:00Z"},
    )
    pushed["metadata"]["annotations"][capacity.TIMEOUT_ANNOTATION] = "600"
    # The pod started at 09:10: its run gets exactly its 600 s from then.
    start = T0 + timedelta(minutes=10)
    assert capacity.pushed_deadline(pushed, start, 0, pod_started=start) == 1200
    # A pod that started within seconds of its Job needs no write.
    quick = T0 + timedelta(seconds=3)
    assert capacity.pushed_deadline(job, quick, 0, pod_started=quick) is None
    # A suspended Job has no clock yet.
    assert capacity.pushed_deadline(_job(), T0, 60) is None


def test_pod_started_at_prefers_the_container() -> None:
    pod = _pod("Running")
    pod["status"]["startTime"] = "2026-12-07T09:00:03Z"
    pod["status"]["containerStatuses"] = [
        {"name": "renderer", "state": {"running": {"startedAt": "2026-12-07T09:00:09Z"}}}
    ]
    assert capacity.pod_started_at([pod]) == T0 + timedelta(seconds=9)
    assert capacity.pod_started_at([]) is None


def test_the_cap_makes_the_cronjob_create_its_runs_suspended() -> None:
    capped = Settings(smtp_host="relay", max_runs_per_namespace=2)
    template = cronjob.desired_cronjob(report_body(), capped, suspend=False)["spec"]["jobTemplate"]
    assert template["spec"]["suspend"] is True
    assert template["metadata"]["annotations"][capacity.CAPACITY_HOLD_ANNOTATION] == "true"
    # The pod template is untouched: runs still match the CronJob (run_ownership).
    plain = cronjob.desired_cronjob(report_body(), Settings(smtp_host="relay"), suspend=False)
    plain_template = plain["spec"]["jobTemplate"]
    assert plain_template["spec"]["suspend"] is False  # explicit: switching the cap off shows
    assert capacity.CAPACITY_HOLD_ANNOTATION not in plain_template["metadata"]["annotations"]
    assert plain_template["spec"]["template"] == template["spec"]["template"]


def test_jitter_is_fixed_per_report_bounded_and_spread() -> None:
    offsets = [capacity.jitter_offset(f"uid-{i}", 300) for i in range(200)]
    assert offsets == [capacity.jitter_offset(f"uid-{i}", 300) for i in range(200)]
    assert 0 <= min(offsets) < 30 and 270 < max(offsets) <= 300
    assert capacity.jitter_offset("uid-1", 0) == 0


def test_a_jittered_run_waits_for_its_offset_and_run_now_does_not() -> None:
    caps = Caps(jitter=300)
    offset = capacity.jitter_offset("report-a", 300)
    scheduled = Run("a", "r-1", "u1", T0, True, True, "report-a", scheduled=True)
    by_hand = Run("a", "r-r1", "u2", T0, True, True, "report-a", scheduled=False)
    just_before = T0 + timedelta(seconds=offset - 1)
    assert capacity.releases([scheduled, by_hand], caps, just_before) == [by_hand]
    at = T0 + timedelta(seconds=offset)
    assert capacity.releases([scheduled], caps, at) == [scheduled]


def test_next_send_at_says_when_the_jittered_run_starts() -> None:
    def every_hour(schedule: str, zone: str, after: datetime) -> datetime:
        return after.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    fires = capacity.jittered(every_hour, 90)
    # Between 09:00 and 09:01:30 the 09:00 run has not started yet: NEXT still says 09:01:30.
    assert fires("", "UTC", T0 + timedelta(seconds=30)) == T0 + timedelta(seconds=90)
    assert fires("", "UTC", T0 + timedelta(seconds=91)) == T0 + timedelta(hours=1, seconds=90)
    assert capacity.jittered(every_hour, 0) is every_hour


def test_jitter_alone_holds_runs_for_the_operator() -> None:
    jittery = Settings(smtp_host="relay", start_jitter_seconds=120)
    template = cronjob.desired_cronjob(report_body(), jittery, suspend=False)["spec"]["jobTemplate"]
    assert template["spec"]["suspend"] is True


def test_a_timeout_after_a_pushed_deadline_names_the_report_timeout() -> None:
    from tidings.controller import run_outcome

    job = _job(
        spec={"activeDeadlineSeconds": 1150},
        status={
            "startTime": "2026-12-07T09:00:00Z",
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"},
            ],
        },
    )
    job["metadata"]["annotations"][capacity.TIMEOUT_ANNOTATION] = "600"
    outcome = run_outcome.job_outcome(job, [], T0 + timedelta(minutes=20))
    assert outcome is not None and outcome.failure == "timeout"
    assert "timeout of 600s" in outcome.error
