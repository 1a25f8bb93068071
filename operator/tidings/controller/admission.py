"""The validating admission webhook for ScheduledReports (a kopf `on.validate` handler).

Importing this module registers the handler in kopf's default registry, so the operator only has
to import it and give kopf a webhook server (`settings.admission.server`). The handler first runs
`validate_spec` and rejects with HTTP 422 and every problem as "path: rule"; warnings (such as a
subject without {date}) go back to kubectl through kopf's admission warnings. Then, for changes
that need the custom verb `schedule` (tidings.controller.permissions), it asks the apiserver with a
SubjectAccessReview whether the requesting user has it, and rejects with HTTP 403 if not. On
every create, spec change or test send it also asks whether that user may `get` each Secret and
ConfigMap the spec names (permissions.references), changed or not, and rejects with 403 naming
each reference it may not read: the report reads them with the operator's rights, so admission
is where the author's own rights are checked.

The permission check uses `memo.kube` and `memo.settings`, which the operator's startup handler
sets; it fails closed (HTTP 500) when the apiserver cannot answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import models
from tidings.controller import group_admission, permissions, recipient_groups, testsend
from tidings.controller.kube import Kube
from tidings.controller.settings import Settings
from tidings.validation import validate_spec

# The handler id is also the path of the webhook URL kopf's server answers on.
WEBHOOK_ID = f"validate.{models.PLURAL}.{models.GROUP}"
CONNECT_WEBHOOK_ID = f"connect.pods.{models.GROUP}"
# An AdmissionReview of an UPDATE holds the object twice, and the apiserver stores objects of
# up to 3 MiB (its request limit): aiohttp's 1 MiB default answered 413 from about 300 KB on.
MAX_REVIEW_BYTES = 8 * 1024 * 1024


class LargeRequestWebhookServer(kopf.WebhookServer):
    """kopf's webhook server, accepting reviews of any object the apiserver can store."""

    @staticmethod
    async def _serve(fn: Any, request: Any) -> Any:
        clone = request.clone(client_max_size=MAX_REVIEW_BYTES)

        async def with_target(review: dict[str, Any], **kwargs: Any) -> Any:
            return await fn(connect_target(review), **kwargs)

        return await kopf.WebhookServer._serve(with_target, clone)


def connect_target(review: dict[str, Any]) -> dict[str, Any]:
    """A CONNECT review (exec, attach, port-forward) carries PodExecOptions and the like, which
    name no pod, and kopf hands handlers only the object: put the request's pod name and
    namespace (set by the apiserver) into the object's metadata. Other reviews pass as sent."""
    request = review.get("request") or {}
    if request.get("operation") != "CONNECT" or not isinstance(request.get("object"), dict):
        return review
    target = {"name": request.get("name", ""), "namespace": request.get("namespace", "")}
    return {**review, "request": {**request, "object": {**request["object"], "metadata": target}}}


def validate_report(
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    operation: str | None,
    warnings: list[str],
    **_: Any,
) -> None:
    """The rules: raise kopf.AdmissionError(422) naming every broken one."""
    old_meta = old.get("metadata") if old is not None else None
    address = testsend.changed_address(old_meta, body.get("metadata"))
    if address and (problem := testsend.annotation_problem(address)):
        raise kopf.AdmissionError(
            f"{models.KIND} is invalid: {testsend.ANNOTATION_PATH}: {problem}", code=422
        )
    spec = body.get("spec")
    if operation == "UPDATE" and old is not None and old.get("spec") == spec:
        # Metadata-only updates (annotations, finalizers, labels) must go through even for a
        # report admitted under older rules; the operator marks such a report Invalid instead.
        return
    result = validate_spec(spec)
    warnings.extend(result.warnings)
    if not result.ok:
        raise kopf.AdmissionError(f"{models.KIND} is invalid: {result.summary()}", code=422)


