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

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from tidings import models
from tidings.controller import testsend
from tidings.controller.cronjob import MANAGED_BY, MANAGED_BY_LABEL
from tidings.controller.settings import MAIL_DOMAIN
from tidings.groups import group_name

SCHEDULE_VERB = "schedule"
SCHEDULE_ROLE = "tidings-schedule"
DOMAINS_ANNOTATION = "tidings.dev/allowed-recipient-domains"
RECIPIENT_FIELDS = ("to", "cc", "bcc")
DEFAULT_TIME_ZONE = models.ScheduledReportSpec.model_fields["time_zone"].default
OPERATOR_PREFIX = f"{models.GROUP}/"


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
    """(path, address) of every recipient in to, cc and bcc, in order. A @group is not one:
    adding an external address to a group needs the verb on the group (recipient_groups)."""
    listed = (spec or {}).get("recipients") or {}
    return [
        (f"spec.recipients.{kind}[{i}]", address)
        for kind in RECIPIENT_FIELDS
        for i, address in enumerate(listed.get(kind) or [])
        if group_name(address) is None
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


def added_owners(
    old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """spec.owners not on `old_spec` as an owner or a recipient (case-insensitively): an owner
    notice reaches an address as a report does, so the same rule."""
    before = {address.lower() for _, address in recipients(old_spec)}
    before |= {str(a).lower() for a in (old_spec or {}).get("owners") or ()}
    owners = [str(a) for a in new_spec.get("owners") or ()]
    return [(f"spec.owners[{i}]", a) for i, a in enumerate(owners) if a.lower() not in before]


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
        needs.extend(
            Need(path, f'adding the external owner "{address}" (allowed domains: {shown})')
            for path, address in added_owners(old_spec, new_spec)
            if not domain_allowed(address, domains)
        )
    return needs


SLACK_HOST = "slack.com"  # what allowedChannelHosts names to let any Slack channel in


def channel_destinations(spec: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(path, destination, host) of every channel (spec.delivery.channels), in order. The
    destination is what admission compares with the old spec: a webhook's URL, a Slack
    channel's ID (the bot token only picks the workspace), a Teams workflow's host (its URL is
    a Secret; the relay forwards only to that host)."""
    listed = ((spec or {}).get("delivery") or {}).get("channels") or []
    found = []
    for i, channel in enumerate(listed):
        channel = channel or {}
        url = (channel.get("webhook") or {}).get("url")
        slack = (channel.get("slack") or {}).get("channel")
        teams = (channel.get("teams") or {}).get("host")
        path = f"spec.delivery.channels[{i}]"
        if isinstance(url, str):
            host = (urllib.parse.urlsplit(url).hostname or "").lower()
            found.append((f"{path}.webhook.url", url, host))
        elif isinstance(slack, str):
            found.append((f"{path}.slack.channel", f"slack:{slack}", SLACK_HOST))
        elif isinstance(teams, str):
            found.append((f"{path}.teams.host", f"teams:{teams.lower()}", teams.lower()))
    return found


def channel_needs(
    old_spec: Mapping[str, Any] | None, new_spec: Mapping[str, Any], hosts: Sequence[str]
) -> list[Need]:
    """A channel destination is an external recipient: adding one (a destination the old spec
    did not have) needs the verb unless its host is on the allowed channel hosts."""
    before = {where for _, where, _ in channel_destinations(old_spec)}
    needs = []
    for path, where, host in channel_destinations(new_spec):
        if where in before or (host and domain_allowed(f"@{host}", hosts)):
            continue
        shown = ", ".join(hosts) or "none"
        what = where if where.startswith("slack:") else host
        needs.append(
            Need(path, f'adding the external destination "{what}" (allowed hosts: {shown})')
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


# ------------------------------------------------------------ references to Secrets/ConfigMaps

# Each ref model -> the core resource it names. Walking the models (not a fixed list of paths)
# keeps a ref added to models.py from slipping past the check.
REF_RESOURCES: dict[type, str] = {
    models.SecretKeyRef: "secrets",
    models.SecretRef: "secrets",
    models.ConfigMapKeyRef: "configmaps",
}


@dataclass(frozen=True)
class Reference:
    """One Secret or ConfigMap a spec names: `path` like spec.source.http.authSecretRef."""

    path: str
    resource: str
    name: str


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class of a field's annotation (`X | None` and `list[X]` included), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (found := _model_of(arg)) is not None:
            return found
    return None


def _walk(model: type[BaseModel], data: Any, path: str) -> Iterable[Reference]:
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield from _walk(model, item, f"{path}[{i}]")
        return
    if not isinstance(data, Mapping):
        return
    if model in REF_RESOURCES:
        if data.get("name"):
            yield Reference(path, REF_RESOURCES[model], str(data["name"]))
        return
    for name, info in model.model_fields.items():
        key = info.alias or name
        child = _model_of(info.annotation)
        if child is not None and data.get(key) is not None:
            yield from _walk(child, data[key], f"{path}.{key}")


def references(spec: Mapping[str, Any] | None) -> list[Reference]:
    """Every Secret and ConfigMap the spec names, in field order."""
    return list(_walk(models.ScheduledReportSpec, spec or {}, "spec"))


def references_need_check(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether a create (`old` None) or update re-authors what the report reads with: any
    create, any spec change (references unchanged or not), a new send-test address. A
    metadata-only update (run-now, reactivate, the operator's finalizers) sends the spec as
    admitted to its admitted recipients, and is not."""
    if old is None or old.get("spec") != new.get("spec"):
        return True
    return bool(testsend.changed_address(old.get("metadata"), new.get("metadata")))


def reference_review(
    userinfo: Mapping[str, Any], namespace: str, reference: Reference
) -> dict[str, Any]:
    """A SubjectAccessReview: may the requesting user `get` this Secret or ConfigMap?"""
    review = access_review(userinfo, namespace, None)
    review["spec"]["resourceAttributes"] = {
        "group": "",
        "resource": reference.resource,
        "verb": "get",
        "namespace": namespace,
        "name": reference.name,
    }
    return review


def reference_refusal(denied: Sequence[Reference], user: str, namespace: str) -> str:
    """The 403 message: each reference the user cannot read, with the missing right."""
    return f"{models.KIND} is forbidden: " + "; ".join(
        f'{ref.path}: user "{user}" cannot get {ref.resource} "{ref.name}" in namespace '
        f'"{namespace}" (a report may only name what its author can read)'
        for ref in denied
    )


# ------------------------------------------------------------------- the operator's run pods

CONNECT_SUBRESOURCES = ("exec", "attach", "portforward")


def operator_markers(meta: Mapping[str, Any] | None) -> list[str]:
    """The operator's labels and annotations on an object: app.kubernetes.io/managed-by=tidings
    and any tidings.dev/ key. The admission policy (charts/tidings/templates/
    admission-policy.yaml) tests the same keys in CEL."""
    labels = (meta or {}).get("labels") or {}
    annotations = (meta or {}).get("annotations") or {}
    found = [
        f"{key}={value}"
        for key, value in labels.items()
        if (key == MANAGED_BY_LABEL and value == MANAGED_BY) or key.startswith(OPERATOR_PREFIX)
    ]
    return found + [key for key in annotations if key.startswith(OPERATOR_PREFIX)]


def connect_refusal(subresource: str, pod: str, namespace: str, markers: Sequence[str]) -> str:
    """The 403 for exec, attach or port-forward into a pod of a report's run."""
    return (
        f'pods/{subresource} is forbidden: pod "{pod}" in namespace "{namespace}" is a Tidings '
        f"report run ({', '.join(markers[:2])}): nobody may {subresource} into it, so its result "
        "line is the renderer's own"
    )
