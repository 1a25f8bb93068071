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
from tidings.renderer.channels import slack
from tidings.renderer.channels.slack import Slack
from tidings.renderer.channels.teams import Teams
from tidings.renderer.channels.webhook import Relay, Webhook
from tidings.renderer.result import InputError, RunResult

CHANNEL_SECRET_DIR_ENV = "TIDINGS_CHANNEL_SECRET_DIR"
DEFAULT_CHANNEL_SECRET_DIR = "/etc/tidings/channels"  # <dir>/<index>/key: each Secret key


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
    try:
        slack_api = slack.api_url(env.get(slack.API_URL_ENV))
    except ValueError as error:
        raise InputError(f"renderer configuration: {error}") from None
    found: list[ch.Channel] = []
    for index, channel in enumerate(listed):
        if (hook := channel.webhook) is not None:
            path = f"spec.delivery.channels[{index}].webhook.signingSecretRef"
            key = _mounted(root, index, path, hook.signing_secret_ref, "the signing key")
            multipart = hook.attachments == models.ChannelAttachments.MULTIPART
            found.append(
                Webhook(
                    f"webhook[{index}]", hook.url, key, multipart, denied, index=index, relay=relay
                )
            )
        elif (chat := channel.slack) is not None:
            path = f"spec.delivery.channels[{index}].slack.tokenSecretRef"
            token = _mounted(root, index, path, chat.token_secret_ref, "the bot token").decode()
            found.append(
                Slack(
                    f"slack[{index}]",
                    chat.channel,
                    token,
                    slack_api,
                    denied,
                    index=index,
                    relay=relay,
                )
            )
        elif (card := channel.teams) is not None:
            path = f"spec.delivery.channels[{index}].teams.urlSecretRef"
            url = _mounted(root, index, path, card.url_secret_ref, "the workflow URL").decode()
            found.append(Teams(f"teams[{index}]", card.host, url, denied, index=index, relay=relay))
    return found


def _mounted(root: Path, index: int, path: str, ref: models.SecretKeyRef, what: str) -> bytes:
    """A channel's Secret key as mounted (<root>/<index>/key); InputError naming the field."""
    try:
        value = (root / str(index) / "key").read_bytes().strip()
    except OSError:
        raise InputError(
            f"{path}: key {ref.key} of Secret {ref.name} is not mounted (does the Secret "
            "exist with that key?)"
        ) from None
    if not value:
        raise InputError(f"{path}: {what} is empty")
    return value


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
