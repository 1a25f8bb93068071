"""`kubectl tidings doctor` against the chart installed on the real node: every check it can make
passes, the renderer check included, which runs the operator's image in a real pod and needs the
PDF (WeasyPrint's native libraries and fonts), not the text fallback."""

from __future__ import annotations

import os
import subprocess
import sys

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
    for check in ("operator", "leader", "webhook", "crds", "renderer"):
        assert any(line.startswith("[  ok]") and f"] {check}" in line for line in lines), (
            check,
            done.stdout,
        )
