"""README's kubectl block ("kubectl apply -f examples/" and on), run as printed against the real
apiserver, twice: its annotate lines must work the second time too (the run-now line needs
`--overwrite` for that)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tidings_dev.cluster import REPO_ROOT, ControlPlane, default_bin_dir

pytestmark = pytest.mark.cluster

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def kubectl_block() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    (block,) = [b for b in blocks if b.startswith("kubectl apply -f examples/ ")]
    return block


def gone(core: client.CoreV1Api, namespaces: set[str], timeout: float = 120) -> None:
    """Delete those of `namespaces` that exist and wait until none is left."""
    for name in namespaces & {ns.metadata.name for ns in core.list_namespace().items}:
        core.delete_namespace(name)
    deadline = time.monotonic() + timeout
    while namespaces & {ns.metadata.name for ns in core.list_namespace().items}:
        assert time.monotonic() < deadline, f"namespaces {sorted(namespaces)} not gone"
        time.sleep(1)


def test_readme_kubectl_block_runs_as_printed_twice(
    control_plane: ControlPlane, kube: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube)
    docs = yaml.safe_load_all((REPO_ROOT / "examples" / "00-namespaces.yml").read_text())
    namespaces = {d["metadata"]["name"] for d in docs if d}
    # The session's control plane is shared: another test may have applied the examples before.
    # README's block runs on a cluster without them, so start from one.
    gone(core, namespaces)
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        # kubectl, and python3 with tidings for hack/examples-now (as after make demo).
        "PATH": os.pathsep.join(
            [str(default_bin_dir()), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
    }
    block = kubectl_block()
    run_now = next(line for line in block.splitlines() if "tidings.dev/run-now" in line)
    try:
        first = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert first.returncode == 0, first.stdout + first.stderr
        assert "payments-weekly" in first.stdout and "annotated" in first.stdout
        assert "scheduledreport.tidings.dev/payments-weekly configured" in first.stdout
        time.sleep(1.1)  # a new $(date +%s): a new value, one more run
        again = subprocess.run(
            ["bash", "-e", "-c", run_now],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr  # without --overwrite: "already has a value"
        report = client.CustomObjectsApi(kube).get_namespaced_custom_object(
            "tidings.dev", "v1alpha1", "team-payments", "scheduledreports", "payments-weekly"
        )
        annotations = report["metadata"]["annotations"]
        assert annotations["tidings.dev/send-test"] == "me@example.com"
        assert int(annotations["tidings.dev/run-now"]) >= int(time.time()) - 60
    finally:
        gone(core, namespaces)  # before the next test, which applies the examples afresh
