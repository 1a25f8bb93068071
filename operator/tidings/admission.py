"""The validating admission webhook for ScheduledReports (a kopf `on.validate` handler).

Importing this module registers the handler in kopf's default registry, so the operator only has
to import it and give kopf a webhook server (`settings.admission.server`). The handler runs
`validate_spec` and rejects with HTTP 422 and every problem as "path: rule"; warnings (such as a
subject without {date}) go back to kubectl through kopf's admission warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from tidings import models
from tidings.validation import validate_spec

# The handler id is also the path of the webhook URL kopf's server answers on.
WEBHOOK_ID = f"validate.{models.PLURAL}.{models.GROUP}"


def validate_report(
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    operation: str | None,
    warnings: list[str],
    **_: Any,
) -> None:
    """Admit a ScheduledReport or raise kopf.AdmissionError(422) naming every broken rule."""
    spec = body.get("spec")
    if operation == "UPDATE" and old is not None and old.get("spec") == spec:
        # Metadata-only updates (annotations, finalizers, labels) must go through even for a
        # report admitted under older rules; the operator marks such a report Invalid instead.
        return
    result = validate_spec(spec)
    warnings.extend(result.warnings)
    if not result.ok:
        raise kopf.AdmissionError(f"{models.KIND} is invalid: {result.summary()}", code=422)


def register(registry: kopf.OperatorRegistry | None = None) -> None:
    """Add the handler to a registry: kopf's default one at import, or a test's own."""
    kopf.on.validate(
        models.GROUP,
        models.VERSION,
        models.PLURAL,
        id=WEBHOOK_ID,
        operations=["CREATE", "UPDATE"],
        registry=registry,
    )(validate_report)


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
