"""Fixtures for sending ScheduledReports to the real apiserver (CRD schema and admission tests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from tests.support.apiserver_reports import Reports


@pytest.fixture(scope="module")
def reports(control_plane, kube) -> Iterator[Reports]:
    """A namespace of this module's own and a way to create reports in it."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    name = f"sr-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield Reports(client.CustomObjectsApi(kube), name)
    core.delete_namespace(name)
