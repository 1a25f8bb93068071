"""The relay's channel front: renderer pods POST a channel's body to /v1/channels/<index> with
their projected relay token as `Authorization: Bearer`; the relay binds the token to the pod's
report exactly as for SMTP (identity.Lookup.bind: TokenReview, pod, Job, CronJob, report, each
by uid), takes the destination from that report's current, admitted spec
(spec.delivery.channels[index]) and forwards the body with its signature and idempotency key.
The pod never names a URL, so a copied job template can reach only what the report admits.

Slack and Teams: the pod sends its credential (the bot token, the workflow URL) in
X-Tidings-Credential, never logged or forwarded as a header. For Slack the relay runs the
upload flow itself against its own API base (TIDINGS_SLACK_API_URL) and the admitted channel
ID; for Teams it posts only when the URL is https:// on the admitted host, no redirect followed.

Answers: the destination's own status, body start and Retry-After; 403 starting "relay: " when
the relay refuses (token, report, channel); 502 when the destination could not be reached (the
renderer's classes apply to all of them). Nothing logged quotes the token or the body.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes.client.exceptions import ApiException

from tidings import netguard
from tidings.relay import policy
from tidings.relay.identity import Lookup
from tidings.renderer.channels import ChannelFailed, quiet_client_logs, slack, teams
from tidings.renderer.channels.slack import CREDENTIAL_HEADER
from tidings.renderer.channels.webhook import (
    IDEMPOTENCY_HEADER,
    RELAY_REFUSAL_PREFIX,
    SIGNATURE_HEADER,
    Network,
    post,
)

log = logging.getLogger("tidings.relay.channels")
PATH = re.compile(r"^/v1/channels/([0-9]{1,2})$")
FORWARD_SECONDS = 60.0  # one forward, redirects included
PASSED_HEADERS = ("Content-Type", SIGNATURE_HEADER, IDEMPOTENCY_HEADER)


CHANNEL_KINDS = {"webhook": "url", "slack": "channel", "teams": "host"}


def admitted(report: Mapping[str, Any], run: policy.Run, index: int) -> tuple[str, str]:
    """(kind, destination) of channel `index` in the report's current spec for this run: a
    webhook's URL, a Slack channel ID, a Teams workflow's host. Refused when none (a test send
    reaches its address only, never a channel)."""
    if run.test:
        raise policy.Refused(f"a test send of {run.where} posts to no channel")
    listed = ((report.get("spec") or {}).get("delivery") or {}).get("channels") or []
    if not 0 <= index < len(listed):
        raise policy.Refused(f"{run.where} admits no channel {index}")
    for kind, key in CHANNEL_KINDS.items():
        value = ((listed[index] or {}).get(kind) or {}).get(key)
        if isinstance(value, str) and value:
            return kind, value
    raise policy.Refused(f"channel {index} of {run.where} has no destination")


def admitted_channel(report: Mapping[str, Any], run: policy.Run, index: int) -> str:
    """The URL webhook channel `index` of the report's current spec admits for this run."""
    kind, url = admitted(report, run, index)
    if kind != "webhook" or not url.startswith("https://"):
        raise policy.Refused(f"channel {index} of {run.where} is not a webhook")
    return url


