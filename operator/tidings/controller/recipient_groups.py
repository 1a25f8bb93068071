"""Recipient groups in the operator, pure: what a change to a RecipientGroup needs (the
`schedule` verb for an external member, as for a report's recipient), and the ConfigMap a
report with groups gets.

The ConfigMap `tidings-recipients-REPORT` (owned by the report) holds the current members of
each group the report names, and the names that do not exist; the report's run pod mounts it
(cronjob.py) and reads it when it starts, so an edited group reaches the next run with no
change to the report or its CronJob. The pod can be given a forged copy by a namespace editor:
the delivery relay never trusts it and expands the live groups itself (relay/policy.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tidings import groups, models
from tidings.controller import permissions
from tidings.controller.cronjob import owner_reference, report_labels

GROUP_WEBHOOK_ID = f"validate.{models.GROUP_PLURAL}.{models.GROUP}"
COMPONENT = "recipients"


def added_members(
    old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(path, address) of the group's members not in the old spec (case-insensitively)."""
    before = {a.lower() for a in groups.members({"spec": old_spec})}
    return [
        (f"spec.addresses[{i}]", address)
        for i, address in enumerate(groups.members({"spec": new_spec}))
        if address.lower() not in before
    ]


def member_needs(
    old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any], domains: Sequence[str]
) -> list[permissions.Need]:
    """Adding an address outside the allowed domains to a group needs `schedule` on the group:
    every report naming it will send there. No allowed domains configured: all are internal."""
    if not domains:
        return []
    shown = ", ".join(domains)
    return [
        permissions.Need(path, f'adding the external member "{address}" (allowed domains: {shown})')
        for path, address in added_members(old_spec, new_spec)
        if not permissions.domain_allowed(address, domains)
    ]


def group_access_review(
    userinfo: Mapping[str, Any], namespace: str, name: str | None
) -> dict[str, Any]:
    """May the requesting user `schedule` this RecipientGroup?"""
    review = permissions.access_review(userinfo, namespace, name)
    review["spec"]["resourceAttributes"]["resource"] = models.GROUP_PLURAL
    return review


def group_refusal(needs: Sequence[permissions.Need], user: str, namespace: str) -> str:
    needed = (
        f'needs the "{permissions.SCHEDULE_VERB}" verb on {models.GROUP_PLURAL}.{models.GROUP} '
        f'in namespace "{namespace}", which user "{user}" lacks (a namespace admin can bind the '
        f"{permissions.SCHEDULE_ROLE} ClusterRole)"
    )
    return f"{models.GROUP_KIND} is forbidden: " + "; ".join(
        f"{need.path}: {need.change} {needed}" for need in needs
    )


def overfull(
    reports: Sequence[Mapping[str, Any]],
    group: str,
    addresses: Sequence[str],
    found: Mapping[str, Sequence[str]],
) -> list[str]:
    """The problems of giving `group` these members: each report naming it that would reach
    over 50 addresses (`found`: the namespace's other groups, name -> members)."""
    live = {**found, group: list(addresses)}
    problems = []
    for report in reports:
        recipients = (report.get("spec") or {}).get("recipients")
        if group not in groups.named(recipients):
            continue
        count = len(groups.expand(recipients, live).addresses)
        if count > models.MAX_RECIPIENTS:
            name = (report.get("metadata") or {}).get("name")
            too_many = groups.too_many_text(count)
            problems.append(f"spec.addresses: {models.KIND} {name} names @{group}: {too_many}")
    return problems


def configmap(report: Mapping[str, Any], found: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The report's recipients ConfigMap, for the groups in `found` (name -> members) as they
    are now; groups the report names that are not in `found` are listed as missing."""
    meta = report["metadata"]
    names = groups.named((report.get("spec") or {}).get("recipients"))
    labels = {**report_labels(report), "app.kubernetes.io/component": COMPONENT}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": groups.configmap_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(report)],
        },
        "data": {groups.CONFIGMAP_KEY: groups.payload(names, found)},
    }


def stale(actual: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether the ConfigMap in the cluster differs from what it should hold or whose it is."""
    if actual is None:
        return True
    meta = actual.get("metadata") or {}
    return (
        actual.get("data") != desired["data"]
        or meta.get("ownerReferences") != desired["metadata"]["ownerReferences"]
    )
