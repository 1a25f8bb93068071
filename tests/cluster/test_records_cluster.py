"""ReportDelivery records on the real apiserver: the generated CRD takes the operator's record,
refuses any change to it, a second write of the same Job is a no-op, and retention prunes by
age with the clock injected, whether or not the report still exists."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tidings import models
from tidings.contract import ResultLine
from tidings.controller import record_store, records
from tidings.controller.kube import Kube
from tidings.controller.run_outcome import RunOutcome
from tidings.schedule import rfc3339

pytestmark = pytest.mark.cluster

RUN = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
ARGS = (models.GROUP, models.VERSION)


def record(namespace: str, job: str, finished: datetime, days: int | None = None) -> dict:
    report = {
        "metadata": {"name": "payments-weekly", "namespace": namespace, "uid": "gone-report-uid"},
        "spec": {"title": "Payments", "reportType": "changes_summary"},
    }
    if days:
        report["spec"]["delivery"] = {"retentionDays": days}
    job_object = {
        "metadata": {"name": job, "namespace": namespace, "uid": f"{job}-uid-0000"},
        "status": {"startTime": rfc3339(finished - timedelta(minutes=1))},
    }
    outcome = RunOutcome(
        job_name=job,
        delivered=True,
        failure=None,
        finished_at=rfc3339(finished),
        window_start="2026-08-24T00:00:00Z",
        window_end="2026-08-31T00:00:00Z",
        recipients_accepted=1,
        bytes=1000,
        renderer="pdf",
        message_id="<tidings.x@example.com>",
    )
    result = ResultLine(outcome="Delivered", addresses={"to": {"accepted": ["lead@example.com"]}})
    return records.delivery_record(report, job_object, outcome, result, records.Retention())


def listed(kube, namespace: str) -> list[str]:
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        *ARGS,
        namespace,
        models.DELIVERY_PLURAL,
        label_selector="tidings.dev/report=payments-weekly",
    )["items"]
    return sorted(i["metadata"]["name"] for i in items)


def test_a_record_is_written_once_and_never_changed(kube, namespace) -> None:
    body = record(namespace, "payments-weekly-1", RUN)
    ops = Kube(kube)
    assert asyncio.run(record_store.create_record(ops, body)) is True
    assert asyncio.run(record_store.create_record(ops, body)) is False  # 409: already recorded
    assert listed(kube, namespace) == [body["metadata"]["name"]]

    api = client.CustomObjectsApi(kube)
    stored: dict[str, Any] = api.get_namespaced_custom_object(
        *ARGS, namespace, models.DELIVERY_PLURAL, body["metadata"]["name"]
    )
    assert stored["spec"] == body["spec"]  # nothing pruned by the schema
    for change in (
        {"spec": {"outcome": "Failed"}},
        {"spec": {"recipients": {"bcc": {"accepted": ["someone@else.example"]}}}},
    ):
        with pytest.raises(ApiException) as refused:
            api.patch_namespaced_custom_object(
                *ARGS, namespace, models.DELIVERY_PLURAL, body["metadata"]["name"], change
            )
        assert refused.value.status == 422
        assert "a ReportDelivery is a record of a run and cannot be changed" in refused.value.body


def test_retention_prunes_by_age_with_the_clock_injected(kube, namespace) -> None:
    ops = Kube(kube)
    old = record(namespace, "payments-weekly-old", RUN - timedelta(days=91))
    week = record(namespace, "payments-weekly-week", RUN - timedelta(days=8), days=7)
    fresh = record(namespace, "payments-weekly-new", RUN - timedelta(days=1))
    for body in (old, week, fresh):
        assert asyncio.run(record_store.create_record(ops, body))
    rules = records.Retention()
    # The report these records belong to does not exist: they are pruned all the same.
    deleted = asyncio.run(record_store.prune(ops, RUN, rules, [namespace]))
    assert sorted(deleted) == sorted(f"{namespace}/{b['metadata']['name']}" for b in (old, week))
    assert listed(kube, namespace) == [fresh["metadata"]["name"]]
    # Pruning again at the same time finds nothing; 89 days later the last one goes.
    assert asyncio.run(record_store.prune(ops, RUN, rules, [namespace])) == []
    later = RUN + timedelta(days=89)
    assert asyncio.run(record_store.prune(ops, later, rules, [namespace])) == [
        f"{namespace}/{fresh['metadata']['name']}"
    ]
    assert listed(kube, namespace) == []
