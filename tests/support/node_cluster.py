"""What the node tests share: the cluster (control plane + real node + the chart), an SMTP sink
on the host's bridge address that pods can reach, and the CI rule for skips."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from kubernetes import client
from tests.support.chart_tools import CHART, tool

from tidings_dev import node as devnode
from tidings_dev.cluster import ControlPlane
from tidings_dev.node import NODE_IP, Node
from tidings_dev.procs import free_port

RELEASE = "tidings"
RELEASE_NAMESPACE = "tidings"
SMTP_FROM = "reports@tidings.test"
RELAY_PORT = free_port()  # on the node's address (relay.hostNetwork)


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the node tests, but: {reason}")
    pytest.skip(reason)


# ----------------------------------------------------------------------------------- SMTP


@dataclass
class Sink:
    """An SMTP server on the bridge: records what it accepts; `refuse` makes it answer 550."""

    host: str
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    refuse: str | None = None
    lock: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                {
                    "received_at": time.time(),
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "content": envelope.original_content,
                }
            )
            self.lock.notify_all()
        return "250 OK: queued"

    def wait_for(self, predicate, timeout: float) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        """The first message `predicate` accepts; fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(
                        f"no matching mail within {timeout:.0f}s ({len(self.messages)} seen)"
                    )
                self.lock.wait(left)


# -------------------------------------------------------------------------------- cluster


@dataclass
class NodeCluster:
    plane: ControlPlane
    node: Node
    images: devnode.Images
    smtp: Sink
    api: client.ApiClient

    def kubectl(self, *args: str, check: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
        return self.plane.kubectl(*args, check=check, input=input)

    def helm(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("helm"), "--kubeconfig", str(self.plane.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def chart_values(self, tag: str | None = None) -> list[str]:
        repository, _, image_tag = self.images.renderer.partition(":")
        return [
            f"image.repository={repository}",
            f"image.tag={tag or image_tag}",
            "image.pullPolicy=Never",
            f"smtp.host={self.smtp.host}",
            f"smtp.port={self.smtp.port}",
            f"smtp.from={SMTP_FROM}",
            # The node does not forward pod traffic (ip_forward 0): pods reach the delivery
            # relay only on the node's own address.
            "relay.hostNetwork=true",
            "relay.replicas=1",
            f"relay.port={RELAY_PORT}",
        ]

    def install(self, *extra: str) -> subprocess.CompletedProcess[str]:
        args = ["upgrade", "--install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE]
        args += ["--create-namespace", "--wait", "--timeout", "5m"]
        for value in [*self.chart_values(), *extra]:
            args += ["--set", value]
        done = self.helm(*args)
        if done.returncode == 0:
            self.wait_webhook_routed()
        return done

    def wait_webhook_routed(self, timeout: float = 60) -> None:
        """helm --wait returns once the pods are Ready; the Service reaches them only after the
        EndpointSlice controller and kube-proxy have caught up (until then the apiserver's call
        is refused). Wait for a TCP connection through the ClusterIP, the apiserver's own path."""
        service = client.CoreV1Api(self.api).read_namespaced_service(
            f"{RELEASE}-webhook", RELEASE_NAMESPACE
        )
        address = (service.spec.cluster_ip, service.spec.ports[0].port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(address, timeout=2).close()
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(f"webhook Service {address} not routed: {exc}") from exc
                time.sleep(0.2)


@contextlib.contextmanager
def running(
    state_dir: Path, images: devnode.Images, die_with_parent: bool = False
) -> Iterator[NodeCluster]:
    """A control plane on the node's bridge, the node, and the SMTP sink; all stopped after."""
    devnode.prepare_host(state_dir / "node")
    plane = ControlPlane(state_dir=state_dir, die_with_parent=die_with_parent, node_ip=NODE_IP)
    sink = Sink(NODE_IP, free_port())
    smtp = Controller(sink, hostname=NODE_IP, port=sink.port)
    node = Node(plane, images=images.archives, sandbox_image=images.pause)
    try:
        plane.start()
        node.start()
        smtp.start()
        api = plane.api_client()
        yield NodeCluster(plane, node, images, sink, api)
        api.close()
    finally:
        smtp.stop()
        node.stop()
        plane.stop()
