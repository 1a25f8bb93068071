"""The webhook channel: an HTTPS POST of the run's JSON summary (or a multipart/form-data body
of the summary and the attached files), signed with HMAC-SHA256 over the exact body bytes
(X-Tidings-Signature: sha256=<hex>) and carrying Idempotency-Key, the same on every attempt.

Redirects: 307 and 308 only (they keep the POST and its body), each target https:// and checked
by the network guard like the first URL; any other 3xx is a permanent failure.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from tidings import netguard
from tidings.renderer.channels import MAX_REPLY, ChannelFailed, Summary
from tidings.renderer.deadline import remaining
from tidings.renderer.result import PERMANENT, TRANSIENT, redact

SIGNATURE_HEADER = "X-Tidings-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_REDIRECTS = 3
ATTEMPT_TIMEOUT = 30.0  # seconds for one POST, less when the run's deadline is nearer
MAX_RETRY_AFTER = 3600.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def signature(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def body_of(summary: Summary, channel: str, multipart: bool) -> tuple[bytes, str]:
    """(body, Content-Type): the JSON summary, or it and the files as multipart/form-data."""
    document = json.dumps(summary.document(channel), ensure_ascii=False, sort_keys=True).encode()
    if not multipart:
        return document, "application/json"
    boundary = "tidings-" + secrets.token_hex(16)
    parts = [_part(boundary, "summary", None, "application/json", document)]
    for index, attachment in enumerate(summary.attachments):
        kind = f"{attachment.maintype}/{attachment.subtype}"
        parts.append(_part(boundary, f"file{index}", attachment.filename, kind, attachment.content))
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def _part(boundary: str, name: str, filename: str | None, kind: str, content: bytes) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename.replace(chr(34), "")}"'
    head = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {len(content)}\r\n\r\n"
    )
    return head.encode() + content + b"\r\n"


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, delta), MAX_RETRY_AFTER)


def classify(status: int, reply: str, retry: str | None) -> ChannelFailed:
    """A non-2xx answer as the SMTP classes have it: 408, 429 and 5xx transient, any other
    4xx permanent."""
    message = f"HTTP {status}" + (f": {reply}" if reply else "")
    if status in (408, 429) or status >= 500:
        return ChannelFailed(message, TRANSIENT, retry_after(retry))
    return ChannelFailed(message, PERMANENT)


@dataclass(frozen=True)
class Answer:
    status: int
    reply: str  # the body's start, on one line
    retry_after: str | None


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    denied: tuple[Network, ...] = netguard.DEFAULT_DENIED,
    secrets_: tuple[str, ...] = (),
    follow: bool = True,
) -> Answer:
    """POST `body` to `url`, following 307 and 308 to https:// only (none with `follow` off:
    a Teams workflow's URL is its one admitted destination), the network guard on every hop;
    ChannelFailed for what never got an answer (transient) or must not be sent (permanent).
    Shared by the renderer and the delivery relay."""
    import httpx

    host = urlsplit(url).hostname or ""
    for _ in range(MAX_REDIRECTS + 1):
        check_destination(url, denied)
        timeout = max(0.5, min(ATTEMPT_TIMEOUT, remaining(deadline)))
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=True) as client:
                response = client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise ChannelFailed(f"{host} did not answer in time", TRANSIENT) from None
        except httpx.HTTPError as error:
            why = redact(str(error), list(secrets_)) or type(error).__name__
            raise ChannelFailed(f"cannot reach {host}: {why}", TRANSIENT) from None
        status = response.status_code
        if status in (307, 308) and follow:
            url = redirect_target(url, response.headers.get("location", ""))
            continue
        if 300 <= status < 400:
            why = "only 307 and 308 keep the POST" if follow else "not followed for this channel"
            raise ChannelFailed(f"HTTP {status} redirect: {why}", PERMANENT)
        reply = " ".join(response.text[:MAX_REPLY].split())
        return Answer(status, reply, response.headers.get("retry-after"))
    raise ChannelFailed(f"more than {MAX_REDIRECTS} redirects", PERMANENT)


def redirect_target(current: str, location: str) -> str:
    target = urljoin(current, location)
    if urlsplit(target).scheme != "https":
        scheme = urlsplit(target).scheme or "a relative"
        raise ChannelFailed(f"redirected to {scheme}: only https:// is followed", PERMANENT)
    return target


def check_destination(url: str, denied: tuple[Network, ...]) -> None:
    """The network guard, for the URL and each redirect: a denied address is permanent."""
    host = urlsplit(url).hostname or ""
    if problem := netguard.ambiguous_ipv4(host):
        raise ChannelFailed(f"{host}: {problem}", PERMANENT)
    if refused := netguard.refused_address(host, denied):
        raise ChannelFailed(
            f"{host} resolves to {refused}, a denied address (TIDINGS_HTTP_DENIED_NETWORKS)",
            PERMANENT,
        )


RELAY_PATH = "/v1/channels/{index}"
RELAY_REFUSAL_PREFIX = "relay: "  # the relay's own 403s start so; others are the destination's


@dataclass(frozen=True)
class Relay:
    """The delivery relay's forwarding endpoint: the pod names the channel by its index, the
    relay posts to the URL of the report's admitted spec (never one the pod gives)."""

    base: str  # http://relay:8080
    token_file: str

    def token(self) -> str:
        try:
            with open(self.token_file, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as error:
            why = f"the relay token is not readable: {error.strerror}"
            raise ChannelFailed(why, TRANSIENT) from None

    def forward(
        self,
        index: int,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
        secrets_: tuple[str, ...] = (),
    ) -> Answer:
        """POST to the relay for channel `index` with the pod's token; the relay's own refusal
        is permanent, any other answer is the destination's (or the relay's 502/503)."""
        token = self.token()
        target = self.base.rstrip("/") + RELAY_PATH.format(index=index)
        sent = {**headers, "Authorization": f"Bearer {token}"}
        # The relay is in the cluster: the guard (for pods' own sources) is not for it.
        answer = post(target, body, sent, deadline, (), (*secrets_, token))
        if answer.status == 403 and answer.reply.startswith(RELAY_REFUSAL_PREFIX):
            raise ChannelFailed(answer.reply, PERMANENT)
        return answer


@dataclass
class Webhook:
    """spec.delivery.channels[i].webhook, with its key read from the mounted Secret."""

    name: str
    url: str
    key: bytes
    multipart: bool = False
    denied: tuple[Network, ...] = netguard.DEFAULT_DENIED
    kind: str = "webhook"
    index: int = 0
    relay: Relay | None = None

    @property
    def destination(self) -> str:
        return urlsplit(self.url).hostname or ""

    def send(self, summary: Summary, deadline: float) -> str:
        body, content_type = body_of(summary, self.name, self.multipart)
        headers = {
            "Content-Type": content_type,
            SIGNATURE_HEADER: signature(self.key, body),
            IDEMPOTENCY_HEADER: summary.idempotency_key(self.name),
            "User-Agent": "tidings-webhook",
        }
        secret = self.key.decode(errors="replace")
        if self.relay is None:
            answer = post(self.url, body, headers, deadline, self.denied, (secret,))
        else:
            answer = self.relay.forward(self.index, body, headers, deadline, (secret,))
        if not 200 <= answer.status < 300:
            raise classify(answer.status, answer.reply, answer.retry_after)
        return f"HTTP {answer.status}" + (f": {answer.reply}" if answer.reply else "")
