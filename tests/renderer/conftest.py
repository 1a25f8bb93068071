"""Real peers for the renderer: SMTP servers (aiosmtpd) on loopback, a PostgreSQL server started
from the Debian binaries, and helpers to read PDFs back as text."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from tidings_dev.cluster import CertificateAuthority
from tidings_dev.procs import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLE_AT = "2024-05-13T09:00:00+02:00"  # Monday 09:00 Berlin, after the examples' data week
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def pdf_text(data: bytes, tmp_path: Path, name: str = "out") -> str:
    """The PDF's text as pdftotext extracts it (layout kept, pages separated by form feeds)."""
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    )
    return done.stdout


def load_example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8"))


def python_path() -> dict[str, str]:
    """PYTHONPATH for a child process, when set: a checkout's own sources, not an installed copy."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def write_report(tmp_path: Path, report: dict[str, Any], name: str = "report.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(report, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------- SMTP


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
    port = free_port()
    controller = _Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, SmtpServer("127.0.0.1", port, recorder)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback."""
    controller, server = start_smtp(Recorder())
    yield server
    controller.stop()


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server's certificate

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create(directory, "smtp-test-ca")
    cert, key = ca.issue(directory, "smtp", "127.0.0.1", ip_addresses=("127.0.0.1",))
    other = CertificateAuthority.create(directory, "unrelated-ca")
    return Pki(ca.cert_path, cert, key, other.cert_path)


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """Accepts TCP connections and never says a word: the SMTP greeting times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


# ------------------------------------------------------------------------------------ PostgreSQL


@dataclass
class Postgres:
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def psql(self, sql: str) -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                self.database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(done.stderr)
        return done.stdout


def _runner(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port, run as `nobody` under root
    (postgres refuses to run as root), with password auth for a report-reader user."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN}: apt-get install postgresql")
    user = "nobody" if os.geteuid() == 0 else None
    # Not under pytest's tmp dir: its parents are private to root, and `nobody` must reach it.
    base = Path(tempfile.mkdtemp(prefix="tidings-pg-"))
    data = base / "data"
    password_file = base / "pw"
    password_file.write_text("s3cret-pg-pass\n")
    if user:
        entry = pwd.getpwnam(user)
        for path in (base, password_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [
            *_runner(user),
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "reporter",
            "--pwfile",
            str(password_file),
            "-A",
            "scram-sha-256",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = base / "pg.log"
    subprocess.run(
        [
            *_runner(user),
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    server = Postgres(port=port, user="reporter", password="s3cret-pg-pass", database="postgres")
    try:
        yield server
    finally:
        subprocess.run(
            [*_runner(user), str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


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


@pytest.fixture
def drop_after_data() -> Iterator[FaultySmtp]:
    server = FaultySmtp("drop-after-data")
    yield server
    server.close()


@pytest.fixture
def drip_smtp() -> Iterator[FaultySmtp]:
    server = FaultySmtp("drip")
    yield server
    server.close()
