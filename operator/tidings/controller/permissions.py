"""Which changes to a ScheduledReport need the custom RBAC verb `schedule`, beyond plain RBAC.

RBAC alone (the ClusterRoles in charts/tidings/templates/user-clusterroles.yaml) decides who may
create, change or delete a report at all. Two kinds of change also need `schedule` on
scheduledreports.tidings.dev, because they make the cluster send mail on its own or to people
outside the organisation (docs/permissions.md):

- setting or changing `spec.schedule`, or moving a scheduled report to another `spec.timeZone`;
- adding a recipient outside the allowed domains (TIDINGS_ALLOWED_RECIPIENT_DOMAINS plus the
  namespace annotation tidings.dev/allowed-recipient-domains), or asking for a test send
  (tidings.dev/send-test) to such an address.

This module is the pure part: given the old and new spec and the allowed domains, what needs the
verb, the SubjectAccessReview that asks for it, and the refusal text. The admission webhook
(tidings.controller.admission) does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidings import models
from tidings.controller import testsend
from tidings.controller.settings import MAIL_DOMAIN

SCHEDULE_VERB = "schedule"
SCHEDULE_ROLE = "tidings-schedule"
DOMAINS_ANNOTATION = "tidings.dev/allowed-recipient-domains"
RECIPIENT_FIELDS = ("to", "cc", "bcc")
DEFAULT_TIME_ZONE = models.ScheduledReportSpec.model_fields["time_zone"].default


@dataclass(frozen=True)
class Need:
    """One change that needs the `schedule` verb: `path` like spec.recipients.to[1]."""

    path: str
    change: str


def parse_domains(text: str) -> tuple[tuple[str, ...], list[str]]:
    """(domains, entries that are not domains) of a comma-separated list, lowercased.
    `example.com` allows exactly that domain, `.example.com` any subdomain of it."""
    domains: list[str] = []
    rejected: list[str] = []
    for entry in (part.strip().lower() for part in text.split(",")):
        if entry:
            (domains if MAIL_DOMAIN.match(entry) else rejected).append(entry)
    return tuple(domains), rejected


def domain_allowed(address: str, domains: Iterable[str]) -> bool:
    """Whether the address's domain is one of `domains` (a leading dot: any subdomain)."""
    domain = address.rpartition("@")[2].lower()
    return any(
        domain.endswith(allowed) if allowed.startswith(".") else domain == allowed
        for allowed in domains
    )


def recipients(spec: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(path, address) of every recipient in to, cc and bcc, in order."""
    listed = (spec or {}).get("recipients") or {}
    return [
        (f"spec.recipients.{kind}[{i}]", address)
        for kind in RECIPIENT_FIELDS
        for i, address in enumerate(listed.get(kind) or [])
    ]


def added_recipients(
    old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Recipients of `new_spec` not on `old_spec` in any of to/cc/bcc (case-insensitively): moving
    an address between to, cc and bcc sends the report to nobody new."""
    before = {address.lower() for _, address in recipients(old_spec)}
    return [
        (path, address) for path, address in recipients(new_spec) if address.lower() not in before
    ]


def _schedule(spec: Mapping[str, Any]) -> str:
    return " ".join(str(spec.get("schedule") or "").split())


def schedule_needs(
    old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any], domains: Sequence[str]
) -> list[Need]:
    """What in this create (`old_spec` None) or update needs the `schedule` verb.

    Removing a schedule, suspending and resuming need nothing: they never make the report send
    at a time nobody with the verb chose. With no allowed domains configured at all, every
    recipient counts as internal."""
    needs: list[Need] = []
    schedule = _schedule(new_spec)
    before = _schedule(old_spec) if old_spec is not None else ""
    if schedule and schedule != before:
        needs.append(
            Need("spec.schedule", "changing the schedule" if before else "setting a schedule")
        )
    elif (
        schedule
        and old_spec is not None
        and new_spec.get("timeZone", DEFAULT_TIME_ZONE)
        != old_spec.get("timeZone", DEFAULT_TIME_ZONE)
    ):
        needs.append(Need("spec.timeZone", "moving the schedule to another time zone"))
    if domains:
        shown = ", ".join(domains)
        needs.extend(
            Need(path, f'adding the external recipient "{address}" (allowed domains: {shown})')
            for path, address in added_recipients(old_spec, new_spec)
            if not domain_allowed(address, domains)
        )
    return needs


def test_send_needs(address: str | None, domains: Sequence[str]) -> list[Need]:
    """A test send (controller.testsend) to an address outside the allowed domains needs the verb,
    as adding that address to the recipients would."""
    if not address or not domains or domain_allowed(address, domains):
        return []
    shown = ", ".join(domains)
    change = f'a test send to the external address "{address}" (allowed domains: {shown})'
    return [Need(testsend.ANNOTATION_PATH, change)]


def access_review(userinfo: Mapping[str, Any], namespace: str, name: str | None) -> dict[str, Any]:
    """A SubjectAccessReview asking whether the requesting user (the AdmissionReview's userInfo)
    may `schedule` this report. Without a name, only rules not limited by resourceNames match."""
    resource = {
        "group": models.GROUP,
        "resource": models.PLURAL,
        "verb": SCHEDULE_VERB,
        "namespace": namespace,
    }
    if name:
        resource["name"] = name
    spec: dict[str, Any] = {
        "user": userinfo.get("username", ""),
        "groups": list(userinfo.get("groups") or []),
        "resourceAttributes": resource,
    }
    if userinfo.get("uid"):
        spec["uid"] = userinfo["uid"]
    if userinfo.get("extra"):
        spec["extra"] = {key: list(values) for key, values in userinfo["extra"].items()}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def refusal(needs: Sequence[Need], user: str, namespace: str) -> str:
    """The 403 message: every change that needs the verb, and how to get it."""
    needed = (
        f'needs the "{SCHEDULE_VERB}" verb on {models.PLURAL}.{models.GROUP} in namespace '
        f'"{namespace}", which user "{user}" lacks (a namespace admin can bind the '
        f"{SCHEDULE_ROLE} ClusterRole)"
    )
    return f"{models.KIND} is forbidden: " + "; ".join(
        f"{need.path}: {need.change} {needed}" for need in needs
    )
