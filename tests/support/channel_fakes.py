"""Loopback stand-ins for the chat APIs the channels speak, over HTTPS with a test CA: a Slack
Web API (files.getUploadURLExternal, the upload URL it hands out, files.completeUploadExternal,
chat.postMessage, with Slack's HTTP-200 {"ok": false} errors) and a Teams workflow webhook.

Each keeps every request it read in `calls` and answers from its `faults` queue first (one per
request, in order), then normally. A fault is: an int (that HTTP status; 429 and 503 carry
Retry-After: 1), "slow" (answer after `slow_seconds`), "drop" (close the connection before
answering), "redirect" (a 307 elsewhere), or, for Slack, any other string: that API error in
a 200 answer ("ratelimited" with Retry-After: 1)."""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.json_http import JsonHandler, JsonHttpServer
from tests.support.pki import Pki


@dataclass
class Call:
    path: str  # the API method (Slack), "upload", or the webhook's path and query (Teams)
    headers: dict[str, str]
    body: bytes
    fields: dict[str, str] = field(default_factory=dict)  # a form body, decoded


class _Fake:
    """What a fake's handler shares: its calls, its fault queue, its base URL."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.faults: list[int | str] = []
        self.slow_seconds = 6.0
        self.url = ""

    def methods(self) -> list[str]:
        return [c.path for c in self.calls]


class _Handler(JsonHandler):
    fake: Any

    def _fault(self, call: Call) -> bool:
        """Answers with the next fault, if any: True when it did."""
        fake = self.fake
        fake.calls.append(call)
        if not fake.faults:
            return False
        fault = fake.faults.pop(0)
        if fault == "slow":
            time.sleep(fake.slow_seconds)
            return False
        if fault == "drop":
            self.close_connection = True
            self.connection.close()
            return True
        if fault == "redirect":
            self.send_response(307)
            self.send_header("Location", "https://elsewhere.example.net/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        if isinstance(fault, int):
            data = json.dumps({"error": f"status {fault}"}).encode()
            self.send_response(fault)
            if fault in (429, 503):
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        return self._api_error(fault)

    def _api_error(self, error: str) -> bool:
        data = json.dumps({"ok": False, "error": error}).encode()
        self.send_response(200)
        if error == "ratelimited":
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return True

    def _read(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class FakeSlack(_Fake):
    """`url` is the API base (…/api/), as TIDINGS_SLACK_API_URL takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: dict[str, bytes] = {}
        self.messages: list[dict[str, str]] = []  # completed shares and posted messages


class _SlackHandler(_Handler):
    fake: FakeSlack

    def do_POST(self) -> None:
        body = self._read()
        path = urlsplit(self.path).path
        method = "upload" if path.startswith("/upload/") else path.removeprefix("/api/")
        fields = {}
        if "form-urlencoded" in (self.headers.get("Content-Type") or ""):
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        call = Call(method, dict(self.headers), body, fields)
        if self._fault(call):
            return
        fake = self.fake
        if method != "upload" and self.headers.get("Authorization") != "Bearer xoxb-test-token":
            self._api_error("invalid_auth")
        elif method == "files.getUploadURLExternal":
            file_id = f"F{len(fake.uploads) + len(fake.calls):08d}"
            root = fake.url.removesuffix("/api/")
            self.reply(
                200, {"ok": True, "upload_url": f"{root}/upload/{file_id}", "file_id": file_id}
            )
        elif method == "upload":
            fake.uploads[path.rsplit("/", 1)[-1]] = body
            self.reply(200, b"OK - " + str(len(body)).encode())
        elif method == "files.completeUploadExternal":
            fake.messages.append(fields)
            self.reply(200, {"ok": True, "files": json.loads(fields.get("files") or "[]")})
        elif method == "chat.postMessage":
            fake.messages.append(fields)
            self.reply(
                200, {"ok": True, "ts": "1733100000.000100", "channel": fields.get("channel")}
            )
        else:
            self._api_error("unknown_method")


class FakeTeams(_Fake):
    """`url` is a workflow webhook URL on this server (its host 127.0.0.1)."""

    def cards(self) -> list[dict[str, Any]]:
        return [json.loads(c.body) for c in self.calls if c.body]


class _TeamsHandler(_Handler):
    fake: FakeTeams

    def do_POST(self) -> None:
        body = self._read()
        if self._fault(Call(self.path, dict(self.headers), body)):
            return
        if "sig" not in parse_qs(urlsplit(self.path).query):
            self.reply(401, {"error": {"code": "DirectApiAuthorizationRequired"}})
            return
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def _serve(fake: _Fake, handler: type[_Handler], tls: ssl.SSLContext, suffix: str) -> Iterator[Any]:
    bound = type(handler.__name__, (handler,), {"fake": fake})
    with JsonHttpServer(bound, tls=tls) as server:
        fake.url = server.url + suffix
        yield fake


@contextlib.contextmanager
def slack_api(pki: Pki) -> Iterator[FakeSlack]:
    with _serve(FakeSlack(), _SlackHandler, pki.server_context(), "/api/") as fake:
        yield fake


@contextlib.contextmanager
def teams_workflow(pki: Pki) -> Iterator[FakeTeams]:
    suffix = "/workflows/3f2a/triggers/manual/paths/invoke?api-version=1&sig=test-signature"
    with _serve(FakeTeams(), _TeamsHandler, pki.server_context(), suffix) as fake:
        yield fake
