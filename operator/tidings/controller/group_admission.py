"""Admission of recipient groups (kopf `on.validate` handlers, registered by admission.py).

A RecipientGroup is checked as a report's recipients are: every member a bare address, each
once, at most 50 (422); no report naming it may reach over 50 addresses once its groups are
expanded (422); adding a member outside the allowed domains needs the `schedule` verb on the
group (SubjectAccessReview, 403). A report naming groups that exist must stay within 50 once
they are expanded (422); one naming a group that does not exist yet is admitted, and its runs
fail naming the group until it does. Fails closed (500) when the apiserver cannot answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import groups, models
from tidings.controller import recipient_groups
from tidings.controller.kube import Kube, report_path
from tidings.controller.recipient_groups_store import members_of
from tidings.validation import validate_group_spec


def _unavailable(what: str, exc: ApiException) -> kopf.AdmissionError:
    return kopf.AdmissionError(
        f"cannot check {what}: HTTP {exc.status} from the apiserver", code=500
    )


async def check_report_expansion(
    kube: Kube, body: Mapping[str, Any], old: Mapping[str, Any] | None
) -> None:
    """422 when the report's recipients, its existing groups expanded, exceed 50."""
    spec = body.get("spec") or {}
    if old is not None and old.get("spec") == spec:
        return
    recipients = spec.get("recipients")
    names = groups.named(recipients)
    if not names:
        return
    namespace = (body.get("metadata") or {}).get("namespace", "")
    try:
        found = await members_of(kube, namespace, names)
    except ApiException as exc:
        raise _unavailable("the report's recipient groups", exc) from exc
    count = len(groups.expand(recipients, found).addresses)
    if count > models.MAX_RECIPIENTS:
        raise kopf.AdmissionError(
            f"{models.KIND} is invalid: spec.recipients: {groups.too_many_text(count)}", code=422
        )


async def admit_group(
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    operation: str | None,
    userinfo: Mapping[str, Any],
    warnings: list[str],
    memo: kopf.Memo,
    domains_of: Callable[[Kube, str, list[str]], Awaitable[tuple[str, ...]]],
    **_: Any,
) -> None:
    """The webhook for RecipientGroups: rules (422), then reports naming it (422), then the
    `schedule` verb for external members (403). `domains_of` reads a namespace's own allowed
    domains (admission.namespace_domains)."""
    spec = body.get("spec")
    old_spec = old.get("spec") if operation == "UPDATE" and old is not None else None
    if old_spec is not None and old_spec == spec:
        return  # metadata only
    result = validate_group_spec(spec)
    if not result.ok:
        raise kopf.AdmissionError(f"{models.GROUP_KIND} is invalid: {result.summary()}", code=422)
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    kube: Kube = memo.kube
    members = groups.members(body)
    try:
        reports = await kube.list(report_path(namespace), "")
        naming = [
            r for r in reports if name in groups.named((r.get("spec") or {}).get("recipients"))
        ]
        others = sorted({n for r in naming for n in groups.named(r["spec"]["recipients"])} - {name})
        found = await members_of(kube, namespace, others)
        domains = memo.settings.allowed_recipient_domains
        if recipient_groups.added_members(old_spec, spec or {}):
            own = await domains_of(kube, namespace, warnings)
            domains = tuple(dict.fromkeys(domains + own))
    except ApiException as exc:
        raise _unavailable("the reports naming this group", exc) from exc
    if problems := recipient_groups.overfull(naming, name, members, found):
        raise kopf.AdmissionError(
            f"{models.GROUP_KIND} is invalid: {'; '.join(problems)}", code=422
        )
    needs = recipient_groups.member_needs(old_spec, spec or {}, domains)
    if not needs:
        return
    try:
        review = await kube.create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            recipient_groups.group_access_review(userinfo, namespace, name),
        )
    except ApiException as exc:
        raise _unavailable("the 'schedule' permission", exc) from exc
    if not (review.get("status") or {}).get("allowed"):
        user = userinfo.get("username", "")
        raise kopf.AdmissionError(recipient_groups.group_refusal(needs, user, namespace), code=403)
