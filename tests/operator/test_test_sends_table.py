"""Table tests of test sends against a fake Kube (controller.reconcile.start_test_send): one in
flight per report (a new value waits), a per-namespace hourly limit (an Event when hit),
finished test Jobs left to the TTL controller, and an address at its admission maximum acted
on exactly once."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from typing import Any

from tests.support.fake_kube import FakeKube

from tidings import models
from tidings.controller import testsend
from tidings.controller.kube import job_path, report_path
from tidings.controller.reconcile import sync_report
from tidings.controller.settings import Settings
from tidings.controller.state import OperatorState

NS = "team-payments"
NAME = "payments-weekly"
SPEC: dict[str, Any] = {
    "title": "Payments weekly",
    "reportType": "changes_summary",
    "source": {"inline": {"rows": [{"id": 1, "status": "completed", "title": "Deploy"}]}},
    "schedule": "0 9 * * 1",
    "timeZone": "Europe/Berlin",
    "recipients": {"to": ["ciso@example.com"]},
}


def reconciled(**settings: Any) -> OperatorState:
    kube = FakeKube()
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": NAME, "annotations": {}},
        "spec": copy.deepcopy(SPEC),
    }
    kube.put(report_path(NS), body)
    state = OperatorState(
        settings=dataclasses.replace(Settings(), **settings),
        kube=kube,  # type: ignore[arg-type]
        instance="test",
    )
    asyncio.run(sync_report(state, NS, NAME))
    return state


def kube_of(state: OperatorState) -> FakeKube:
    return state.kube  # type: ignore[return-value]


def send_test(state: OperatorState, address: str | None) -> None:
    kube = kube_of(state)
    report = kube.objects[report_path(NS, NAME)]
    report["metadata"]["annotations"][testsend.ANNOTATION] = address
    if address is None:
        del report["metadata"]["annotations"][testsend.ANNOTATION]
    asyncio.run(sync_report(state, NS, NAME))


def started_tests(state: OperatorState) -> list[dict[str, Any]]:
    return [j for j in kube_of(state).of_kind("jobs") if testsend.recipient_of(j)]


def finish_all(state: OperatorState) -> None:
    for job in started_tests(state):
        stored = kube_of(state).objects[job_path(NS, job["metadata"]["name"])]
        stored["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}


def reasons(state: OperatorState) -> list[str]:
    return [e["reason"] for e in kube_of(state).of_kind("events")]


def test_twenty_quick_toggles_give_one_test_job_in_flight() -> None:
    state = reconciled()
    for number in range(20):
        send_test(state, f"tester{number}@example.com")
    [job] = started_tests(state)
    assert testsend.recipient_of(job) == "tester0@example.com"
    assert reasons(state).count("TestSendWaiting") == 19  # one per waiting value
    # The run ends: the latest value waiting starts, once.
    finish_all(state)
    asyncio.run(sync_report(state, NS, NAME))
    asyncio.run(sync_report(state, NS, NAME))
    assert sorted(testsend.recipient_of(j) or "" for j in started_tests(state)) == [
        "tester0@example.com",
        "tester19@example.com",
    ]


def test_the_namespace_limit_refuses_with_an_event() -> None:
    state = reconciled(test_sends_per_hour=3)
    for number in range(5):
        send_test(state, f"tester{number}@example.com")
        finish_all(state)
    assert len(started_tests(state)) == 3
    assert reasons(state).count("TestSendRateLimited") == 2
    status = kube_of(state).objects[report_path(NS, NAME)]["status"]
    assert status["testSendCount"] == 3  # refused ones start nothing and are not retried


def test_a_finished_test_job_is_left_to_the_ttl_controller() -> None:
    state = reconciled()
    send_test(state, "tester@example.com")
    [job] = started_tests(state)
    assert job["spec"]["ttlSecondsAfterFinished"] == testsend.FINISHED_TTL


def test_an_address_at_the_admission_maximum_starts_exactly_one_job() -> None:
    address = f"{'a' * 64}@{'b' * 63}.{'b' * 63}.{'b' * 57}.com"
    assert len(address) == 254 and testsend.annotation_problem(address) is None
    state = reconciled()
    send_test(state, address)
    for _ in range(5):
        finish_all(state)
        asyncio.run(sync_report(state, NS, NAME))
    assert len(started_tests(state)) == 1
