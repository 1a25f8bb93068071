"""The I/O side of the operator-managed webhook TLS (the decisions are in webhook_tls).

Every replica runs `WebhookTLSStore.ensure` at start and then periodically:
1. the Secret in the operator's namespace is the one source of the certificate: absent ->
   create it (a 409 means another replica won the race: use theirs); due for renewal ->
   replace it with the resourceVersion that was read (a 409 means another replica already
   rotated: re-read and use theirs). So all replicas end up serving the same certificate.
2. the certificate and key are written to a local directory that kopf's webhook server
   watches; kopf reloads its TLS context when the files change. Both files are swapped in one
   step (a symlink flip), so the server never sees a new certificate with the old key.
3. the ValidatingWebhookConfiguration's caBundle is set to the Secret's CA bundle.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tidings.contract import COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from tidings.controller import webhook_tls as tls

CHECK_INTERVAL = timedelta(hours=1)
# After a failed check (say, the webhook configuration is not applied yet) try again soon.
RETRY_INTERVAL = timedelta(seconds=10)
ATTEMPTS = 5  # lost create/rotate races in a row before giving up (one more replica each)
MANAGED_LABELS = {MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: "webhook"}

log = logging.getLogger("tidings.webhook_tls")


@dataclass
class WebhookTLSStore:
    """Keeps one webhook certificate in a Secret, on local disk and in the webhook's caBundle."""

    api: client.ApiClient
    namespace: str
    secret_name: str
    service: str
    configuration: str
    cert_dir: Path
    validity: timedelta = tls.CERT_VALIDITY
    renew_before: timedelta = tls.RENEW_BEFORE

    @property
    def cert_file(self) -> Path:
        return self.cert_dir / "current" / tls.CERT_KEY

    @property
    def key_file(self) -> Path:
        return self.cert_dir / "current" / tls.KEY_KEY

    def ensure(self, now: datetime | None = None) -> bool:
        """One check. Returns False when the caBundle could not be published yet (the webhook
        configuration does not exist); API errors on the Secret raise ApiException."""
        bundle = self.ensure_secret(now or datetime.now(UTC))
        self.write_files(bundle)
        return self.publish_ca(bundle.ca)

    def ensure_secret(self, now: datetime) -> tls.TLSBundle:
        """The Secret's bundle, issuing or rotating it first when that is due."""
        core = client.CoreV1Api(self.api)
        for _attempt in range(ATTEMPTS):
            try:
                secret = core.read_namespaced_secret(self.secret_name, self.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                secret = None
            current = tls.TLSBundle.from_secret_data(secret.data if secret else None)
            reason = tls.renewal_reason(
                current, self.service, self.namespace, now, self.renew_before
            )
            if reason is None and current is not None:
                return current
            fresh = tls.issue(
                self.service,
                self.namespace,
                now,
                self.validity,
                previous_ca=current.ca if current else b"",
            )
            body = client.V1Secret(
                metadata=client.V1ObjectMeta(
                    name=self.secret_name,
                    namespace=self.namespace,
                    labels=MANAGED_LABELS,
                    # Replace only what was read: a concurrent rotation wins, we re-read.
                    resource_version=secret.metadata.resource_version if secret else None,
                ),
                type="kubernetes.io/tls",
                data=fresh.secret_data(),
            )
            try:
                if secret is None:
                    core.create_namespaced_secret(self.namespace, body)
                else:
                    core.replace_namespaced_secret(self.secret_name, self.namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                continue  # another replica created or rotated it first: use theirs
            log.info("issued the webhook certificate in Secret %s: %s", self.secret_name, reason)
            return fresh
        raise RuntimeError(
            f"Secret {self.namespace}/{self.secret_name} kept changing while being read"
        )

    def write_files(self, bundle: tls.TLSBundle) -> None:
        """Put the certificate and key where the webhook server reads them, atomically."""
        digest = hashlib.sha256(bundle.cert + bundle.key).hexdigest()[:16]
        target = self.cert_dir / digest
        current = self.cert_dir / "current"
        if current.is_symlink() and os.readlink(current) == digest:
            return
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        (target / tls.CERT_KEY).write_bytes(bundle.cert)
        key_path = target / tls.KEY_KEY
        key_path.touch(mode=0o600)
        key_path.write_bytes(bundle.key)
        staged = self.cert_dir / f".current-{digest}"
        staged.unlink(missing_ok=True)
        staged.symlink_to(digest)
        staged.replace(current)
        for old in self.cert_dir.iterdir():
            if old.is_dir() and not old.is_symlink() and old.name != digest:
                shutil.rmtree(old)

    def publish_ca(self, ca: bytes) -> bool:
        """Set the caBundle of every webhook in the configuration that lacks this bundle: the
        ValidatingWebhookConfiguration, and the MutatingWebhookConfiguration of the same name
        (the DST slot webhook, tidings.controller.slot_guard) when there is one."""
        admission = client.AdmissionregistrationV1Api(self.api)
        try:
            config = admission.read_validating_webhook_configuration(self.configuration)
        except ApiException as exc:
            if exc.status != 404:
                raise
            log.warning("ValidatingWebhookConfiguration %s not found; retrying", self.configuration)
            return False
        wanted = base64.b64encode(ca).decode()
        patch = _ca_patch(config, wanted)
        if patch:
            admission.patch_validating_webhook_configuration(self.configuration, patch)
            log.info("published the webhook CA bundle to %s", self.configuration)
        try:
            mutating = admission.read_mutating_webhook_configuration(self.configuration)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return True  # installed without the slot webhook
        patch = _ca_patch(mutating, wanted)
        if patch:
            admission.patch_mutating_webhook_configuration(self.configuration, patch)
            log.info("published the webhook CA bundle to mutating %s", self.configuration)
        return True

    def run_periodically(self, stop: threading.Event, retry_soon: bool = False) -> None:
        """Re-check every CHECK_INTERVAL (RETRY_INTERVAL after a failure, or first if
        `retry_soon`) until `stop` is set."""
        delay = RETRY_INTERVAL if retry_soon else CHECK_INTERVAL
        while not stop.wait(delay.total_seconds()):
            try:
                delay = CHECK_INTERVAL if self.ensure() else RETRY_INTERVAL
            except Exception:
                log.exception("checking the webhook certificate failed; retrying")
                delay = RETRY_INTERVAL


def _ca_patch(config: Any, wanted: str) -> list[dict[str, str]]:
    """JSON patch ops setting `wanted` as caBundle on each webhook that lacks it."""
    patch = []
    for index, webhook in enumerate(config.webhooks or []):
        if webhook.client_config.ca_bundle != wanted:
            # The test guards against the list changing between our read and the patch.
            path = f"/webhooks/{index}"
            patch.append({"op": "test", "path": f"{path}/name", "value": webhook.name})
            patch.append({"op": "add", "path": f"{path}/clientConfig/caBundle", "value": wanted})
    return patch
