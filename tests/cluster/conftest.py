"""Fixtures for sending ScheduledReports to the real apiserver (CRD schema and admission tests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import yaml
from tests.support.apiserver_reports import Reports
from tests.support.rbac_users import ROLES_FILE


@pytest.fixture(scope="module")
def reports(control_plane, kube) -> Iterator[Reports]:
    """A namespace of this module's own and a way to create reports in it."""
    from kubernetes import client

    core = client.CoreV1Api(kube)
    name = f"sr-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield Reports(client.CustomObjectsApi(kube), name)
    core.delete_namespace(name)


@pytest.fixture(scope="module")
def roles(control_plane, kube) -> Iterator[list[dict]]:
    """The chart's user ClusterRoles, applied as they are."""
    from kubernetes import client

    documents = [d for d in yaml.safe_load_all(ROLES_FILE.read_text()) if d]
    control_plane.kubectl("apply", "--server-side", "-f", str(ROLES_FILE))
    yield documents
    rbac = client.RbacAuthorizationV1Api(kube)
    for document in documents:
        rbac.delete_cluster_role(document["metadata"]["name"])
