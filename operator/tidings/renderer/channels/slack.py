"""The Slack channel: the run's summary as a message in one channel, with the report's files,
through Slack's external upload flow: files.getUploadURLExternal (filename, length) for each
file, the bytes POSTed to the upload_url it returns, then files.completeUploadExternal
(files, channel_id, initial_comment = the summary). Without files: chat.postMessage.

Slack answers API errors with HTTP 200 and {"ok": false, "error": ...}: ratelimited (or HTTP
429, with Retry-After) and Slack's own outages are transient, every other error (invalid_auth,
channel_not_found, not_in_channel, missing_scope, ...) permanent; 5xx, timeouts and dropped
connections transient.

The API base is https://slack.com/api/ unless TIDINGS_SLACK_API_URL (the relay's or the
node's environment, never the report's spec) says otherwise, so loopback fakes can stand in.
Through the delivery relay the pod sends the text, the files and its bot token; the relay runs
this flow itself, against its own API base and the channel of the report's admitted spec.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tidings import netguard
from tidings.renderer.channels import MAX_REPLY, ChannelFailed, Summary, quiet_client_logs
from tidings.renderer.channels.webhook import (
    ATTEMPT_TIMEOUT,
    IDEMPOTENCY_HEADER,
    Network,
    Relay,
    check_destination,
    classify,
    retry_after,
)
from tidings.renderer.deadline import remaining
from tidings.renderer.result import PERMANENT, TRANSIENT, redact

API_URL = "https://slack.com/api/"
API_URL_ENV = "TIDINGS_SLACK_API_URL"
CREDENTIAL_HEADER = "X-Tidings-Credential"  # pod -> relay only: a bot token, a Teams URL
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def api_url(value: str | None) -> str:
    """TIDINGS_SLACK_API_URL as a base ending in /; https:// only (http:// for loopback fakes
    would carry the bot token in the clear)."""
    base = (value or "").strip() or API_URL
    parts = urlsplit(base)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{API_URL_ENV}: {base!r} is not an https:// URL")
    return base if base.endswith("/") else base + "/"


def message_text(summary: Summary) -> str:
    """The summary as Slack mrkdwn: a bold title line, then one line per fact."""
    lines = [f"*{_escape(summary.title)}*"]
    lines += [f"{label}: {_escape(value)}" for label, value in summary.facts()]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class File:
    name: str
    content: bytes


def envelope(summary: Summary) -> bytes:
    """What the pod sends the relay: the text and the files (the channel is the relay's)."""
    files = [
        {"name": a.filename, "content": base64.b64encode(a.content).decode()}
        for a in summary.attachments
    ]
    return json.dumps({"text": message_text(summary), "files": files}).encode()


def parse_envelope(body: bytes) -> tuple[str, list[File]]:
    """The relay's reading of envelope(); ValueError saying what is wrong."""
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("a JSON object with text (a string) and files")
    files = []
    for item in data.get("files") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError("each file needs a name and base64 content")
        files.append(File(item["name"][:255], base64.b64decode(item.get("content") or "")))
    return data["text"][:40000], files


def _api_error(method: str, error: str, retry: str | None) -> ChannelFailed:
    message = f"Slack {method}: {error}"
    if error in TRANSIENT_ERRORS:
        return ChannelFailed(message, TRANSIENT, retry_after(retry))
    return ChannelFailed(message, PERMANENT)


class _Session:
    """One attempt's requests, all with the network guard and the attempt's timeout."""

    def __init__(self, api: str, token: str, deadline: float, denied: tuple[Network, ...]):
        self.api = api
        self.token = token
        self.deadline = deadline
        self.denied = denied

    def _post(self, url: str, method: str, **kwargs: Any) -> Any:
        import httpx

        check_destination(url, self.denied)
        host = urlsplit(url).hostname or ""
        timeout = max(0.5, min(ATTEMPT_TIMEOUT, remaining(self.deadline)))
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=True) as client:
                return client.post(url, **kwargs)
        except httpx.TimeoutException:
            raise ChannelFailed(
                f"Slack {method}: {host} did not answer in time", TRANSIENT
            ) from None
        except httpx.HTTPError as error:
            why = redact(str(error), [self.token]) or type(error).__name__
            raise ChannelFailed(f"Slack {method}: cannot reach {host}: {why}", TRANSIENT) from None

    def call(self, method: str, fields: dict[str, str]) -> dict[str, Any]:
        """A Web API method; its JSON answer when ok, ChannelFailed otherwise."""
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": "tidings-slack"}
        response = self._post(self.api + method, method, data=fields, headers=headers)
        retry = response.headers.get("retry-after")
        if response.status_code != 200:
            reply = " ".join(response.text[:MAX_REPLY].split())
            failed = classify(response.status_code, reply, retry)
            raise ChannelFailed(f"Slack {method}: {failed}", failed.failure, failed.retry_after)
        try:
            answer = response.json()
        except ValueError:
            raise ChannelFailed(f"Slack {method}: the answer is not JSON", TRANSIENT) from None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            error = str((answer or {}).get("error") or "no ok in the answer")[:100]
            raise _api_error(method, error, retry)
        return answer

    def upload(self, url: str, file: File) -> None:
        """The bytes to the upload_url Slack gave: https:// on the API's own host or below."""
        parts = urlsplit(url)
        api_host = urlsplit(self.api).hostname or ""
        host = parts.hostname or ""
        if parts.scheme != "https" or not (host == api_host or host.endswith("." + api_host)):
            raise ChannelFailed(
                f"Slack gave an upload URL on {host or 'no host'}, not https:// under {api_host}",
                PERMANENT,
            )
        headers = {"Content-Type": "application/octet-stream", "User-Agent": "tidings-slack"}
        response = self._post(url, "upload", content=file.content, headers=headers)
        if response.status_code != 200:
            reply = " ".join(response.text[:MAX_REPLY].split())
            failed = classify(response.status_code, reply, response.headers.get("retry-after"))
            raise ChannelFailed(f"Slack upload: {failed}", failed.failure, failed.retry_after)


