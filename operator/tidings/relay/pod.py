"""What a renderer pod needs to submit to the relay: the relay's address instead of the
platform relay's, and a projected service-account token for the relay's audience (the kubelet
mints it bound to the pod and rotates it; the pod has no other token)."""

from __future__ import annotations

from typing import Any

TOKEN_DIR = "/var/run/secrets/tidings.dev/relay"
TOKEN_EXPIRY_SECONDS = 600  # the shortest the kubelet accepts; it rotates at 80 %


def env(host: str, port: int) -> dict[str, str]:
    """TIDINGS_* of the pod: plain SMTP to the relay, the token as AUTH PLAIN password."""
    return {
        "TIDINGS_SMTP_HOST": host,
        "TIDINGS_SMTP_PORT": str(port),
        "TIDINGS_SMTP_TLS": "none",
        "TIDINGS_RELAY_TOKEN_DIR": TOKEN_DIR,
    }


def token_volume(audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of the relay token at TOKEN_DIR/token."""
    token = {"audience": audience, "expirationSeconds": TOKEN_EXPIRY_SECONDS, "path": "token"}
    volume = {"name": "relay-token", "projected": {"sources": [{"serviceAccountToken": token}]}}
    return volume, {"name": "relay-token", "mountPath": TOKEN_DIR, "readOnly": True}
