"""Mail for the operator's cluster tests: a real SMTP server on loopback keeping what it
accepts, the namespace's SMTP Secret (team-smtp) pointing at it, and an operator environment
whose platform relay is closed, so that mail can only go through that Secret."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from kubernetes import client
from tests.support.operator_harness import Cluster

from tidings_dev.procs import free_port


@dataclass
class Mailbox:
    """aiosmtpd handler keeping what it accepted."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK: queued"


def serve_mailbox(box: Mailbox) -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on a free loopback port, handled by `box` (for a fixture to yield)."""
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def smtp_secret(cluster: Cluster, port: int) -> None:
    """The namespace's SMTP Secret (team-smtp) pointing at the loopback server."""
    cluster.core.create_namespaced_secret(
        cluster.ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="team-smtp"),
            string_data={"host": "127.0.0.1", "port": str(port), "from": "tidings@team.test"},
        ),
    )


def closed_relay_env() -> dict[str, str]:
    """Operator env whose platform relay is a closed port: delivery can only work through the
    namespace's SMTP Secret, mounted into the pod as files."""
    return {"TIDINGS_SMTP_HOST": "127.0.0.1", "TIDINGS_SMTP_PORT": str(free_port())}
