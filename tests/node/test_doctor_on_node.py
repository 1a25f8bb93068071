"""`kubectl tidings doctor` against the chart installed on the real node: every check it can make
passes, the renderer check included, which runs the operator's image in a real pod and needs the
PDF (WeasyPrint's native libraries and fonts), not the text fallback, and the relay check, whose
probe of the platform relay (EHLO as configured) the relay pod itself makes. With the relay
Deployment scaled to 0, the relay line fails with the command that fixes it, exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.support.node_cluster import RELEASE_NAMESPACE, NodeCluster


def doctor(cluster: NodeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = str(cluster.plane.kubeconfig)
    argv = ["--kubeconfig", kubeconfig, "doctor", "-n", "default"]
    argv += ["--operator-namespace", RELEASE_NAMESPACE, *args]
    return subprocess.run(
        [sys.executable, "-m", "tidings.kubectl_plugin", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_doctor_passes_on_the_installed_chart_and_renders_a_pdf_in_a_pod(
    installed: NodeCluster,
) -> None:
    done = doctor(installed)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [line for line in lines if "[FAIL]" in line], done.stdout
    for check in ("operator", "leader", "webhook", "crds", "renderer", "relay"):
        assert any(line.startswith("[  ok]") and f"] {check}" in line for line in lines), (
            check,
            done.stdout,
        )


def _relay(cluster: NodeCluster) -> dict:
    found = cluster.kubectl(
        "-n", RELEASE_NAMESPACE, "get", "deployment", "-l",
        "app.kubernetes.io/component=relay", "-o", "json",
    )  # fmt: skip
    (deployment,) = json.loads(found.stdout)["items"]
    return deployment


def _wait_ready(cluster: NodeCluster, ready: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (_relay(cluster).get("status") or {}).get("readyReplicas", 0) != ready:
        assert time.monotonic() < deadline, f"the relay never had {ready} Ready replica(s)"
        time.sleep(1)


def test_doctor_fails_the_relay_line_with_its_fix_when_the_relay_is_stopped(
    installed: NodeCluster,
) -> None:
    name = _relay(installed)["metadata"]["name"]
    installed.kubectl("-n", RELEASE_NAMESPACE, "scale", "deployment", name, "--replicas=0")
    try:
        _wait_ready(installed, 0)
        done = doctor(installed, "--skip-renderer")
    finally:
        installed.kubectl("-n", RELEASE_NAMESPACE, "scale", "deployment", name, "--replicas=1")
        _wait_ready(installed, 1)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "] relay:" in line]
    assert line.startswith("[FAIL] relay: ") and "0/0 replicas Ready" in line, line
    assert f"-> kubectl -n {RELEASE_NAMESPACE} scale deployment {name} --replicas=2" in line
    assert done.stdout.splitlines()[-1] == "1 check(s) failed: relay"
    # Back up: the relay probes again at start, and the line passes.
    deadline = time.monotonic() + 60
    while "[  ok] relay:" not in (again := doctor(installed, "--skip-renderer")).stdout:
        assert time.monotonic() < deadline, again.stdout
        time.sleep(2)
