"""The Secret key each channel (spec.delivery.channels) mounts into the report's pod: a
webhook's signing key, a Slack bot token, a Teams workflow URL, each as <index>/key of the
projected volume `channels` (renderer/channels/run.py reads them there)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECRET_FIELDS = (
    ("webhook", "signingSecretRef"),
    ("slack", "tokenSecretRef"),
    ("teams", "urlSecretRef"),
)


def channel_secret_ref(channel: Mapping[str, Any]) -> Mapping[str, Any]:
    """The channel's one Secret key reference, {} when it has none."""
    for kind, field in SECRET_FIELDS:
        if ref := (channel.get(kind) or {}).get(field):
            return dict(ref)
    return {}


def channel_key_sources(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each channel's Secret key as <index>/key of the projected volume `channels`."""
    sources = []
    for index, channel in enumerate((spec.get("delivery") or {}).get("channels") or ()):
        ref = channel_secret_ref(channel or {})
        if ref.get("name") and ref.get("key"):
            items = [{"key": ref["key"], "path": f"{index}/key"}]
            sources.append({"secret": {"name": ref["name"], "items": items}})
    return sources
