"""HTTP peers that misbehave, on loopback: a body that drips, one that is too large, a redirect
to file:// or to a denied address, JSON nested too deeply; and the URL's query string kept out
of the logs."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.support.json_http import JsonHandler, JsonHttpServer
from tests.support.renderer_cli import send
from tests.support.renderer_reports import http_report
from tests.support.smtp_servers import SmtpServer

from tidings import models
from tidings.renderer.result import EX_TEMPFAIL, InputError
from tidings.renderer.sources import SourceLimits, http_rows
from tidings.validation import validate_spec

ROWS = b'{"data": {"items": []}}'


class _Handler(JsonHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for byte in b'{"data": {"items": [' + b" " * 100_000:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        elif path == "/big":  # chunked, no Content-Length: only counting can stop it
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"[" + b"0," * 50_000
            for _ in range(100):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        elif path == "/deep":
            self.reply(200, b"[" * 100_000 + b"]" * 100_000)
        elif path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", path.removeprefix("/redirect-to/").replace("|", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(200, ROWS)


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with JsonHttpServer(_Handler) as server:  # a client hanging up mid-drip is no error
        yield server.url


def rows(url: str, limits: SourceLimits | None = None, auth: str | None = None) -> Any:
    return http_rows(
        models.HttpSource(url=url, rowsPath="data.items"), auth, time.monotonic() + 30, limits
    )


def test_slow_drip_http_ends_at_the_deadline_with_a_result(
    base: str, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = http_report(f"{base}/drip")
    del report["spec"]["source"]["http"]["authSecretRef"]
    code, result = send(tmp_path, capsys, smtp, report, "--timeout", "3")
    # The drip would last 14 hours; each byte is far inside httpx's per-read timeout.
    assert code == EX_TEMPFAIL
    assert result["error"].startswith("the run reached its deadline while loading the data source")
    assert smtp.recorder.messages == []


def test_a_body_over_the_limit_is_refused_while_streaming(base: str) -> None:
    with pytest.raises(
        InputError, match=r"larger than 1,000,000 bytes \(TIDINGS_MAX_SOURCE_BYTES\)"
    ):
        rows(f"{base}/big", SourceLimits(max_bytes=1_000_000))


def test_deeply_nested_json_is_a_clear_input_error(base: str) -> None:
    with pytest.raises(InputError, match="nested too deeply"):
        rows(f"{base}/deep")


def test_a_redirect_to_file_is_refused(base: str) -> None:
    with pytest.raises(InputError, match=r"redirected to a file: URL; only http:// and https://"):
        rows(f"{base}/redirect-to/file:|||etc|tidings|source|value")


def test_a_redirect_to_a_denied_address_is_refused(base: str) -> None:
    port = urlsplit(base).port
    denied = SourceLimits(denied=(ipaddress.ip_network("127.0.0.2/32"),))
    assert rows(f"{base}/rows", denied) == []  # 127.0.0.1 itself is allowed
    with pytest.raises(InputError, match=r"resolves to 127\.0\.0\.2, a denied address"):
        rows(f"{base}/redirect-to/http:||127.0.0.2:{port}|rows", denied)


def test_metadata_addresses_are_refused_at_validation_and_at_run_time() -> None:
    spec = {"source": {"http": {"url": "http://169.254.169.254/latest/meta-data/"}}}
    problems = [str(p) for p in validate_spec(spec).errors]
    assert any(
        p.startswith("spec.source.http.url: must not point at 169.254.169.254") for p in problems
    )
    with pytest.raises(InputError, match="a denied address"):
        rows("http://[::ffff:169.254.169.254]/latest")


def test_query_strings_never_reach_the_log(base: str, caplog: pytest.LogCaptureFixture) -> None:
    # httpx's own level too: a channel run earlier in the process may have quieted it
    # (renderer/channels.quiet_client_logs), and the redaction must hold whenever it logs.
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="httpx"):
        rows(f"{base}/rows?token=query-secret-123&x=1", auth="Bearer header-secret-456")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request: GET" in logged  # httpx still says what it fetched...
    assert "query-secret-123" not in logged and "header-secret-456" not in logged  # ...not how
