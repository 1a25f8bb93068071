"""Pure: a namespace's default time zone, and a report as the operator works with it.

A report that sets no spec.timeZone runs in its namespace's default, the annotation
tidings.dev/default-time-zone on the Namespace, else UTC. An annotation, not a key of the
tidings-branding ConfigMap: the zone decides when the CronJob fires and what nextSendAt says,
so the operator itself needs it, and it already watches Namespaces (the ConfigMap is only
mounted into renderer pods; reading it would take ConfigMap RBAC in every namespace). Setting
it is a write to the Namespace object, which namespace editors and admins do not have by
default: the same people who set tidings.dev/allowed-recipient-domains.

The zone in effect is filled into the spec the operator works with (`effective`), so the
CronJob, its report snapshot (the renderer computes the window from it), nextSendAt and the
Ready message all agree; status.timeZone records it for the TZ column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidings.contract import DEFAULT_TIME_ZONE_ANNOTATION
from tidings.validation import time_zone_problem

FALLBACK = "UTC"


def namespace_default(namespace: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(the namespace's default zone, or None; why its annotation is not used, or None)."""
    annotations = (namespace.get("metadata") or {}).get("annotations") or {}
    value = (annotations.get(DEFAULT_TIME_ZONE_ANNOTATION) or "").strip()
    if not value:
        return None, None
    if problem := time_zone_problem(value):
        name = (namespace.get("metadata") or {}).get("name", "")
        return None, (
            f"namespace {name} annotation {DEFAULT_TIME_ZONE_ANNOTATION}={value[:64]!r}: "
            f"{problem}; reports without spec.timeZone run in {FALLBACK}"
        )
    return value, None


def sets_zone(spec: Mapping[str, Any]) -> bool:
    zone = spec.get("timeZone")
    return isinstance(zone, str) and bool(zone.strip())


def effective(report: Mapping[str, Any], default: str | None) -> Mapping[str, Any]:
    """The report with the zone in effect in spec.timeZone (unchanged when it sets one, or when
    there is no namespace default: UTC is then everywhere's fallback)."""
    spec = report.get("spec") or {}
    if default is None or sets_zone(spec):
        return report
    return {**report, "spec": {**spec, "timeZone": default}}


def zone_in_effect(spec: Mapping[str, Any]) -> str:
    """What status.timeZone shows, for a spec `effective` has filled in."""
    return spec["timeZone"] if sets_zone(spec) else FALLBACK
