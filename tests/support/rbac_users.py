"""Real users on the test control plane: the chart's user ClusterRoles, RoleBindings for a user,
and waiting until the authorizer grants what they should (aggregation is asynchronous)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tidings import models
from tidings_dev.cluster import REPO_ROOT

ROLES_FILE = REPO_ROOT / "charts" / "tidings" / "templates" / "user-clusterroles.yaml"


def wait_allowed(kube, user: str, namespace: str, verb: str, timeout: float = 60) -> None:
    """Aggregation is asynchronous (the clusterrole-aggregation controller): wait until the
    authorizer grants what the bindings should give."""
    from kubernetes import client

    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=["system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                group=models.GROUP, resource=models.PLURAL, verb=verb, namespace=namespace
            ),
        )
    )
    api = client.AuthorizationV1Api(kube)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.create_subject_access_review(review).status.allowed:
            return
        time.sleep(0.3)
    pytest.fail(f"{user} never got {verb} on {models.PLURAL} in {namespace}")


def role_binding(name: str, cluster_role: str, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": cluster_role,
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
