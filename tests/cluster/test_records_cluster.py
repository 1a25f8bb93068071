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
from tests.support.delivery_records import record

from tidings import models
from tidings.controller import record_store, records
from tidings.controller.kube import Kube

pytestmark = pytest.mark.cluster

RUN = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
ARGS = (models.GROUP, models.VERSION)


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
