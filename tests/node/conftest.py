"""The product as users run it: a real node (containerd, runc, kubelet, scheduler, kube-proxy)
beside the real control plane, the image built from renderer-image/Dockerfile by buildah, the
chart installed by helm, and an SMTP server on the host's bridge address that pods can reach.

Everything here is session-scoped and started once: the node is machine-wide (one per machine).
Where a node cannot run (not root, not Linux, parts missing) the tests skip with the reason,
except under CI=true, where that is a failure: CI must run them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.node_cluster import NodeCluster, running, unavailable

from tidings_dev import node as devnode


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.node)
    # `make cluster-demo` brings up a node of its own and removes it: before the session's node
    # starts. Stopping the node is checked last: nothing may need the node after it.
    first = [item for item in items if Path(item.fspath) == here / "test_cluster_demo.py"]
    last = [item for item in items if Path(item.fspath) == here / "test_teardown.py"]
    items[:] = first + [item for item in items if item not in first + last] + last


@pytest.fixture(scope="session")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    state_dir = tmp_path_factory.mktemp("node-cluster")
    reason = devnode.unavailable_reason() or devnode.running_elsewhere(state_dir / "node")
    if reason:
        unavailable(reason)
    try:
        images = devnode.build_images()
    except devnode.NodeError as exc:
        pytest.fail(str(exc))
    with running(state_dir, images, die_with_parent=True) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def installed(node_cluster: NodeCluster) -> NodeCluster:
    """The chart installed with the locally built image; helm --wait returns when both
    operator pods are Ready (readiness includes the webhook port)."""
    done = node_cluster.install()
    if done.returncode != 0:
        pods = node_cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
        pytest.fail(f"helm install failed:\n{done.stderr}\n{pods}")
    return node_cluster
