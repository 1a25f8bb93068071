"""Table test: in a namespace being deleted, a finished (or cancelled) run is let go without
its record or Events, so the namespace's deletion does not wait for it forever."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import pytest
from tests.support.fake_kube import FakeKube

from tidings import contract, models
from tidings.controller import cronjob
from tidings.controller.job_outcomes import job_changed
from tidings.controller.kube import cronjob_path, job_path, report_path
from tidings.controller.reconcile import sync_report
from tidings.controller.settings import Settings
from tidings.controller.state import OperatorState

NS = "team-payments"
NAME = "payments-weekly"
JOB = "payments-weekly-29412345"
SPEC: dict[str, Any] = {
    "title": "Payments weekly",
    "reportType": "changes_summary",
    "source": {"inline": {"rows": [{"id": 1, "status": "completed", "title": "Deploy"}]}},
    "schedule": "0 9 * * 1",
    "timeZone": "Europe/Berlin",
    "recipients": {"to": ["ciso@example.com"]},
}


def test_a_held_run_in_a_terminating_namespace_is_let_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = FakeKube()
    state = OperatorState(settings=Settings(), kube=kube, instance="test")  # type: ignore[arg-type]
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": NAME, "annotations": {}},
        "spec": copy.deepcopy(SPEC),
    }
    kube.put(report_path(NS), body)
    asyncio.run(sync_report(state, NS, NAME))
    template = kube.objects[cronjob_path(NS, cronjob.cronjob_name(NAME))]
    job = cronjob.job_from_template(template, JOB, {})
    job["metadata"]["finalizers"] = [contract.FINALIZER]
    stored = kube.put(job_path(NS), job)
    asyncio.run(kube.delete(job_path(NS, JOB)))  # the namespace controller deletes it, running
    kube.terminating.add(NS)
    status_before = copy.deepcopy(kube.objects[report_path(NS, NAME)]["status"])
    events_before = len(kube.of_kind("events"))
    with caplog.at_level(logging.WARNING, "tidings.operator"):
        asyncio.run(job_changed(state, "MODIFIED", kube.objects[job_path(NS, JOB)]))
    assert job_path(NS, JOB) not in kube.objects  # its last finalizer went: it is gone
    assert kube.of_kind(models.DELIVERY_PLURAL) == []
    assert len(kube.of_kind("events")) == events_before
    assert kube.objects[report_path(NS, NAME)]["status"] == status_before
    assert f"namespace {NS} is being deleted: Job {JOB}" in caplog.text
    assert stored["metadata"]["uid"] not in state.own_jobs
