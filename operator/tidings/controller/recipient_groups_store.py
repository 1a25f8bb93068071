"""Keeps each report's recipients ConfigMap (recipient_groups.configmap) current: on every
event of a report that names groups, and on every event of a RecipientGroup, for the reports
of its namespace that name it. Writes only when the content changed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from tidings import groups, models
from tidings.controller import recipient_groups
from tidings.controller.kube import Kube, report_path

log = logging.getLogger("tidings.operator")


def group_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{namespace}/{models.GROUP_PLURAL}"
    return f"{base}/{name}" if name else base


def configmap_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{base}/{name}" if name else base


async def members_of(kube: Kube, namespace: str, names: Sequence[str]) -> dict[str, list[str]]:
    """name -> members of each group that exists (a missing one is left out)."""
    found = await asyncio.gather(*(kube.get(group_path(namespace, n)) for n in names))
    return {n: groups.members(g) for n, g in zip(names, found, strict=True) if g is not None}


async def sync_report(kube: Kube, report: Mapping[str, Any]) -> None:
    """Write the report's ConfigMap if it names groups and the ConfigMap is not current."""
    meta = report.get("metadata") or {}
    names = groups.named((report.get("spec") or {}).get("recipients"))
    if not names or meta.get("deletionTimestamp"):
        return
    namespace = meta["namespace"]
    desired = recipient_groups.configmap(report, await members_of(kube, namespace, names))
    path = configmap_path(namespace, desired["metadata"]["name"])
    actual = await kube.get(path)
    if not recipient_groups.stale(actual, desired):
        return
    if actual is None:
        try:
            await kube.create(configmap_path(namespace), desired)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
    await kube.merge_patch(path, {"metadata": desired["metadata"], "data": desired["data"]})


async def sync_report_logged(kube: Kube, report: Mapping[str, Any]) -> None:
    """sync_report, with a failure logged (the next event of the report or a group retries)."""
    meta = report.get("metadata") or {}
    try:
        await sync_report(kube, report)
    except ApiException as exc:
        log.warning(
            "cannot write the recipients ConfigMap of report %s/%s: API %s",
            meta.get("namespace"),
            meta.get("name"),
            exc.status,
        )


async def group_changed(kube: Kube, group: Mapping[str, Any]) -> None:
    """A RecipientGroup was created, changed or deleted: refresh every report naming it."""
    meta = group.get("metadata") or {}
    namespace, name = meta["namespace"], meta["name"]
    try:
        reports = await kube.list(report_path(namespace), "")
    except ApiException as exc:  # each report's next event writes its ConfigMap again
        log.warning(
            "cannot list the reports naming group %s/%s: API %s", namespace, name, exc.status
        )
        return
    naming = [r for r in reports if name in groups.named((r.get("spec") or {}).get("recipients"))]
    await asyncio.gather(*(sync_report_logged(kube, report) for report in naming))
