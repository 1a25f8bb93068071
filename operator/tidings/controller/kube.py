"""The few Kubernetes API calls the operator makes, on plain JSON dicts (camelCase, exactly as
served), so the pure modules see the same shapes in tests and in production.

The calls go out on aiohttp in kopf's own event loop, one keep-alive pool for all of them. The
`kubernetes` client only supplies the credentials (kubeconfig or in-cluster, its token refresh
hook) and the error type: its synchronous calls, each in a worker thread, were the largest part
of the operator's time in a burst of new reports (docs/benchmarks.md, "What limits the
operator's time").
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
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


def _tls(configuration: client.Configuration) -> ssl.SSLContext | bool:
    """The TLS the kubernetes client would use: its CA, client certificate, hostname check."""
    if not configuration.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if configuration.assert_hostname is False:
        context.check_hostname = False
    return context


def _api_error(status: int, reason: str, body: bytes, headers: Any) -> ApiException:
    """The kubernetes client's error for a refused call: callers read .status and .body."""
    error = ApiException(status=status, reason=reason)
    error.body = body.decode(errors="replace")
    error.headers = headers
    return error


class Kube:
    """Raw JSON calls with the credentials of one ApiClient. Errors are kubernetes
    ApiExceptions (.status, .body). Used from one event loop (kopf's)."""

    def __init__(self, api: client.ApiClient, pool_size: int = 32, shard: str = "") -> None:
        self.api = api
        self.pool_size = pool_size
        # The apiserver names a write's field manager after the User-Agent (up to a "/"), so
        # every object's managedFields say which shard wrote it.
        self.user_agent = f"tidings-shard-{shard}" if shard else "tidings-operator"
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # At most pool_size calls prepared at once: a burst of 10,000 reports otherwise holds
        # 10,000 serialised CronJobs waiting for a connection (256 MiB against 173 at 10,000).
        self._slots = asyncio.Semaphore(pool_size)

    def _http(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session (and the semaphore) belongs to the loop it is
        # made in, so a Kube used from a new loop (asyncio.run in a script) gets new ones.
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            self._slots = asyncio.Semaphore(self.pool_size)
            configuration = self.api.configuration
            connector = aiohttp.TCPConnector(
                limit=self.pool_size, ssl=_tls(configuration), enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=60, sock_connect=10),
                skip_auto_headers=["User-Agent"],
                headers={"User-Agent": self.user_agent},
            )
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        configuration = self.api.configuration
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # Runs the client's refresh hook: in-cluster tokens rotate, exec plugins expire.
        token = configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            headers["Authorization"] = token
        session = self._http()
        async with (
            self._slots,
            session.request(
                method,
                configuration.host + path,
                params=query or None,
                data=None if body is None else json.dumps(body, separators=(",", ":")),
                headers=headers,
                proxy=configuration.proxy or None,
                server_hostname=configuration.tls_server_name or None,
            ) as response,
        ):
            payload = await response.read()
            if not 200 <= response.status <= 299:
                reason = response.reason or ""
                raise _api_error(response.status, reason, payload, response.headers)
        return json.loads(payload) if payload else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.api.close()

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self._call("GET", path)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)]
        result = await self._call("GET", path, None, query)
        return result.get("items") or []

    async def list_pages(
        self, path: str, label_selector: str, limit: int = 500
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The items, `limit` at a time: a list of thousands never sits in memory as one."""
        token = ""
        while True:
            query = [("labelSelector", label_selector), ("limit", str(limit))]
            query += [("continue", token)] if token else []
            page = await self._call("GET", path, None, query)
            yield page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", path, body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch; a metadata.resourceVersion in `body` makes it conditional (409)."""
        return await self._call("PATCH", path, body, None, MERGE_PATCH)

    async def delete(self, path: str) -> bool:
        """Delete the object; False when it was already gone."""
        try:
            await self._call("DELETE", path)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True
