"""An HTTP server for the tests' JSON endpoints (the http source, the kubectl plugin's preview,
a data source on the node's bridge): threaded, on a free port, served from a daemon thread.
Each test writes its own handler on JsonHandler, which answers JSON and keeps no access log."""

from __future__ import annotations

import contextlib
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler with `reply(status, body)`: bytes as they are, anything else as JSON."""

    def reply(self, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up (a deadline, a size limit): what fault tests provoke
        super().handle_error(request, client_address)


class JsonHttpServer:
    """`handler` served on `host` at a free port until close(); `url` has no trailing slash."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._server = _Server((host, 0), handler)
        if tls is not None:  # https:// with this server context (tests.support.pki)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> JsonHttpServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def https_server(
    handler: type[BaseHTTPRequestHandler], directory: Path
) -> Iterator[tuple[JsonHttpServer, Path]]:
    """`handler` over HTTPS on loopback with a certificate from a fresh test CA in `directory`;
    yields the server and the CA file a client trusts (SSL_CERT_FILE)."""
    from tests.support.pki import smtp_pki

    pki = smtp_pki(directory)
    with JsonHttpServer(handler, tls=pki.server_context()) as server:
        yield server, pki.ca
