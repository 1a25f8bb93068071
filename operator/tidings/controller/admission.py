"""The validating admission webhook for ScheduledReports (a kopf `on.validate` handler).

Importing this module registers the handler in kopf's default registry, so the operator only has
to import it and give kopf a webhook server (`settings.admission.server`). The handler first runs
`validate_spec` and rejects with HTTP 422 and every problem as "path: rule"; warnings (such as a
subject without {date}) go back to kubectl through kopf's admission warnings. Then, for changes
that need the custom verb `schedule` (tidings.controller.permissions), it asks the apiserver with a
SubjectAccessReview whether the requesting user has it, and rejects with HTTP 403 if not.

The permission check uses `memo.kube` and `memo.settings`, which the operator's startup handler
sets; it fails closed (HTTP 500) when the apiserver cannot answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tidings import models
from tidings.controller import permissions, testsend
from tidings.controller.kube import Kube
from tidings.controller.settings import Settings
from tidings.validation import validate_spec

# The handler id is also the path of the webhook URL kopf's server answers on.
WEBHOOK_ID = f"validate.{models.PLURAL}.{models.GROUP}"
# An AdmissionReview of an UPDATE holds the object twice, and the apiserver stores objects of
# up to 3 MiB (its request limit): aiohttp's 1 MiB default answered 413 from about 300 KB on.
MAX_REVIEW_BYTES = 8 * 1024 * 1024


class LargeRequestWebhookServer(kopf.WebhookServer):
    """kopf's webhook server, accepting reviews of any object the apiserver can store."""

    @staticmethod
    async def _serve(fn: Any, request: Any) -> Any:
        clone = request.clone(client_max_size=MAX_REVIEW_BYTES)
        return await kopf.WebhookServer._serve(fn, clone)


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
    """The webhook: the rules first (422), then the `schedule` verb if a change needs it (403)."""
    validate_report(body=body, old=old, operation=operation, warnings=warnings)
    updated = operation == "UPDATE" and old is not None
    old_spec = old.get("spec") if updated else None
    old_meta = old.get("metadata") if updated else None
    await check_schedule_permission(
        memo.kube, memo.settings, body, old_spec, userinfo, warnings, old_meta
    )


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
        if permissions.added_recipients(old_spec, spec) or test_address:
            own = await namespace_domains(kube, namespace, warnings)
            domains = tuple(dict.fromkeys(domains + own))
        needs = permissions.schedule_needs(old_spec, spec, domains)
        needs += permissions.test_send_needs(test_address, domains)
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


def webhook_configuration(
    name: str, client_config: Mapping[str, Any], namespace: str | None = None
) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration that sends ScheduledReport creates and updates (not
    status writes) to the handler. `client_config` is the server's base (a `url`, or a
    `service`, plus `caBundle`, as kopf.WebhookServer yields it); the handler's path is appended.
    `namespace` limits it to one namespace. Failure policy Fail: an unreachable webhook blocks
    admission rather than letting unchecked reports in."""
    config = dict(client_config)
    if "url" in config:
        config["url"] = f"{config['url'].rstrip('/')}/{WEBHOOK_ID}"
    if "service" in config:
        service = dict(config["service"])
        service["path"] = f"{service.get('path', '').rstrip('/')}/{WEBHOOK_ID}"
        config["service"] = service
    webhook: dict[str, Any] = {
        "name": WEBHOOK_ID,
        "clientConfig": config,
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
    if namespace is not None:
        webhook["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


register()
