"""Runs last in tests/node (the conftest orders it): stopping the node removes everything it made
and returns only when its processes have exited. The session's own teardown then finds nothing
left to do."""

from __future__ import annotations

from pathlib import Path

from tests.node.node_cluster import NodeCluster

from tidings import devnode
from tidings.devcluster import _alive


def test_stopping_the_node_leaves_nothing_behind(node_cluster: NodeCluster) -> None:
    # A running pod, so there are containers, mounts, a network namespace and cgroups to remove.
    node_cluster.kubectl(
        "run", "sleeper", "--image", node_cluster.images.renderer, "--image-pull-policy=Never",
        "--restart=Never", "--command", "--", "sleep", "600",
    )  # fmt: skip
    node_cluster.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "--timeout=120s")
    node = node_cluster.node
    assert devnode._our_netns() and devnode._kubepods_cgroups()
    pids = [p.pid for p in node.processes.values()] + devnode._shim_pids()

    node.stop()

    assert not [pid for pid in pids if _alive(pid)]
    assert not devnode._shim_pids()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(node.state_dir) not in mounts
    assert str(devnode.CONTAINERD_STATE) not in mounts
    assert devnode._our_netns() == []
    assert devnode._kubepods_cgroups() == []
    assert devnode._run("ip", "link", "show", devnode.BRIDGE, check=False).returncode != 0
    assert "KUBE-" not in devnode._run("iptables", "-t", "nat", "-S").stdout
    assert not devnode.CONTAINERD_STATE.exists()
