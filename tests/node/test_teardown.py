"""Runs last in tests/node (the conftest orders it): stopping the node removes everything it made
and returns only when its processes have exited, and so does `hack/dev-cluster down` after
`up --node`. The session's own teardown then finds nothing left to do."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.node_cluster import NodeCluster

from tidings_dev import node as devnode
from tidings_dev import procs
from tidings_dev.cluster import REPO_ROOT, default_bin_dir


def test_stopping_the_node_leaves_nothing_behind(node_cluster: NodeCluster) -> None:
    # A running pod, so there are containers, mounts, a network namespace and cgroups to remove.
    node_cluster.kubectl(
        "run", "sleeper", "--image", node_cluster.images.renderer, "--image-pull-policy=Never",
        "--restart=Never", "--command", "--", "sleep", "600",
    )  # fmt: skip
    node_cluster.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=120s")
    node = node_cluster.node
    assert devnode.our_netns() and devnode.kubepods_cgroups()
    pids = [p.pid for p in node.processes.values()] + devnode.shim_pids()

    node.stop()

    assert not [pid for pid in pids if procs.alive(pid)]
    assert not devnode.shim_pids()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.state_dir) not in mounts
    assert str(devnode.CONTAINERD_STATE) not in mounts
    assert devnode.our_netns() == []
    assert devnode.kubepods_cgroups() == []
    assert procs.run("ip", "link", "show", devnode.BRIDGE, check=False).returncode != 0
    assert "KUBE-" not in procs.run("iptables", "-t", "nat", "-S").stdout
    assert not devnode.CONTAINERD_STATE.exists()


def test_dev_cluster_up_node_and_down_as_a_developer_runs_them(
    node_cluster: NodeCluster, tmp_path: Path
) -> None:
    """After the session's node is gone: `hack/dev-cluster up --node` then `down`, as scripts."""
    script = str(REPO_ROOT / "hack" / "dev-cluster")
    state = tmp_path / "dev"
    up = subprocess.run(
        [script, "up", "--node", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert up.returncode == 0, up.stderr
    assert "control plane and node ready" in up.stdout
    node_pids = list(json.loads((state / "node" / "state.json").read_text())["pids"].values())
    plane_pids = list(json.loads((state / "state.json").read_text())["pids"].values())
    try:
        nodes = subprocess.run(
            [str(default_bin_dir() / "kubectl"), "get", "nodes", "-o", "name"],
            env={**os.environ, "KUBECONFIG": str(state / "kubeconfig")},
            capture_output=True,
            text=True,
            check=True,
        )
        assert nodes.stdout.strip() == f"node/{devnode.NODE_NAME}"
    finally:
        down = subprocess.run(
            [script, "down", "--state-dir", str(state)], capture_output=True, text=True
        )
    assert down.returncode == 0, down.stderr
    assert "node torn down" in down.stdout
    # `down` returned: every process is gone already, and so is what the node made.
    assert not [pid for pid in node_pids + plane_pids if procs.alive(pid)]
    assert procs.run("ip", "link", "show", devnode.BRIDGE, check=False).returncode != 0
    assert str(state) not in Path("/proc/self/mountinfo").read_text()
    assert devnode.kubepods_cgroups() == []
