"""The webhook channel through `tidings send`, against real HTTPS servers on loopback (and the
mail against a real SMTP server): the signed JSON summary, multipart files, the idempotency
key kept across retries, and the failure classes: 4xx, 429 with Retry-After, 5xx, slow, a
dropped connection, redirects."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tests.support.json_http import JsonHandler, JsonHttpServer
from tests.support.pki import Pki
from tests.support.renderer_cli import run_pod, send
from tests.support.renderer_reports import CC, small_report
from tests.support.smtp_servers import SmtpServer

from tidings.contract import EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE
from tidings.renderer.channels.run import CHANNEL_SECRET_DIR_ENV
from tidings.renderer.channels.webhook import retry_after

KEY = b"s3cret-signing-key"


class Hook(JsonHandler):
    """Answers by path; every request it read is kept in `seen`."""

    seen: ClassVar[list[dict[str, Any]]] = []
    busy_left: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        if self.path == "/drop":
            self.connection.close()  # before reading or answering: nothing confirmed
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Hook.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path == "/slow":
            time.sleep(6)
            self.reply(200, {"ok": True})
        elif self.path == "/bad":
            self.reply(400, {"error": "no such hook"})
        elif self.path == "/down":
            self.reply(503, {"error": "maintenance"})
        elif self.path == "/busy":
            if Hook.busy_left and Hook.busy_left[0] > 0:
                Hook.busy_left[0] -= 1
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.reply(202, {"queued": True})
        elif self.path == "/moved":
            self.send_response(308)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/found":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(200, {"ok": True})


@pytest.fixture
def hook(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[JsonHttpServer]:
    Hook.seen.clear()
    Hook.busy_left[:] = [1]
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))  # the renderer trusts the test CA
    with JsonHttpServer(Hook, tls=pki.server_context()) as server:
        yield server


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The signing key where the pod has it mounted: <dir>/<channel index>/key."""
    root = tmp_path / "channels"
    (root / "0").mkdir(parents=True)
    (root / "0" / "key").write_bytes(KEY + b"\n")
    monkeypatch.setenv(CHANNEL_SECRET_DIR_ENV, str(root))
    return root


def with_hook(url: str, attachments: str = "none", **spec: Any) -> dict[str, Any]:
    channel = {
        "webhook": {
            "url": url,
            "signingSecretRef": {"name": "hook-key", "key": "key"},
            "attachments": attachments,
        }
    }
    return small_report(delivery={"channels": [channel]}, **spec)


