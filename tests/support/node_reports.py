"""Reports on the real node's cluster, applied with kubectl as a user would, and waiting for what
the operator makes of them."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from tests.support import operator_harness
from tests.support.node_cluster import NodeCluster

from tidings import models

WAIT = 180.0  # a failsafe for eventual states, not a performance claim
# Completed yesterday: inside the default window (the last 7 days) of any run today.
_YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
ROWS = [
    {
        "id": 1,
        "status": "completed",
        "title": "Rotate the payment keys",
        "completed_at": _YESTERDAY,
    },
    {"id": 2, "status": "completed", "title": "Upgrade the ledger", "completed_at": _YESTERDAY},
]


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    return operator_harness.wait_for(what, probe, timeout)


class Reports:
    """Reports in one fresh namespace, applied with kubectl as a user would."""

    def __init__(self, cluster: NodeCluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(cluster.api)
        self.core = client.CoreV1Api(cluster.api)
        self.batch = client.BatchV1Api(cluster.api)

    def apply(self, name: str, check: bool = True, **spec: Any) -> subprocess.CompletedProcess:
        body = {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "title": f"Payments changes {name}",
                "reportType": "changes_summary",
                "source": {"inline": {"rows": ROWS}},
                "recipients": {"to": ["ciso@example.com"]},
                **spec,
            },
        }
        return self.cluster.kubectl("apply", "-f", "-", input=json.dumps(body), check=check)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL, name
        )

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def wait_status(self, name: str, what: str, check: Callable[[dict], bool]) -> dict:
        return wait_for(f"{name}: {what}", lambda: (s := self.status(name)) and check(s) and s)

    def annotate(self, name: str, key: str, value: str) -> None:
        self.cluster.kubectl(
            "-n", self.namespace, "annotate", "sr", name, "--overwrite", f"{key}={value}"
        )

    def run_now(self, name: str) -> str:
        value = uuid.uuid4().hex[:10]
        self.annotate(name, "tidings.dev/run-now", value)
        return value

    def cronjob(self, name: str) -> client.V1CronJob:
        return self.batch.read_namespaced_cron_job(name, self.namespace)

    def events(self, reason: str) -> list[client.CoreV1Event]:
        items = self.core.list_namespaced_event(self.namespace).items
        return [e for e in items if e.reason == reason]

    def running_renderer_pod(self) -> client.V1Pod:
        def probe() -> client.V1Pod | None:
            for pod in self.core.list_namespaced_pod(self.namespace).items:
                statuses = pod.status.container_statuses or []
                if any(s.name == "renderer" and s.state.running for s in statuses):
                    return pod
            return None

        return wait_for("a running renderer pod", probe)
