"""The delivery relay for cluster tests: the platform relay (a real SMTP server on loopback that
requires the platform login), `tidings relay` as a process, pod-bound tokens from the
TokenRequest API and a stand-in kubelet that fills the projected relay-token volume."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from kubernetes import client
from tests.support.operator_harness import Cluster, PodRunner, wait_for

from tidings import contract
from tidings_dev.procs import free_port

PLATFORM_USER, PLATFORM_PASSWORD = "tidings-platform", "hunter2-platform"
SENDER = "tidings@platform.test"
OUTSIDE = "mallory@outside.example.org"
ROW_MARKER = "zqxv-row-title"  # in the message body only: never in the relay's log


@dataclass
class PlatformRelay:
    """The platform relay: AUTH with the platform login required, messages kept."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # answered 550 at RCPT

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == (
            PLATFORM_USER.encode(),
            PLATFORM_PASSWORD.encode(),
        )
        self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK: queued"

    def recipients(self) -> list[str]:
        return sorted(r for rcpts, _ in self.messages for r in rcpts)


class RelayProcess:
    """`python -m tidings relay` with the admin kubeconfig, on a free loopback port."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        upstream_port: int,
        log: Path,
        **extra_env: str,
    ) -> None:
        self.port = free_port()
        self.log_path = log
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "TIDINGS_OPERATOR_NAMESPACE": namespace,
            "TIDINGS_RELAY_ADDRESS": "127.0.0.1",
            "TIDINGS_RELAY_PORT": str(self.port),
            "TIDINGS_SMTP_HOST": "127.0.0.1",
            "TIDINGS_SMTP_PORT": str(upstream_port),
            "TIDINGS_SMTP_FROM": SENDER,
            "TIDINGS_SMTP_USERNAME": PLATFORM_USER,
            "TIDINGS_SMTP_PASSWORD": PLATFORM_PASSWORD,
            "TIDINGS_SMTP_ALLOW_PLAIN_AUTH": "true",  # loopback: no TLS in this test
            "TIDINGS_LOG_LEVEL": "DEBUG",  # even at DEBUG: no token, no body, no password
            **extra_env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tidings", "relay"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for("the relay's SMTP port", self._listening, timeout=60)

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"the relay exited with {self.proc.returncode}:\n{self.log()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text()


MINTED: list[str] = []


def mint(
    cluster: Cluster,
    account: str,
    audience: str,
    pod: dict[str, Any] | None = None,
    seconds: int = contract.RELAY_TOKEN_EXPIRY_SECONDS,
) -> str:
    """A service-account token from the TokenRequest API, bound to `pod` when given: what
    the kubelet mints for a projected serviceAccountToken volume."""
    bound = None
    if pod is not None:
        bound = client.V1BoundObjectReference(
            api_version="v1", kind="Pod", name=pod["metadata"]["name"], uid=pod["metadata"]["uid"]
        )
    spec = client.V1TokenRequestSpec(
        audiences=[audience], expiration_seconds=seconds, bound_object_ref=bound
    )
    answer = cluster.core.create_namespaced_service_account_token(
        account, cluster.ns, client.AuthenticationV1TokenRequest(spec=spec)
    )
    MINTED.append(answer.status.token)
    return answer.status.token


class RelayPodRunner(PodRunner):
    """PodRunner that also fills the projected relay-token volume, as the kubelet does."""

    OVERRIDES: ClassVar[dict[str, str]] = {
        **PodRunner.OVERRIDES,
        contract.RELAY_TOKEN_DIR: "TIDINGS_RELAY_TOKEN_DIR",
    }

    def _materialize(self, volume: dict[str, Any], target: Path, pod: dict[str, Any]) -> None:
        sources = (volume.get("projected") or {}).get("sources") or []
        if not any("serviceAccountToken" in source for source in sources):
            super()._materialize(volume, target, pod)  # a channels volume: Secret keys only
            return
        target.mkdir(parents=True, exist_ok=True)
        account = pod["spec"].get("serviceAccountName") or "default"
        for source in volume["projected"]["sources"]:
            token = source["serviceAccountToken"]
            minted = mint(self.cluster, account, token["audience"], pod, token["expirationSeconds"])
            (target / token["path"]).write_text(minted)


def serve_platform(box: PlatformRelay | None = None) -> Iterator[tuple[PlatformRelay, int]]:
    """`box` (a fresh one by default) as a real SMTP server on a free loopback port requiring
    the platform login (for a fixture to yield from)."""
    box = box or PlatformRelay()
    port = free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield box, port
    controller.stop()


def relay_env(relay: RelayProcess) -> dict[str, str]:
    """Operator env with no platform relay for the pods at all: only the delivery relay."""
    return {
        "TIDINGS_RELAY_HOST": "127.0.0.1",
        "TIDINGS_RELAY_PORT": str(relay.port),
        "TIDINGS_SMTP_FROM": SENDER,
    }
