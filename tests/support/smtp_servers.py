"""SMTP servers on loopback for the renderer tests: a recorder (aiosmtpd) that accepts and
refuses what it is told to, and servers that misbehave on purpose (one that drops the
connection after DATA, one that drips its greeting, one that never says a word)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from tidings_dev.procs import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Recorder:
    """aiosmtpd handler that records what it accepted and refuses what it is told to."""

    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> "550 ..."
    data_reply: str = "250 OK: queued"
    mail_reply: str | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply.startswith("250"):
            self.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return self.data_reply


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "TIDINGS_SMTP_HOST": self.host,
            "TIDINGS_SMTP_PORT": str(self.port),
            "TIDINGS_SMTP_FROM": "Tidings <reports@example.com>",
            "TIDINGS_SMTP_TIMEOUT": "5",
            **extra,
        }


class _Controller(Controller):
    """Controller whose readiness probe tolerates TLS servers it cannot verify."""

    def _trigger_server(self) -> None:
        with contextlib.suppress(ssl.SSLError):
            super()._trigger_server()


def start_smtp(recorder: Recorder, **kwargs: Any) -> tuple[Controller, SmtpServer]:
    """A recording SMTP server on a free loopback port; the caller stops the controller."""
    port = free_port()
    controller = _Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, SmtpServer("127.0.0.1", port, recorder)


# ----------------------------------------------------------------------- misbehaving peers


class FaultySmtp:
    """A minimal SMTP server on loopback that misbehaves on purpose, one connection per thread.

    - `drop-after-data`: accepts MAIL, RCPT and DATA, reads the whole message up to the final
      ".", records it as a full copy, and closes the connection without a reply;
    - `drip`: sends its greeting one byte per `drip_seconds`, for as long as the client stays.
    """

    def __init__(self, fault: str, drip_seconds: float = 0.5) -> None:
        self.fault = fault
        self.drip_seconds = drip_seconds
        self.copies: list[bytes] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def env(self, **extra: str) -> dict[str, str]:
        return SmtpServer("127.0.0.1", self.port, Recorder()).env(**extra)

    def close(self) -> None:
        self.stop_event.set()
        self.listener.close()
        self.thread.join(5)

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop_event.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            if self.fault == "drip":
                for byte in b"220 slow.example.com ESMTP" * 1000:
                    if self.stop_event.wait(self.drip_seconds):
                        return
                    conn.sendall(bytes([byte]))
                return
            reader = conn.makefile("rb")
            conn.sendall(b"220 drop.example.com ESMTP\r\n")
            while line := reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 drop.example.com\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    message = b""
                    while (chunk := reader.readline()) and chunk != b".\r\n":
                        message += chunk
                    if chunk == b".\r\n":
                        self.copies.append(message)
                    return  # the whole message is here: hang up without a word
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 OK\r\n")


class SilentServer:
    """Accepts TCP connections and never says a word: the SMTP greeting times out."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.address: tuple[str, int] = self.listener.getsockname()
        self.accepted: list[socket.socket] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.listener.close()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop_event.is_set():
            try:
                self.accepted.append(self.listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return
