"""One forwarded copy per recipient and run key (report uid, scheduled window, trigger).

Durable and shared by every relay replica: a ConfigMap per key in the relay's namespace, named
by the key's hash, holding the hashes of the addresses already forwarded (no address in clear)
and an expiry; updates are conditional on resourceVersion, so two replicas cannot both claim
an address. A claim is taken before the message goes upstream and given back only when the
upstream certainly did not take it: a crash in between loses at most that copy, never sends two.
Expired keys are deleted by `prune`; until then they still count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tidings.relay.policy import normalize
from tidings.schedule import rfc3339

COMPONENT = "relay-dedupe"
KEY_ANNOTATION = "tidings.dev/relay-key"
EXPIRES_ANNOTATION = "tidings.dev/expires-at"
DEFAULT_TTL = timedelta(days=8)  # a weekly report's slot, its retries and a late second fire
_ATTEMPTS = 8


def address_hash(address: str) -> str:
    return hashlib.sha256(normalize(address).encode()).hexdigest()


def configmap_name(key: str) -> str:
    return "tidings-relay-sent-" + hashlib.sha256(key.encode()).hexdigest()[:40]


class DedupeStore:
    """The forwarded addresses of each key, in ConfigMaps of `namespace`."""

    def __init__(
        self,
        core: client.CoreV1Api,
        namespace: str,
        ttl: timedelta = DEFAULT_TTL,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.core = core
        self.namespace = namespace
        self.ttl = ttl
        self.now = now

    def sent(self, key: str) -> set[str]:
        """Hashes of the addresses already forwarded for `key`."""
        found = self._read(key)
        return _hashes(found) if found is not None else set()

    def claim(self, key: str, addresses: Iterable[str]) -> list[str]:
        """The addresses of `addresses` this caller may forward now; the others have been (or
        are being) forwarded for `key` already."""
        wanted = {address_hash(a): a for a in addresses}
        for _ in range(_ATTEMPTS):
            found = self._read(key)
            have = _hashes(found) if found is not None else set()
            new = {h: a for h, a in wanted.items() if h not in have}
            if not new:
                return []
            try:
                self._write(key, found, have | set(new))
            except ApiException as error:
                if error.status == 409:  # another transaction wrote first: read again
                    continue
                raise
            return list(new.values())
        raise RuntimeError(f"dedupe record {configmap_name(key)}: too many concurrent updates")

    def release(self, key: str, addresses: Iterable[str]) -> None:
        """Give back claims for addresses the upstream certainly did not take."""
        drop = {address_hash(a) for a in addresses}
        for _ in range(_ATTEMPTS):
            found = self._read(key)
            if found is None:
                return
            try:
                self._write(key, found, _hashes(found) - drop)
            except ApiException as error:
                if error.status == 409:
                    continue
                raise
            return

    def prune(self) -> int:
        """Delete expired records; how many."""
        now = rfc3339(self.now())
        listed = self.core.list_namespaced_config_map(
            self.namespace, label_selector=f"app.kubernetes.io/component={COMPONENT}"
        )
        deleted = 0
        for item in listed.items:
            expires = (item.metadata.annotations or {}).get(EXPIRES_ANNOTATION, "")
            if expires and expires < now:
                try:
                    self.core.delete_namespaced_config_map(item.metadata.name, self.namespace)
                    deleted += 1
                except ApiException as error:
                    if error.status != 404:
                        raise
        return deleted

    def _read(self, key: str) -> client.V1ConfigMap | None:
        try:
            return self.core.read_namespaced_config_map(configmap_name(key), self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _write(self, key: str, found: client.V1ConfigMap | None, hashes: set[str]) -> None:
        data = {"sent": "\n".join(sorted(hashes))}
        if found is None:
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name=configmap_name(key),
                    labels={
                        "app.kubernetes.io/managed-by": "tidings",
                        "app.kubernetes.io/component": COMPONENT,
                    },
                    annotations={
                        KEY_ANNOTATION: key,
                        EXPIRES_ANNOTATION: rfc3339(self.now() + self.ttl),
                    },
                ),
                data=data,
            )
            self.core.create_namespaced_config_map(self.namespace, body)
        else:
            found.data = data  # replace keeps found's resourceVersion: 409 if it moved
            self.core.replace_namespaced_config_map(found.metadata.name, self.namespace, found)


def _hashes(found: client.V1ConfigMap) -> set[str]:
    return {line for line in ((found.data or {}).get("sent") or "").splitlines() if line}
