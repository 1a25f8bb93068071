"""Test sends on the real control plane (issue 20): a 254-character address (the admission
maximum) gives exactly one test Job, and 20 quick send-test toggles give at most one test Job
in flight and, past the namespace's hourly limit, the TestSendRateLimited Warning."""

from __future__ import annotations

import time

import pytest
from tests.support.operator_harness import Cluster, OperatorProcess, StandInKubelet, wait_for
from tests.support.report_bodies import manifest

from tidings.controller import testsend

pytestmark = pytest.mark.cluster

LONG = f"{'a' * 64}@{'b' * 63}.{'b' * 63}.{'b' * 57}.com"


@pytest.fixture
def operator_env() -> dict[str, str]:
    return {"TIDINGS_TEST_SENDS_PER_NAMESPACE_PER_HOUR": "3"}


def started_tests(cluster: Cluster) -> list[dict]:
    return [j for j in cluster.jobs() if testsend.recipient_of(j)]


def running(cluster: Cluster) -> list[dict]:
    return [
        j
        for j in started_tests(cluster)
        if not any(c["status"] == "True" for c in j.get("status", {}).get("conditions", []))
    ]


def test_one_in_flight_exactly_once_and_the_hourly_limit(
    run_operator: OperatorProcess, cluster: Cluster, kubelet: StandInKubelet
) -> None:
    assert len(LONG) == 254
    cluster.create_report(manifest("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    cluster.annotate("weekly", **{testsend.ANNOTATION: LONG})
    cluster.wait_status("weekly", "the long address handled", lambda s: s.get("testSendCount"))
    time.sleep(3)  # a loop would have started more by now
    assert len(started_tests(cluster)) == 1

    for number in range(20):
        cluster.annotate("weekly", **{testsend.ANNOTATION: f"t{number}@example.com"})
        assert len(running(cluster)) <= 1
    wait_for("TestSendWaiting", lambda: cluster.events("TestSendWaiting", "weekly"))
    assert len(running(cluster)) == 1 and len(started_tests(cluster)) == 1

    # Each run that ends lets the latest waiting value start, until the limit (3) is used up.
    for started in (2, 3):
        (job,) = running(cluster)
        kubelet.run(job["metadata"]["name"], 0, None)
        wait_for(
            f"test send #{started}",
            lambda n=started: len(started_tests(cluster)) == n and running(cluster),
        )
        cluster.annotate("weekly", **{testsend.ANNOTATION: f"again{started}@example.com"})
    (job,) = running(cluster)
    kubelet.run(job["metadata"]["name"], 0, None)
    wait_for(
        "the TestSendRateLimited Warning",
        lambda: cluster.events("TestSendRateLimited", "weekly"),
    )
    assert len(started_tests(cluster)) == 3
    assert all(j["spec"]["ttlSecondsAfterFinished"] for j in started_tests(cluster))