def signed(request: dict[str, Any]) -> bool:
    expected = "sha256=" + hmac.new(KEY, request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"]["X-Tidings-Signature"], expected)


def test_the_summary_is_posted_signed_with_its_idempotency_key(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    code, result = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/ok"))
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert len(smtp.recorder.messages) == 1  # the mail went too
    (request,) = Hook.seen
    assert request["headers"]["Content-Type"] == "application/json"
    assert signed(request)
    summary = json.loads(request["body"])
    assert summary["report"] == {
        "namespace": "qa",
        "name": "smtp-check",
        "uid": "0b6c1f7e-uid",
        "title": "Delivery check",
        "type": "changes_summary",
    }
    assert summary["window"] == {"start": result["windowStart"], "end": result["windowEnd"]}
    assert summary["figures"]["rows"] == 1 and summary["figures"]["completed"] == 1
    assert summary["outcome"] == "Delivered"
    key = request["headers"]["Idempotency-Key"]
    assert summary["idempotencyKey"] == key and key.startswith("tidings-")
    (channel,) = result["channels"]
    assert channel["name"] == "webhook[0]" and channel["type"] == "webhook"
    assert channel["outcome"] == "accepted" and channel["attempts"] == 1
    assert channel["destination"] == "127.0.0.1" and channel["idempotencyKey"] == key
    assert channel["reply"].startswith("HTTP 200")


def test_a_tampered_body_does_not_match_the_signature(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    code, _ = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/ok"))
    (request,) = Hook.seen
    assert code == EX_OK and signed(request)
    request["body"] = request["body"].replace(b'"rows": 1', b'"rows": 2')
    assert not signed(request)


def test_multipart_carries_the_summary_and_each_file(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    report = with_hook(f"{hook.url}/ok", "multipart")
    report["spec"]["delivery"]["attachments"] = ["pdf", "csv"]
    code, result = send(tmp_path, capsys, smtp, report)
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    (request,) = Hook.seen
    assert signed(request)
    kind = request["headers"]["Content-Type"]
    assert kind.startswith("multipart/form-data; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode() + request["body"]
    )
    parts = list(message.iter_parts())
    assert json.loads(parts[0].get_content())["report"]["name"] == "smtp-check"
    files = {p.get_filename(): p.get_content() for p in parts[1:]}
    by_name = {a["name"]: a for a in result["attachments"]}
    assert set(files) == set(by_name)
    for name, content in files.items():
        data = content if isinstance(content, bytes) else content.encode()
        assert hashlib.sha256(data).hexdigest() == by_name[name]["sha256"]


def test_a_4xx_is_permanent_and_not_retried(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    report = with_hook(f"{hook.url}/bad", failurePolicy={"retries": 3})
    code, result = send(tmp_path, capsys, smtp, report)
    # The mail got through: partially delivered, the channel named in error.
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert len(Hook.seen) == 1
    (channel,) = result["channels"]
    assert channel["outcome"] == "refused" and channel["failure"] == "permanent"
    assert "HTTP 400" in channel["reply"] and "no such hook" in channel["reply"]
    assert "channel webhook[0] (127.0.0.1) not delivered: HTTP 400" in result["error"]


def test_429_waits_its_retry_after_and_retries_with_the_same_key(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys, caplog
) -> None:
    report = with_hook(f"{hook.url}/busy", failurePolicy={"retries": 2})
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tidings.renderer.channels"):
        code, result = send(tmp_path, capsys, smtp, report)
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    first, second = Hook.seen
    assert second["headers"]["Idempotency-Key"] == first["headers"]["Idempotency-Key"]
    assert second["body"] == first["body"]
    assert time.monotonic() - started >= 1.0
    assert "HTTP 429; retry 1/2 in 1s" in caplog.text  # Retry-After: 1, not the 2 s backoff
    (channel,) = result["channels"]
    assert (channel["outcome"], channel["attempts"]) == ("accepted", 2)


def test_5xx_is_transient_and_retried_until_retries_run_out(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    report = with_hook(f"{hook.url}/down", failurePolicy={"retries": 1})
    code, result = send(tmp_path, capsys, smtp, report)
    assert (code, result["outcome"]) == (EX_OK, "Delivered")  # the mail
    assert len(Hook.seen) == 2
    (channel,) = result["channels"]
    assert (channel["failure"], channel["attempts"]) == ("transient", 2)
    assert "HTTP 503" in channel["reply"]


def test_a_slow_destination_times_out_within_the_run_deadline(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    started = time.monotonic()
    code, result = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/slow"), "--timeout", "4")
    assert time.monotonic() - started < 6  # the 6 s answer was not waited for
    assert (code, result["outcome"]) == (EX_OK, "Delivered")  # the mail went before
    (channel,) = result["channels"]
    assert channel["outcome"] == "refused" and channel["failure"] == "transient"


def test_a_dropped_connection_is_transient(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    code, result = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/drop"))
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    (channel,) = result["channels"]
    assert channel["outcome"] == "refused" and channel["failure"] == "transient"
    assert "cannot reach 127.0.0.1" in channel["reply"]


def test_a_308_is_followed_and_a_302_refused(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    code, result = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/moved"))
    assert code == EX_OK and result["channels"][0]["outcome"] == "accepted"
    assert [r["path"] for r in Hook.seen] == ["/moved", "/ok"]
    assert signed(Hook.seen[1])
    code, result = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/found"))
    assert code == EX_OK  # the mail went
    (channel,) = result["channels"]
    assert channel["failure"] == "permanent" and "only 307 and 308" in channel["reply"]


def test_the_network_guard_applies_to_the_url(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("TIDINGS_HTTP_DENIED_NETWORKS", "127.0.0.0/8")
    code, result = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/ok"))
    assert code == EX_OK
    (channel,) = result["channels"]
    assert channel["failure"] == "permanent" and "a denied address" in channel["reply"]
    assert Hook.seen == []


def test_nothing_reached_is_a_failed_run(
    hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    report = with_hook(f"{hook.url}/bad")
    code, result = send(tmp_path, capsys, None, report, port=1)  # no SMTP server there
    assert result["outcome"] == "Failed"
    assert result["failure"] == "transient" and code == EX_TEMPFAIL  # the mail may work later
    assert result["channels"][0]["failure"] == "permanent"


def test_a_missing_key_stops_the_run_before_anything_is_sent(
    smtp: SmtpServer, hook: JsonHttpServer, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv(CHANNEL_SECRET_DIR_ENV, str(tmp_path / "nothing"))
    code, result = send(tmp_path, capsys, smtp, with_hook(f"{hook.url}/ok"))
    assert code == 65
    assert "spec.delivery.channels[0].webhook.signingSecretRef" in result["error"]
    assert smtp.recorder.messages == [] and Hook.seen == []


def test_retry_after_reads_seconds_and_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 02 Dec 2026 03:00:30 GMT", now) == 30.0
    assert retry_after("soon") is None and retry_after(None) is None
    assert retry_after("999999") == 3600.0


def test_permanent_mail_and_channel_failures_keep_the_mails_code(
    hook: JsonHttpServer, keys: Path, tmp_path: Path, capsys
) -> None:
    from tests.support.smtp_servers import Recorder, start_smtp

    class Refusing(Recorder):
        async def handle_RCPT(self, server, session, envelope, address, options):
            return "550 5.1.1 no such user"

    controller, server = start_smtp(Refusing())
    try:
        code, result = send(tmp_path, capsys, server, with_hook(f"{hook.url}/bad"))
    finally:
        controller.stop()
    assert (result["outcome"], result["failure"], code) == ("Failed", "permanent", EX_UNAVAILABLE)


def test_a_resend_mails_whom_the_run_missed_and_posts_to_no_channel(
    smtp: SmtpServer, hook: JsonHttpServer, keys: Path, tmp_path: Path
) -> None:
    env = smtp.env(
        TIDINGS_RESEND_RECIPIENTS=CC,
        TIDINGS_SCHEDULED_TIME="2024-05-13T09:00:00+02:00",
        **{CHANNEL_SECRET_DIR_ENV: str(keys)},
    )
    done, result = run_pod(tmp_path, with_hook(f"{hook.url}/ok"), env)
    assert done.returncode == EX_OK, done.stderr
    assert result is not None and result["outcome"] == "Delivered"
    (message,) = smtp.recorder.messages
    assert message.rcpt_tos == [CC]  # only the address the run did not reach
    assert Hook.seen == []  # the channel had its post with the run: no second one
    assert not result.get("channels")
