"""The relay's channel front against the real control plane: `tidings relay` with
TIDINGS_RELAY_HTTP_PORT, a report whose CronJob the operator made, a Job the CronJob template
gives, its pod (created by the real Job controller) and a token the TokenRequest API binds to
that pod; the destination is a real HTTPS server on loopback.

Shown: the renderer's webhook, in relay mode, reaches the report's admitted URL with its body,
signature and idempotency key intact; the pod cannot name any other destination (it names a
channel index only, and an index the report does not admit is refused); a token of a pod that
is no run of the report is refused; nothing is forwarded for a refusal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from kubernetes import client
from tests.support.json_http import JsonHandler, JsonHttpServer, https_server
from tests.support.operator_harness import Cluster, OperatorProcess, wait_for
from tests.support.report_bodies import manifest
from tests.support.smtp_mailbox import Mailbox, closed_relay_env

from tidings.controller.cronjob import cronjob_name
from tidings.relay.policy import AUDIENCE
from tidings.renderer.channels import Summary
from tidings.renderer.channels.webhook import Relay, Webhook, signature
from tidings_dev.cluster import ControlPlane
from tidings_dev.procs import free_port

pytestmark = pytest.mark.cluster

KEY = b"relay-test-signing-key"


class Destination(JsonHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Destination.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.reply(200, {"ok": True})


@pytest.fixture
def destination(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[JsonHttpServer, Path]]:
    Destination.seen.clear()
    with https_server(Destination, tmp_path_factory.mktemp("hook-pki")) as served:
        yield served


@pytest.fixture
def operator_env() -> dict[str, str]:
    return closed_relay_env()


@pytest.fixture
def relay_front(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    mailbox: tuple[Mailbox, int],
    destination: tuple[JsonHttpServer, Path],
    tmp_path: Path,
) -> Iterator[int]:
    """`python -m tidings relay` with its channel front on a free port; yields that port."""
    core = client.CoreV1Api(kube)
    home = f"tidings-system-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "TIDINGS_OPERATOR_NAMESPACE": home,
        "TIDINGS_RELAY_ADDRESS": "127.0.0.1",
        "TIDINGS_RELAY_PORT": str(free_port()),
        "TIDINGS_RELAY_HTTP_PORT": str(port),
        "TIDINGS_SMTP_HOST": "127.0.0.1",
        "TIDINGS_SMTP_PORT": str(mailbox[1]),
        "TIDINGS_SMTP_FROM": "reports@example.com",
        "SSL_CERT_FILE": str(destination[1]),  # the relay trusts the destination's test CA
    }
    log_path = tmp_path / "relay.log"
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidings", "relay"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the relay exited:\n{log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
        except OSError:
            return False
        return True

    wait_for("the relay's channel front", listening, timeout=60)
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        core.delete_namespace(home)
        assert KEY.decode() not in log_path.read_text()


def mint(cluster: Cluster, pod: dict[str, Any]) -> str:
    """What the kubelet puts in the pod's projected relay-token volume."""
    bound = client.V1BoundObjectReference(
        api_version="v1", kind="Pod", name=pod["metadata"]["name"], uid=pod["metadata"]["uid"]
    )
    spec = client.V1TokenRequestSpec(
        audiences=[AUDIENCE], expiration_seconds=600, bound_object_ref=bound
    )
    account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    answer = cluster.core.create_namespaced_service_account_token(
        account, cluster.ns, client.AuthenticationV1TokenRequest(spec=spec)
    )
    return answer.status.token


def summary() -> Summary:
    return Summary(
        namespace="qa",
        report="hooked",
        report_uid="uid",
        title="Hooked",
        report_type="changes_summary",
        scheduled="2026-12-02T08:00:00Z",
        window_start="2026-11-25T00:00:00Z",
        window_end="2026-12-02T00:00:00Z",
        rows=3,
        figures={"rows": 3.0},
        outcome="Delivered",
    )


def test_a_run_reaches_only_its_admitted_destination_through_the_relay(
    run_operator: OperatorProcess,
    relay_front: int,
    destination: tuple[JsonHttpServer, Path],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    server, _ = destination
    admitted = f"{server.url}/admitted/hook"
    hook = {"url": admitted, "signingSecretRef": {"name": "hook-key", "key": "key"}}
    cluster.create_report(
        manifest("hooked", schedule="0 9 * * 1", delivery={"channels": [{"webhook": hook}]})
    )
    cluster.wait_status("hooked", "Active", lambda s: s.get("phase") == "Active")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    job = cluster.create_scheduled_job(cronjob_name("hooked"), now)
    pod = wait_for("the run's pod", lambda: (pods := cluster.pods(job)) and pods[0])
    token_file = tmp_path / "token"
    token_file.write_text(mint(cluster, pod))

    # The renderer's own client in relay mode: its `url` is ignored, the relay picks the URL.
    channel = Webhook(
        name="webhook[0]",
        url="https://attacker.example.net/steal",
        key=KEY,
        index=0,
        relay=Relay(f"http://127.0.0.1:{relay_front}", str(token_file)),
    )
    reply = channel.send(summary(), time.monotonic() + 60)
    assert reply.startswith("HTTP 200")
    (request,) = Destination.seen
    assert request["path"] == "/admitted/hook"
    assert request["headers"]["X-Tidings-Signature"] == signature(KEY, request["body"])
    assert request["headers"]["Idempotency-Key"] == summary().idempotency_key("webhook[0]")
    assert "Authorization" not in request["headers"]  # the pod's token stays with the relay
    assert json.loads(request["body"])["rows"] == 3

    # A copied template can only name an index: one the report does not admit is refused.
    other = httpx.post(
        f"http://127.0.0.1:{relay_front}/v1/channels/1",
        content=b"{}",
        headers={"Authorization": f"Bearer {token_file.read_text()}"},
        timeout=30,
    )
    assert other.status_code == 403
    assert other.text.startswith("relay: report ") and "admits no channel 1" in other.text
    assert len(Destination.seen) == 1


def test_a_pod_that_is_no_run_of_the_report_is_refused(
    run_operator: OperatorProcess,
    relay_front: int,
    destination: tuple[JsonHttpServer, Path],
    cluster: Cluster,
) -> None:
    pod = cluster.core.create_namespaced_pod(
        cluster.ns,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="her-own-pod"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    )
    token = mint(cluster, {"metadata": {"name": pod.metadata.name, "uid": pod.metadata.uid}})
    answer = httpx.post(
        f"http://127.0.0.1:{relay_front}/v1/channels/0",
        content=b"{}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 403 and answer.text.startswith("relay: ")
    assert "not controlled by a Job" in answer.text
    missing = httpx.post(f"http://127.0.0.1:{relay_front}/v1/channels/0", content=b"{}")
    assert missing.status_code == 403 and "no token" in missing.text
    assert Destination.seen == []
