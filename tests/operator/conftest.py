"""Fixtures for the operator tests; the helpers they hand out live in op_harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from op_harness import Cluster, OperatorProcess, StandInKubelet

from tidings import crdgen, models
from tidings.controller import cronjob
from tidings.devcluster import ControlPlane


@pytest.fixture(scope="session")
def report_crd(control_plane: ControlPlane, kube: client.ApiClient) -> None:
    """The ScheduledReport CRD, generated from the models when crds/ did not provide it."""
    ext = client.ApiextensionsV1Api(kube)
    name = f"{models.PLURAL}.{models.GROUP}"
    try:
        ext.read_custom_resource_definition(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(yaml.safe_load(crdgen.crd_yaml()))
        control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", name)
    # The chart's admission policy: Jobs of reports are born with the outcome finalizer.
    admission = client.AdmissionregistrationV1Api(kube)
    policy, binding = cronjob.finalizer_policy("tidings-test-run-outcome")
    for create, body in (
        (admission.create_mutating_admission_policy, policy),
        (admission.create_mutating_admission_policy_binding, binding),
    ):
        try:
            create(body)
        except ApiException as exc:
            if exc.status != 409:
                raise


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
