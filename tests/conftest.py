"""Shared fixtures: one real control plane per test session, a fresh namespace per test."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tidings_dev.cluster import ControlPlane


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager on loopback, with crds/ installed.

    The processes are tied to this pytest process (PR_SET_PDEATHSIG), so they go away even if
    the run is killed; the finalizer stops them cleanly on every normal exit, failures included.
    """
    state_dir = Path(os.environ.get("TIDINGS_TEST_STATE_DIR") or tmp_path_factory.mktemp("cp"))
    # Zones a test compiles (tests/support/zones.py) land in state_dir/zoneinfo, where
    # kube-apiserver and kube-controller-manager look first.
    plane = ControlPlane(
        state_dir=state_dir, die_with_parent=True, zoneinfo_dir=state_dir / "zoneinfo"
    )
    with plane:
        yield plane


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[Any]:
    """An admin ApiClient for the session's control plane."""
    client = control_plane.api_client()
    yield client
    client.close()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, control_plane: ControlPlane, kube) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards (without waiting for it)."""
    from kubernetes import client, watch

    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods are refused until the ServiceAccount controller has made the default account.
    watcher = watch.Watch()
    for event in watcher.stream(core.list_namespaced_service_account, name, timeout_seconds=30):
        if event["object"].metadata.name == "default":
            watcher.stop()
            break
    else:
        pytest.fail(f"no default ServiceAccount in {name} after 30s: is the controller-manager up?")
    yield name
    core.delete_namespace(name)
