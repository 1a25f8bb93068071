"""`kubectl apply -f examples/` works as README says, on the real apiserver: the examples'
namespaces come first (examples/00-namespaces.yml), then every report is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tidings import models
from tidings_dev.cluster import REPO_ROOT, ControlPlane

pytestmark = pytest.mark.cluster

EXAMPLES = REPO_ROOT / "examples"


def _reports() -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml"))]


def test_kubectl_apply_examples_folder(control_plane: ControlPlane, kube: client.ApiClient) -> None:
    reports = _reports()
    namespaces = {r["metadata"]["namespace"] for r in reports}
    listed = yaml.safe_load_all((EXAMPLES / "00-namespaces.yml").read_text(encoding="utf-8"))
    assert {d["metadata"]["name"] for d in listed if d} == namespaces
    core = client.CoreV1Api(kube)
    existing = {ns.metadata.name for ns in core.list_namespace().items}
    assert not existing & namespaces, "the examples' namespaces must not exist before the test"
    try:
        done = control_plane.kubectl("apply", "-f", str(EXAMPLES) + "/", check=False)
        assert done.returncode == 0, done.stderr
        custom = client.CustomObjectsApi(kube)
        for report in reports:
            meta = report["metadata"]
            live = custom.get_namespaced_custom_object(
                models.GROUP, models.VERSION, meta["namespace"], models.PLURAL, meta["name"]
            )
            assert live["spec"]["reportType"] == report["spec"]["reportType"]
        # Applying again is a no-op, as for any GitOps tool.
        again = control_plane.kubectl("apply", "-f", str(EXAMPLES) + "/")
        assert "created" not in again.stdout
    finally:
        for name in namespaces:
            core.delete_namespace(name)


def test_every_example_names_its_namespace() -> None:
    for path in Path(EXAMPLES).glob("*.yaml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["metadata"].get("namespace"), path
