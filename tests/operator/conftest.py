"""Fixtures for the operator tests, built on tests.support.operator_harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    install_report_crd,
)
from tests.support.smtp_mailbox import Mailbox, serve_mailbox

from tidings_dev.cluster import ControlPlane


@pytest.fixture(scope="session")
def report_crd(control_plane: ControlPlane, kube: client.ApiClient) -> None:
    install_report_crd(control_plane, kube)


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Extra TIDINGS_* for the operator; a test overrides this fixture to change them."""
    return {}


@pytest.fixture
def run_operator(
    control_plane: ControlPlane,
    report_crd: None,
    namespace: str,
    operator_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        control_plane.kubeconfig, namespace, tmp_path / "operator.log", operator_env
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        secrets_in_log = [s for s in ("s3cret", "hunter2") if s in process.log_path.read_text()]
        assert not secrets_in_log, f"secret values in the operator log: {secrets_in_log}"


@pytest.fixture
def cluster(kube: client.ApiClient, namespace: str) -> Cluster:
    return Cluster(kube, namespace)


@pytest.fixture
def kubelet(cluster: Cluster) -> StandInKubelet:
    return StandInKubelet(cluster)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on loopback and its port; a test module overrides it to refuse."""
    yield from serve_mailbox(Mailbox())
