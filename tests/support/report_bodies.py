"""ScheduledReport bodies shared by the operator's unit and cluster tests, and their status."""

from __future__ import annotations

import copy
from typing import Any

from tidings import models

BASE_SPEC: dict[str, Any] = {
    "title": "Payments completed changes — weekly",
    "reportType": "changes_summary",
    "source": {"inline": {"rows": [{"id": 1, "status": "completed", "title": "Deploy"}]}},
    "schedule": "0 9 * * 1",
    "timeZone": "Europe/Berlin",
    "recipients": {"to": ["ciso@example.com"]},
    "failurePolicy": {"disableAfter": 3, "retries": 2, "timeoutSeconds": 600},
}


def report_body(name: str = "payments-weekly", namespace: str = "team-payments", **spec: Any):
    """A report as the API would return it (metadata filled in); `spec` entries override."""
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "0b7c0c4e-8d6e-4c47-9a7e-3f0e1b2c3d4e",
            "generation": 1,
            "annotations": {},
        },
        "spec": {**copy.deepcopy(BASE_SPEC), **spec},
    }


def manifest(name: str, **spec: Any) -> dict[str, Any]:
    """A report as a user applies it (no server-set metadata)."""
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": name},
        "spec": {**copy.deepcopy(BASE_SPEC), **spec},
    }


def with_status(report: dict, **status: Any) -> dict:
    report["status"] = status
    return report


def condition(status: dict, type_: str) -> dict:
    """The condition of type `type_` in a report's status."""
    return next(c for c in status["conditions"] if c["type"] == type_)
