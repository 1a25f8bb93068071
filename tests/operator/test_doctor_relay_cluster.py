"""`kubectl tidings doctor`'s relay line on the real control plane, with a real `tidings relay`
process probing a real SMTP server on loopback that requires the platform login: the relay
writes its probe to the ConfigMap, doctor (which never sees the credentials) reads it. A good
login passes; a wrong one fails at auth with what to check; a relay Deployment without a Ready
replica fails with the scale command. (The same on the real node with the chart:
tests/node/test_doctor_on_node.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.operator_harness import ready_deployment, wait_for
from tests.support.relay_harness import (
    PLATFORM_PASSWORD,
    PlatformRelay,
    RelayProcess,
    serve_platform,
)

from tidings import contract, kubectl_plugin
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster

RELAY_LABELS = {"app.kubernetes.io/name": "tidings", "app.kubernetes.io/component": "relay"}
PROBE_MAP = "tidings-relay-probe"


@pytest.fixture
def platform() -> Iterator[tuple[PlatformRelay, int]]:
    yield from serve_platform(PlatformRelay())


def _relay(
    control_plane: ControlPlane, namespace: str, port: int, tmp_path: Path, password: str
) -> RelayProcess:
    process = RelayProcess(control_plane.kubeconfig, namespace, port, tmp_path / "relay.log")
    process.env["TIDINGS_SMTP_PASSWORD"] = password
    process.env["TIDINGS_RELAY_PROBE_INTERVAL_SECONDS"] = "5"
    process.env["TIDINGS_RELAY_REPLICA"] = f"relay-{password[:3]}"  # tells the two runs apart
    return process


def _probed(core: client.CoreV1Api, namespace: str, replica: str) -> dict[str, str] | None:
    try:
        found = core.read_namespaced_config_map(PROBE_MAP, namespace)
    except client.exceptions.ApiException:
        return None
    data = dict(found.data or {})
    return data if data.get("replica") == replica else None


def _relay_line(
    control_plane: ControlPlane, namespace: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    argv = ["doctor", "--skip-renderer", "-n", namespace, "--operator-namespace", namespace]
    code = kubectl_plugin.main([*argv, "--kubeconfig", str(control_plane.kubeconfig)])
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "] relay:" in line]
    return code, line


def test_the_relay_line_reads_the_relays_own_probe(
    kube: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    platform: tuple[PlatformRelay, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = platform
    core = client.CoreV1Api(kube)
    # Before the relay Deployment has a Ready replica: the fix is to scale it up.
    client.AppsV1Api(kube).create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "tidings-relay", "labels": RELAY_LABELS},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": RELAY_LABELS},
                "template": {
                    "metadata": {"labels": RELAY_LABELS},
                    "spec": {"containers": [{"name": "relay", "image": "tidings:dev"}]},
                },
            },
        },
    )
    code, line = _relay_line(control_plane, namespace, capsys)
    assert code == 1 and line.startswith("[FAIL] relay: ") and "0/0 replicas Ready" in line
    assert f"-> kubectl -n {namespace} scale deployment tidings-relay --replicas=2" in line
    client.AppsV1Api(kube).delete_namespaced_deployment("tidings-relay", namespace)
    ready_deployment(kube, namespace, "tidings-relay-1", RELAY_LABELS, "tidings:dev")

    for password, verdict in ((PLATFORM_PASSWORD, "ok"), ("not-the-password", "FAIL")):
        relay = _relay(control_plane, namespace, port, tmp_path, password)
        relay.start()
        try:
            data = wait_for(
                "the relay's probe",
                lambda replica=f"relay-{password[:3]}": _probed(core, namespace, replica),
            )
        finally:
            relay.stop()
        assert data["auth"] == "login" and data["upstream"] == f"127.0.0.1:{port}"
        assert "not-the-password" not in str(data) and PLATFORM_PASSWORD not in str(data)
        code, line = _relay_line(control_plane, namespace, capsys)
        assert line.startswith(f"[{verdict:>4}] relay: {namespace}/tidings-relay-1: 1/1 Ready;")
        assert f"platform relay 127.0.0.1:{port}" in line
        if verdict == "ok":
            assert "EHLO, logged in" in line
        else:
            assert code == 1 and "failed at auth" in line and "smtp.credentialsSecret" in line
    assert box.messages == []  # probing sends no mail
    maps = core.list_namespaced_config_map(
        namespace, label_selector=f"app.kubernetes.io/component={contract.RELAY_PROBE_COMPONENT}"
    )
    assert [m.metadata.name for m in maps.items] == [PROBE_MAP]