async def admit_report(
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    operation: str | None,
    userinfo: Mapping[str, Any],
    warnings: list[str],
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """The webhook: the rules first (422), then the `schedule` verb if a change needs it, then
    read access to every referenced Secret and ConfigMap when the spec or test send changes
    (403)."""
    validate_report(body=body, old=old, operation=operation, warnings=warnings)
    updated = operation == "UPDATE" and old is not None
    await group_admission.check_report_expansion(memo.kube, body, old if updated else None)
    old_spec = old.get("spec") if updated else None
    old_meta = old.get("metadata") if updated else None
    await check_schedule_permission(
        memo.kube, memo.settings, body, old_spec, userinfo, warnings, old_meta
    )
    if permissions.references_need_check(old if updated else None, body):
        await check_reference_permissions(memo.kube, body, userinfo)


async def check_reference_permissions(
    kube: Kube, body: Mapping[str, Any], userinfo: Mapping[str, Any]
) -> None:
    """Raise kopf.AdmissionError(403) naming every Secret or ConfigMap the spec names that the
    requesting user cannot `get`. Asked for every reference, changed or not: whoever writes the
    spec (or asks for a test send) answers for what it reads, so an editor cannot make an
    admin's Secret go where she points the report."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace", "")
    refs = permissions.references(body.get("spec"))
    unique = {(ref.resource, ref.name): ref for ref in refs}
    try:
        answers = await asyncio.gather(
            *(
                kube.create(
                    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                    permissions.reference_review(userinfo, namespace, ref),
                )
                for ref in unique.values()
            )
        )
    except ApiException as exc:
        raise kopf.AdmissionError(
            f"cannot check read access to the report's Secrets and ConfigMaps: HTTP "
            f"{exc.status} from the apiserver: {_api_message(exc)}",
            code=500,
        ) from exc
    allowed = {
        key for key, review in zip(unique, answers, strict=True) if review["status"]["allowed"]
    }
    denied = [ref for ref in refs if (ref.resource, ref.name) not in allowed]
    if denied:
        user = userinfo.get("username", "")
        raise kopf.AdmissionError(permissions.reference_refusal(denied, user, namespace), code=403)


async def check_schedule_permission(
    kube: Kube,
    settings: Settings,
    body: Mapping[str, Any],
    old_spec: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    warnings: list[str],
    old_meta: Mapping[str, Any] | None = None,
) -> None:
    """Raise kopf.AdmissionError(403) if the change needs `schedule` and the user lacks it."""
    spec = body.get("spec") or {}
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace", "")
    domains = settings.allowed_recipient_domains
    test_address = testsend.changed_address(old_meta, meta)
    try:
        added = permissions.added_recipients(old_spec, spec)
        if added or permissions.added_owners(old_spec, spec) or test_address:
            own = await namespace_domains(kube, namespace, warnings)
            domains = tuple(dict.fromkeys(domains + own))
        needs = permissions.schedule_needs(old_spec, spec, domains)
        needs += permissions.test_send_needs(test_address, domains)
        needs += permissions.channel_needs(old_spec, spec, settings.allowed_channel_hosts)
        if not needs:
            return
        review = await kube.create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            permissions.access_review(userinfo, namespace, meta.get("name")),
        )
    except ApiException as exc:
        # Fail closed: without an answer nobody may schedule, but the reason must be visible.
        raise kopf.AdmissionError(
            f"cannot check the {permissions.SCHEDULE_VERB!r} permission: HTTP {exc.status} from "
            f"the apiserver: {_api_message(exc)}",
            code=500,
        ) from exc
    if not review.get("status", {}).get("allowed"):
        user = userinfo.get("username", "")
        raise kopf.AdmissionError(permissions.refusal(needs, user, namespace), code=403)


async def namespace_domains(kube: Kube, namespace: str, warnings: list[str]) -> tuple[str, ...]:
    """The namespace's own allowed recipient domains; a bad entry is ignored with a warning."""
    found = await kube.get(f"/api/v1/namespaces/{namespace}")
    annotations = ((found or {}).get("metadata") or {}).get("annotations") or {}
    domains, rejected = permissions.parse_domains(
        annotations.get(permissions.DOMAINS_ANNOTATION, "")
    )
    warnings.extend(
        f"namespace {namespace} annotation {permissions.DOMAINS_ANNOTATION}: {entry!r} is not a "
        "domain (example.com, or .example.com for its subdomains); ignored"
        for entry in rejected
    )
    return domains


async def admit_group(**kwargs: Any) -> None:
    """The RecipientGroup webhook (group_admission), with this module's domain reading."""
    await group_admission.admit_group(domains_of=namespace_domains, **kwargs)


async def refuse_connect_to_runs(
    body: Mapping[str, Any], subresource: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """exec, attach and port-forward into a pod of a report's run: refused (403) for everyone.
    Its termination message is the run's result line, which the operator trusts."""
    if subresource not in permissions.CONNECT_SUBRESOURCES:
        return
    meta = body.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    try:
        pod = await memo.kube.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    except ApiException as exc:
        raise kopf.AdmissionError(
            f"cannot check pod {name!r} for pods/{subresource}: HTTP {exc.status} from the "
            f"apiserver: {_api_message(exc)}",
            code=500,
        ) from exc
    markers = permissions.operator_markers((pod or {}).get("metadata"))
    if markers:
        raise kopf.AdmissionError(
            permissions.connect_refusal(subresource, name, namespace, markers), code=403
        )


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.reason)


def register(registry: kopf.OperatorRegistry | None = None) -> None:
    """Add the handler to a registry: kopf's default one at import, or a test's own."""
    kopf.on.validate(
        models.GROUP,
        models.VERSION,
        models.PLURAL,
        id=WEBHOOK_ID,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )(admit_report)
    kopf.on.validate(
        models.GROUP,
        models.VERSION,
        models.GROUP_PLURAL,
        id=recipient_groups.GROUP_WEBHOOK_ID,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )(admit_group)
    kopf.on.validate(
        "v1",
        "pods",
        id=CONNECT_WEBHOOK_ID,
        operations=["CONNECT"],
        subresource="*",
        registry=registry,
    )(refuse_connect_to_runs)


def _client_config(base: Mapping[str, Any], handler: str) -> dict[str, Any]:
    config = dict(base)
    if "url" in config:
        config["url"] = f"{config['url'].rstrip('/')}/{handler}"
    if "service" in config:
        service = dict(config["service"])
        service["path"] = f"{service.get('path', '').rstrip('/')}/{handler}"
        config["service"] = service
    return config


def _group_webhook(webhook: Mapping[str, Any], client_config: Mapping[str, Any]) -> dict[str, Any]:
    """The same webhook for RecipientGroups (group_admission)."""
    rule = {**webhook["rules"][0], "resources": [models.GROUP_PLURAL]}
    return {
        **webhook,
        "name": recipient_groups.GROUP_WEBHOOK_ID,
        "clientConfig": _client_config(client_config, recipient_groups.GROUP_WEBHOOK_ID),
        "rules": [rule],
    }


def webhook_configuration(
    name: str,
    client_config: Mapping[str, Any],
    namespace: str | None = None,
    protect_runs: bool = True,
    operator_namespace: str | None = None,
) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration that sends ScheduledReport creates and updates (not
    status writes) to the handler, and (`protect_runs`) exec, attach and port-forward requests
    to the pods handler. `client_config` is the server's base (a `url`, or a `service`, plus
    `caBundle`, as kopf.WebhookServer yields it); each handler's path is appended.
    `namespace` limits both to one namespace. Failure policy Fail: an unreachable webhook
    blocks admission rather than letting unchecked reports in, or an exec into a run. So that
    a broken operator can still be debugged, exec in kube-system and `operator_namespace`
    never waits for it."""
    selector = (
        {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        if namespace is not None
        else None
    )
    webhook: dict[str, Any] = {
        "name": WEBHOOK_ID,
        "clientConfig": _client_config(client_config, WEBHOOK_ID),
        "rules": [
            {
                "apiGroups": [models.GROUP],
                "apiVersions": [models.VERSION],
                "operations": ["CREATE", "UPDATE"],
                "resources": [models.PLURAL],
                "scope": "Namespaced",
            }
        ],
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 10,
    }
    if selector is not None:
        webhook["namespaceSelector"] = selector
    webhooks = [webhook]
    if protect_runs:
        exempt = sorted({"kube-system", operator_namespace or "kube-system"})
        webhooks.append(
            {
                **webhook,
                "name": CONNECT_WEBHOOK_ID,
                "clientConfig": _client_config(client_config, CONNECT_WEBHOOK_ID),
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CONNECT"],
                        "resources": [f"pods/{sub}" for sub in permissions.CONNECT_SUBRESOURCES],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": selector
                or {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": exempt,
                        }
                    ]
                },
            }
        )
    webhooks.append(_group_webhook(webhook, client_config))
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": webhooks,
    }


register()
