"""ScheduledReports sent to the real apiserver the way kubectl sends them (strict field
validation), with the warnings it answers and the refusals read back."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tidings import models


@dataclass
class Reports:
    """Creates ScheduledReports in one namespace the way kubectl does (strict field validation)."""

    api: Any  # kubernetes.client.CustomObjectsApi
    namespace: str

    def create(self, name: str, spec: dict[str, Any], dry_run: bool = False) -> list[str]:
        """Create the report; returns the warnings the apiserver sent back."""
        body = {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "metadata": {"name": object_name(name)},
            "spec": spec,
        }
        _, _, headers = self.api.create_namespaced_custom_object_with_http_info(
            models.GROUP,
            models.VERSION,
            self.namespace,
            models.PLURAL,
            body,
            field_validation="Strict",
            dry_run="All" if dry_run else None,
        )
        return warnings_from(headers)

    def rejection(self, name: str, spec: dict[str, Any]) -> tuple[int, str]:
        """(HTTP status, message) of a create that must fail."""
        from kubernetes.client import ApiException

        try:
            self.create(name, spec)
        except ApiException as exc:
            return exc.status, json.loads(exc.body)["message"]
        pytest.fail(f"{name} was accepted")

    def get(self, name: str) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL, object_name(name)
        )

    def patch_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object_status(
            models.GROUP,
            models.VERSION,
            self.namespace,
            models.PLURAL,
            object_name(name),
            {"status": status},
        )


def object_name(text: str) -> str:
    """A case id as an object name: lowercase, dashes, at most 63 characters."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")


def warnings_from(headers: Any) -> list[str]:
    """The texts of the apiserver's `Warning: 299 - "text"` headers."""
    values = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    return [json.loads(v.split(" ", 2)[2]) for v in values]
