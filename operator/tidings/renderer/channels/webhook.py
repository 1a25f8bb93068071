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


@dataclass
class Webhook:
    """spec.delivery.channels[i].webhook, with its key read from the mounted Secret."""

    name: str
    url: str
    key: bytes
    multipart: bool = False
    denied: tuple[Network, ...] = netguard.DEFAULT_DENIED
    kind: str = "webhook"

    @property
    def destination(self) -> str:
        return urlsplit(self.url).hostname or ""

    def send(self, summary: Summary, deadline: float) -> str:
        import httpx

        body, content_type = body_of(summary, self.name, self.multipart)
        headers = {
            "Content-Type": content_type,
            SIGNATURE_HEADER: signature(self.key, body),
            IDEMPOTENCY_HEADER: summary.idempotency_key(self.name),
            "User-Agent": "tidings-webhook",
        }
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            self._check(url)
            timeout = max(0.5, min(ATTEMPT_TIMEOUT, remaining(deadline)))
            try:
                with httpx.Client(timeout=timeout, follow_redirects=False) as client:
                    response = client.post(url, content=body, headers=headers)
            except httpx.TimeoutException:
                raise ChannelFailed(
                    f"{self.destination} did not answer in time", TRANSIENT
                ) from None
            except httpx.HTTPError as error:
                why = (
                    redact(str(error), [self.key.decode(errors="replace")]) or type(error).__name__
                )
                raise ChannelFailed(f"cannot reach {self.destination}: {why}", TRANSIENT) from None
            status = response.status_code
            reply = " ".join(response.text[:MAX_REPLY].split())
            if status in (307, 308):
                url = self._redirect(url, response.headers.get("location", ""))
                continue
            if 300 <= status < 400:
                raise ChannelFailed(
                    f"HTTP {status} redirect: only 307 and 308 keep the POST", PERMANENT
                )
            if status >= 300 or status < 200:
                raise classify(status, reply, response.headers.get("retry-after"))
            return f"HTTP {status}" + (f": {reply}" if reply else "")
        raise ChannelFailed(f"more than {MAX_REDIRECTS} redirects", PERMANENT)

    def _redirect(self, current: str, location: str) -> str:
        target = urljoin(current, location)
        if urlsplit(target).scheme != "https":
            raise ChannelFailed(
                f"redirected to {urlsplit(target).scheme or 'a relative'}: only https:// is "
                "followed",
                PERMANENT,
            )
        return target

    def _check(self, url: str) -> None:
        """The network guard, for the URL and each redirect: a denied address is permanent."""
        host = urlsplit(url).hostname or ""
        if problem := netguard.ambiguous_ipv4(host):
            raise ChannelFailed(f"{host}: {problem}", PERMANENT)
        if refused := netguard.refused_address(host, self.denied):
            raise ChannelFailed(
                f"{host} resolves to {refused}, a denied address (TIDINGS_HTTP_DENIED_NETWORKS)",
                PERMANENT,
            )
