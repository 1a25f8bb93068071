"""Every source result is bounded before it is held: sql rows counted as they arrive against a
real PostgreSQL, http bodies decoded a bounded piece at a time on a loopback server; and the
address guard on every redirect hop, configuration errors as permanent."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.support.postgres import Postgres

from tidings import models
from tidings.renderer.result import InputError
from tidings.renderer.sources import QueryParams, SourceLimits, http_rows, sql_rows

PARAMS = QueryParams(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC))
MiB = 1024 * 1024
# 64 MiB of "[0,0,...]" JSON, gzip-compressed once (about 64 KiB) and twice (a few hundred bytes).
PLAIN = b"[" + b"0," * (32 * MiB - 1) + b"0]"
ONCE = gzip.compress(PLAIN, 9)
TWICE = gzip.compress(ONCE, 9)


def _deadline() -> float:
    return time.monotonic() + 60


# ------------------------------------------------------------------------------------------ sql


def test_a_result_past_the_byte_cap_stops_naming_the_cap(postgres: Postgres) -> None:
    query = "SELECT repeat('x', 4000) AS x FROM generate_series(1, 100000)"  # 400 MB
    started = time.monotonic()
    with pytest.raises(InputError) as raised:
        sql_rows(query, PARAMS, postgres.url, _deadline(), SourceLimits(max_bytes=4 * MiB))
    assert str(raised.value) == (
        "source.sql.query returns more than 4,194,304 bytes, the cap "
        "(TIDINGS_MAX_SOURCE_BYTES raises it): select fewer rows or columns"
    )
    assert raised.value.exit_code == 65
    assert time.monotonic() - started < 30  # stopped early, not after reading 400 MB


def test_a_result_past_the_row_cap_stops_naming_the_setting(postgres: Postgres) -> None:
    query = "SELECT n FROM generate_series(1, 1000) AS n"
    assert len(sql_rows(query, PARAMS, postgres.url, _deadline(), SourceLimits(max_rows=1000))) == (
        1000
    )
    with pytest.raises(InputError, match=r"more than 999 rows, the cap \(TIDINGS_MAX_SOURCE_ROWS"):
        sql_rows(query, PARAMS, postgres.url, _deadline(), SourceLimits(max_rows=999))


def test_one_large_row_within_the_cap_is_read(postgres: Postgres) -> None:
    (row,) = sql_rows("SELECT repeat('x', 4 * 1024 * 1024) AS x", PARAMS, postgres.url, _deadline())
    assert len(row["x"]) == 4 * MiB


def test_caps_from_the_environment_are_checked() -> None:
    limits = SourceLimits.from_environment({"TIDINGS_MAX_SOURCE_ROWS": "10"})
    assert (limits.max_rows, limits.max_bytes) == (10, 32 * MiB)
    with pytest.raises(InputError, match="TIDINGS_MAX_SOURCE_ROWS must be a positive integer"):
        SourceLimits.from_environment({"TIDINGS_MAX_SOURCE_ROWS": "0"})


@pytest.mark.parametrize(
    ("option", "message"),
    [("sslmode=bogus", 'invalid sslmode value: "bogus"'), ("bogus=1", "bogus")],
)
def test_an_invalid_connection_option_is_permanent_and_named(
    postgres: Postgres, option: str, message: str
) -> None:
    with pytest.raises(InputError, match=r"^source\.sql\.connectionSecretRef") as raised:
        sql_rows("SELECT 1 AS a", PARAMS, f"{postgres.url}?{option}", _deadline())
    assert message in str(raised.value)
    assert postgres.password not in str(raised.value)


# ----------------------------------------------------------------------------------------- http


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        bodies = {
            "/gzip": (ONCE, "gzip"),
            "/gzip-gzip": (TWICE, "gzip, gzip"),
            "/small-gzip": (gzip.compress(b'{"data": {"items": [{"a": 1}]}}'), "gzip"),
            "/deflate": (zlib.compress(b'{"data": {"items": [{"a": 2}]}}'), "deflate"),
            "/br": (b"x", "br"),
            "/two": (b'{"data": {"items": [{"a": 1}, {"a": 2}]}}', ""),
        }
        if path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", path.removeprefix("/redirect-to/").replace("|", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, coding = bodies.get(path, (b'{"data": {"items": []}}', ""))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if coding:
            self.send_header("Content-Encoding", coding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hanging up on a refused body is the point


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the guard fail, no test here may reach beyond this host."""
    connect = socket.create_connection

    def guarded(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        assert address[0] in ("127.0.0.1", "localhost"), f"tried to connect to {address[0]}"
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


def rows(url: str, limits: SourceLimits | None = None) -> Any:
    return http_rows(models.HttpSource(url=url, rowsPath="data.items"), None, _deadline(), limits)


def test_stacked_gzip_is_refused_before_anything_is_decoded(base: str) -> None:
    with pytest.raises(InputError, match=r"stacked Content-Encodings \(gzip, gzip\)"):
        rows(f"{base}/gzip-gzip")


def test_one_gzip_layer_is_refused_at_the_decoded_cap(base: str) -> None:
    assert len(ONCE) < MiB < len(PLAIN)
    with pytest.raises(InputError, match=r"larger than 1,048,576 bytes"):
        rows(f"{base}/gzip", SourceLimits(max_bytes=MiB))


def test_gzip_and_deflate_bodies_within_the_cap_are_read(base: str) -> None:
    assert rows(f"{base}/small-gzip") == [{"a": 1}]
    assert rows(f"{base}/deflate") == [{"a": 2}]


def test_an_http_document_past_the_row_cap_is_refused(base: str) -> None:
    assert len(rows(f"{base}/two", SourceLimits(max_rows=2))) == 2
    with pytest.raises(InputError, match=r"more than 1 rows, the cap \(TIDINGS_MAX_SOURCE_ROWS"):
        rows(f"{base}/two", SourceLimits(max_rows=1))


def test_an_encoding_it_cannot_bound_is_refused(base: str) -> None:
    with pytest.raises(InputError, match="Content-Encoding br: only gzip and deflate"):
        rows(f"{base}/br")


METADATA = ["::169.254.169.254", "64:ff9b::169.254.169.254", "2002:a9fe:a9fe::"]


@pytest.mark.parametrize("address", METADATA)
@pytest.mark.parametrize("hop", [1, 3])
def test_ipv6_forms_of_the_metadata_address_are_refused_on_every_hop(
    base: str, address: str, hop: int
) -> None:
    url = f"http:||[{address}]|latest|meta-data|"
    for _ in range(hop - 1):  # first through loopback redirects, which are allowed
        url = f"{base.replace('/', '|')}|redirect-to|{url}"
    with pytest.raises(InputError, match="a denied address"):
        rows(f"{base}/redirect-to/{url}")


@pytest.mark.parametrize("target", ["0.0.0.0", "[::]"])
def test_a_redirect_to_this_host_unspecified_is_refused(base: str, target: str) -> None:
    port = urlsplit(base).port
    loopback_allowed = SourceLimits(denied=())
    assert rows(f"{base}/rows", loopback_allowed) == []
    with pytest.raises(InputError, match="a denied address"):
        rows(f"{base}/redirect-to/http:||{target}:{port}|rows", loopback_allowed)


def test_a_non_decimal_ipv4_host_is_permanent(base: str) -> None:
    port = urlsplit(base).port
    with pytest.raises(InputError, match=r"^source\.http\.url: .*non-standard form"):
        rows(f"http://0177.0.0.1:{port}/rows")
    with pytest.raises(InputError, match=r"^source\.http\.url: .*non-standard form"):
        rows(f"{base}/redirect-to/http:||0x7f.1:{port}|rows")
