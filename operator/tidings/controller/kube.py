"""The few Kubernetes API calls the operator makes, on plain JSON dicts (camelCase, exactly as
served), so the pure modules see the same shapes in tests and in production.

The `kubernetes` client is synchronous; each call runs in a worker thread so kopf's event loop
never blocks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tidings import models

MERGE_PATCH = "application/merge-patch+json"


def load_api_client(pool_size: int | None = None) -> client.ApiClient:
    """In-cluster credentials inside a pod, else $KUBECONFIG / ~/.kube/config; `pool_size`
    connections kept open (the client's default is 5 per core)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    if pool_size:
        configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def report_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{namespace}/{models.PLURAL}"
    return f"{base}/{name}" if name else base


def delivery_path(namespace: str = "", name: str = "") -> str:
    """ReportDeliveries in a namespace, or in every namespace when `namespace` is empty."""
    if not namespace:
        return f"/apis/{models.GROUP}/{models.VERSION}/{models.DELIVERY_PLURAL}"
    base = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{namespace}/{models.DELIVERY_PLURAL}"
    return f"{base}/{name}" if name else base


def cronjob_path(namespace: str = "", name: str = "") -> str:
    """CronJobs in a namespace, or in every namespace when `namespace` is empty."""
    if not namespace:
        return "/apis/batch/v1/cronjobs"
    base = f"/apis/batch/v1/namespaces/{namespace}/cronjobs"
    return f"{base}/{name}" if name else base


def job_path(namespace: str, name: str = "") -> str:
    base = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    return f"{base}/{name}" if name else base


def events_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/events"


def pods_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def namespace_terminating(exc: ApiException) -> bool:
    """Whether a create was refused because its namespace is being deleted (the apiserver's
    NamespaceLifecycle admission: 403 with the NamespaceTerminating cause; 409 while the
    namespace is going)."""
    body = exc.body if isinstance(exc.body, str) else ""
    return exc.status in (403, 409) and (
        "NamespaceTerminating" in body or "because it is being terminated" in body
    )


class Kube:
    """Raw JSON calls through one ApiClient. Errors are kubernetes ApiExceptions (.status)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        request = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request)
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        return json.loads(response.data) if response.data else None

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await asyncio.to_thread(self._call, "GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)]
        result = await asyncio.to_thread(self._call, "GET", path, None, query)
        return result.get("items") or []

    async def list_pages(
        self, path: str, label_selector: str, limit: int = 500
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The items, `limit` at a time: a list of thousands never sits in memory as one."""
        token = ""
        while True:
            query = [("labelSelector", label_selector), ("limit", str(limit))]
            query += [("continue", token)] if token else []
            page = await asyncio.to_thread(self._call, "GET", path, None, query)
            yield page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._call, "POST", path, body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch; a metadata.resourceVersion in `body` makes it conditional (409)."""
        return await asyncio.to_thread(self._call, "PATCH", path, body, None, MERGE_PATCH)

    async def delete(self, path: str) -> bool:
        """Delete the object; False when it was already gone."""
        try:
            await asyncio.to_thread(self._call, "DELETE", path)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True