def deliver(
    api: str,
    token: str,
    channel: str,
    text: str,
    files: Sequence[File],
    deadline: float,
    denied: tuple[Network, ...] = netguard.DEFAULT_DENIED,
) -> str:
    """One attempt at the whole flow; the reply to record, ChannelFailed otherwise. A retry
    starts again: uploads never completed are discarded by Slack, nothing is posted twice."""
    quiet_client_logs()
    session = _Session(api, token, deadline, denied)
    if not files:
        answer = session.call("chat.postMessage", {"channel": channel, "text": text})
        return f"posted to {channel} (ts {str(answer.get('ts'))[:32]})"
    shared = []
    for file in files:
        fields = {"filename": file.name, "length": str(len(file.content))}
        answer = session.call("files.getUploadURLExternal", fields)
        url, file_id = answer.get("upload_url"), answer.get("file_id")
        if not isinstance(url, str) or not isinstance(file_id, str):
            raise ChannelFailed("Slack gave no upload_url and file_id", TRANSIENT)
        session.upload(url, file)
        shared.append({"id": file_id, "title": file.name})
    complete = {"files": json.dumps(shared), "channel_id": channel, "initial_comment": text}
    session.call("files.completeUploadExternal", complete)
    return f"shared {len(shared)} file(s) in {channel}"


@dataclass
class Slack:
    """spec.delivery.channels[i].slack, with its bot token read from the mounted Secret."""

    name: str
    channel: str
    token: str
    api: str = API_URL
    denied: tuple[Network, ...] = netguard.DEFAULT_DENIED
    kind: str = "slack"
    index: int = 0
    relay: Relay | None = None

    @property
    def destination(self) -> str:
        return f"{urlsplit(self.api).hostname}/{self.channel}"

    def send(self, summary: Summary, deadline: float) -> str:
        if self.relay is None:
            files = [File(a.filename, a.content) for a in summary.attachments]
            text = message_text(summary)
            return deliver(self.api, self.token, self.channel, text, files, deadline, self.denied)
        headers = {
            "Content-Type": "application/json",
            CREDENTIAL_HEADER: self.token,
            IDEMPOTENCY_HEADER: summary.idempotency_key(self.name),
        }
        body = envelope(summary)
        answer = self.relay.forward(self.index, body, headers, deadline, (self.token,))
        if not 200 <= answer.status < 300:
            raise classify(answer.status, answer.reply, answer.retry_after)
        return answer.reply
