"""A run's channels: built from spec.delivery.channels and their mounted keys, sent after the
email, and folded into the run's result with the rules of partially delivered mail: Delivered
when anything reached its destination (who or what is missing is in `error`), Failed when
nothing did."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tidings import models, netguard
from tidings.contract import (
    CHANNEL_RELAY_ENV,
    EX_OK,
    EX_TEMPFAIL,
    RELAY_TOKEN_DIR,
    RELAY_TOKEN_DIR_ENV,
    ChannelLine,
)
from tidings.renderer import channels as ch
from tidings.renderer.channels.webhook import Relay, Webhook
from tidings.renderer.result import InputError, RunResult

CHANNEL_SECRET_DIR_ENV = "TIDINGS_CHANNEL_SECRET_DIR"
DEFAULT_CHANNEL_SECRET_DIR = "/etc/tidings/channels"  # <dir>/<index>/key: each signing key


def channels_for(
    sr: models.ScheduledReport, env: Mapping[str, str] | None = None
) -> list[ch.Channel]:
    """The report's channels, keys read from their mounts; InputError naming the field when a
    key is missing (the Secret or its key does not exist)."""
    env = os.environ if env is None else env
    listed = sr.spec.delivery.channels or []
    root = Path(env.get(CHANNEL_SECRET_DIR_ENV) or DEFAULT_CHANNEL_SECRET_DIR)
    try:
        denied = netguard.parse_networks(env.get("TIDINGS_HTTP_DENIED_NETWORKS"))
    except ValueError as error:
        raise InputError(f"renderer configuration: {error}") from None
    relay = None
    if base := env.get(CHANNEL_RELAY_ENV):
        tokens = env.get(RELAY_TOKEN_DIR_ENV) or RELAY_TOKEN_DIR
        relay = Relay(base, str(Path(tokens) / "token"))
    found: list[ch.Channel] = []
    for index, channel in enumerate(listed):
        hook = channel.webhook
        if hook is None:
            continue
        path = f"spec.delivery.channels[{index}].webhook.signingSecretRef"
        try:
            key = (root / str(index) / "key").read_bytes().strip()
        except OSError:
            ref = hook.signing_secret_ref
            raise InputError(
                f"{path}: key {ref.key} of Secret {ref.name} is not mounted (does the Secret "
                "exist with that key?)"
            ) from None
        if not key:
            raise InputError(f"{path}: the signing key is empty")
        found.append(
            Webhook(
                name=f"webhook[{index}]",
                url=hook.url,
                key=key,
                multipart=hook.attachments == models.ChannelAttachments.MULTIPART,
                denied=denied,
                index=index,
                relay=relay,
            )
        )
    return found


def combine(mail: RunResult, outcomes: Sequence[ch.ChannelOutcome]) -> RunResult:
    """The run's result with its channels: Delivered when the mail or any channel got through
    (the rest named in `error`), else Failed, transient if any part may work on a retry."""
    if not outcomes:
        return mail
    lines = [ChannelLine.model_validate(o.line()) for o in outcomes]
    refused = ch.note(outcomes)
    if mail.delivered or any(o.accepted for o in outcomes):
        mail_note = "" if mail.delivered else f"email not delivered: {mail.error}"
        error = "; ".join(
            part for part in (mail.error if mail.delivered else mail_note, refused) if part
        )
        return mail.model_copy(
            update={
                "outcome": "Delivered",
                "failure": None,
                "error": error,
                "exit_code": EX_OK,
                "channels": lines,
            }
        )
    failure = "transient" if mail.failure == "transient" else ch.worst_failure(outcomes)
    exit_code = mail.exit_code if failure == mail.failure else EX_TEMPFAIL
    error = "; ".join(part for part in (mail.error, refused) if part)
    return mail.model_copy(
        update={"failure": failure, "error": error, "exit_code": exit_code, "channels": lines}
    )