class ForwardServer:
    """The HTTP front on (address, port), served from daemon threads until stop()."""

    def __init__(
        self,
        lookup: Lookup,
        address: str,
        port: int,
        max_bytes: int,
        denied: tuple[Network, ...] = netguard.DEFAULT_DENIED,
        slack_api: str = slack.API_URL,
    ) -> None:
        quiet_client_logs()  # request URLs may be credentials (a Teams workflow's)
        handler = type("Handler", (_Handler,), {"lookup": lookup, "max_bytes": max_bytes})
        handler.denied = denied
        handler.slack_api = slack_api
        self._server = ThreadingHTTPServer((address, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    lookup: Lookup
    max_bytes: int
    denied: tuple[Network, ...]
    slack_api: str
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        match = PATH.match(self.path)
        if match is None:
            self._answer(404, f"{RELAY_REFUSAL_PREFIX}POST /v1/channels/<index> only")
            return
        length = self.headers.get("Content-Length") or ""
        if not length.isdigit() or int(length) > self.max_bytes:
            self._answer(413, f"{RELAY_REFUSAL_PREFIX}a body of at most {self.max_bytes} bytes")
            return
        body = self.rfile.read(int(length))
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        index = int(match.group(1))
        try:
            if not token:
                raise policy.Refused("no token: send Authorization: Bearer <the relay token>")
            run = self.lookup.bind(token)
            report = self.lookup.report(run.namespace, run.report)
            if report is None or (report.get("metadata") or {}).get("uid") != run.report_uid:
                raise policy.Refused(f"{run.where} is gone")
            kind, where = admitted(report, run, index)
            credential = self.headers.get(CREDENTIAL_HEADER) or ""
            url = where if kind == "webhook" else credential
            if kind == "webhook" and not where.startswith("https://"):
                raise policy.Refused(f"channel {index} of {run.where} is not an https:// webhook")
            if kind == "teams" and (problem := teams.url_problem(credential, where)):
                raise policy.Refused(f"channel {index} of {run.where}: {problem}")
            if kind == "slack" and not credential:
                raise policy.Refused(f"channel {index} of {run.where}: no bot token")
        except policy.Refused as refused:
            log.warning("refused a channel post from %s: %s", self.client_address[0], refused)
            self._answer(403, f"{RELAY_REFUSAL_PREFIX}{refused}")
            return
        except ApiException as error:  # status only: a body may quote the review
            log.error("cannot check a channel post: API %s", error.status)
            self._answer(503, "relay cannot check the token now")
            return
        deadline = time.monotonic() + FORWARD_SECONDS
        if kind == "slack":
            self._slack(run, index, where, credential, body, deadline)
            return
        headers = {k: v for k in PASSED_HEADERS if (v := self.headers.get(k))}
        headers["User-Agent"] = "tidings-relay"
        try:
            follow = kind == "webhook"  # a Teams workflow is its one URL
            answer = post(url, body, headers, deadline, self.denied, (url,), follow)
        except ChannelFailed as failed:
            code = 502 if failed.failure == "transient" else 403
            prefix = "" if code == 502 else RELAY_REFUSAL_PREFIX
            log.warning("%s channel %d: %s", run.where, index, failed)
            self._answer(code, f"{prefix}{failed}")
            return
        log.info("%s (job %s): channel %d answered %d", run.where, run.job, index, answer.status)
        self._answer(answer.status, answer.reply, answer.retry_after)

    def _slack(
        self, run: policy.Run, index: int, channel: str, token: str, body: bytes, deadline: float
    ) -> None:
        """Slack's upload flow run here, to the admitted channel on the relay's own API base:
        200 with the reply, 422 for a permanent failure, 503 (with Retry-After) a transient."""
        try:
            text, files = slack.parse_envelope(body)
        except (ValueError, TypeError) as error:
            self._answer(400, f"{RELAY_REFUSAL_PREFIX}a Slack post is {error}")
            return
        try:
            reply = slack.deliver(
                self.slack_api, token, channel, text, files, deadline, self.denied
            )
        except ChannelFailed as failed:
            log.warning("%s channel %d (slack): %s", run.where, index, failed)
            wait = None if failed.retry_after is None else str(int(failed.retry_after))
            self._answer(503 if failed.failure == "transient" else 422, str(failed), wait)
            return
        log.info("%s (job %s): channel %d (slack) accepted", run.where, run.job, index)
        self._answer(200, reply)

    def _answer(self, status: int, text: str, retry_after: str | None = None) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass  # the request line is harmless, but one log format: the module's logger
