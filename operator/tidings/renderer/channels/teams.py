"""The Teams channel: an Adaptive Card with the run's summary, POSTed to a Teams workflow
webhook ("Post to a channel when a webhook request is received"). The workflow's URL carries
its own signature, so it is a credential and lives in a Secret (urlSecretRef); the spec names
its host, which admission checks and the relay compares: a URL for any other host, or not
https://, is refused, and no redirect is followed. Teams takes no files: the card says whom
the report was mailed to and which ReportDelivery records the run.

200 and 202 are success; the webhook classes apply to everything else (408, 429 with
Retry-After and 5xx transient, any other 4xx permanent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tidings import netguard
from tidings.renderer.channels import ChannelFailed, Summary, quiet_client_logs
from tidings.renderer.channels.slack import CREDENTIAL_HEADER
from tidings.renderer.channels.webhook import (
    IDEMPOTENCY_HEADER,
    Network,
    Relay,
    classify,
    post,
)
from tidings.renderer.result import PERMANENT

CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def url_problem(url: str, host: str) -> str | None:
    """Why the URL from the Secret must not be posted to for the admitted `host`, if so."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "the workflow URL is not https://"
    if (parts.hostname or "").lower() != host.lower() or parts.username or parts.password:
        return f"the workflow URL is not on the admitted host {host}"
    return None


def card(summary: Summary) -> dict[str, Any]:
    """The message a Teams workflow posts: one Adaptive Card with a title and the facts."""
    facts = [{"title": label, "value": value} for label, value in summary.facts()]
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": summary.title},
            {"type": "FactSet", "facts": facts},
        ],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": content}],
    }


@dataclass
class Teams:
    """spec.delivery.channels[i].teams, with its workflow URL read from the mounted Secret."""

    name: str
    host: str
    url: str
    denied: tuple[Network, ...] = netguard.DEFAULT_DENIED
    kind: str = "teams"
    index: int = 0
    relay: Relay | None = None

    @property
    def destination(self) -> str:
        return self.host

    def send(self, summary: Summary, deadline: float) -> str:
        if problem := url_problem(self.url, self.host):
            raise ChannelFailed(f"{problem} (urlSecretRef)", PERMANENT)
        quiet_client_logs()
        body = json.dumps(card(summary), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: summary.idempotency_key(self.name),
            "User-Agent": "tidings-teams",
        }
        if self.relay is None:
            answer = post(self.url, body, headers, deadline, self.denied, (self.url,), False)
        else:
            headers[CREDENTIAL_HEADER] = self.url
            answer = self.relay.forward(self.index, body, headers, deadline, (self.url,))
        if not 200 <= answer.status < 300:
            raise classify(answer.status, answer.reply, answer.retry_after)
        return f"HTTP {answer.status}" + (f": {answer.reply}" if answer.reply else "")
