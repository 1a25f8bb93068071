"""With TIDINGS_WEBHOOK_PORT set, the operator process also answers admission reviews."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import pytest
from tests.support.operator_harness import OperatorProcess
from tests.support.report_bodies import manifest

from tidings import models
from tidings.controller.admission import WEBHOOK_ID
from tidings_dev.cluster import ControlPlane
from tidings_dev.procs import free_port

pytestmark = pytest.mark.cluster


@pytest.fixture
def webhook_port() -> int:
    return free_port()


@pytest.fixture
def operator_env(control_plane: ControlPlane, tmp_path: Path, webhook_port: int) -> dict:
    cert, key = control_plane.ca.issue(
        tmp_path, "webhook", "127.0.0.1", ip_addresses=("127.0.0.1",)
    )
    return {
        "TIDINGS_WEBHOOK_PORT": str(webhook_port),
        "TIDINGS_WEBHOOK_CERT_FILE": str(cert),
        "TIDINGS_WEBHOOK_KEY_FILE": str(key),
    }


def _review(port: int, ca: Path, report: dict, user: dict, old: dict | None = None) -> dict:
    # As the apiserver sends it: the object carries its namespace.
    report = {**report, "metadata": {**report["metadata"], "namespace": "team"}}
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0d5e1c6a-1",
            "kind": {"group": models.GROUP, "version": models.VERSION, "kind": models.KIND},
            "resource": {
                "group": models.GROUP,
                "version": models.VERSION,
                "resource": models.PLURAL,
            },
            "namespace": "team",
            "name": report["metadata"]["name"],
            "operation": "UPDATE" if old else "CREATE",
            "userInfo": user,
            "object": report,
            "oldObject": old,
            "dryRun": False,
        },
    }
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/{WEBHOOK_ID}",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.loads(response.read())["response"]


def test_webhook_served_by_the_operator(
    control_plane: ControlPlane, run_operator: OperatorProcess, webhook_port: int
) -> None:
    ca = control_plane.ca.cert_path
    admin = {"username": "admin", "groups": ["system:masters", "system:authenticated"]}
    good = _review(webhook_port, ca, manifest("good"), admin)
    assert good["allowed"] is True
    bad = _review(webhook_port, ca, manifest("bad", timeZone="Mars/Olympus_Mons"), admin)
    assert bad["allowed"] is False
    assert bad["status"]["code"] == 422
    assert "spec.timeZone" in bad["status"]["message"]
    # The permission check asks the apiserver about the requesting user: alice has no RBAC.
    alice = _review(webhook_port, ca, manifest("good"), {"username": "alice", "groups": []})
    assert alice["allowed"] is False
    assert alice["status"]["code"] == 403
    assert alice["status"]["message"].startswith(
        'ScheduledReport is forbidden: spec.schedule: setting a schedule needs the "schedule" verb'
    )


def _big(name: str, size: int) -> dict:
    """A report whose inline rows make its spec about `size` bytes as YAML."""
    row = {"id": 0, "status": "completed", "title": "x" * 200}
    rows = [{**row, "id": i} for i in range(size // 240)]
    return manifest(name, source={"inline": {"rows": rows}})


def test_size_limit_is_named_and_big_reports_can_still_be_annotated(
    control_plane: ControlPlane, run_operator: OperatorProcess, webhook_port: int
) -> None:
    ca = control_plane.ca.cert_path
    admin = {"username": "admin", "groups": ["system:masters", "system:authenticated"]}
    big = _big("big", 310_000)
    assert len(json.dumps(big)) > 300_000
    refused = _review(webhook_port, ca, big, admin)
    assert refused["allowed"] is False
    assert refused["status"]["code"] == 422
    assert f"the limit is {models.MAX_SPEC_BYTES} bytes" in refused["status"]["message"]
    # A report that big (admitted before the limit, or while the webhook was off) can still be
    # annotated: the review holds it twice, well over aiohttp's 1 MiB default. No 413.
    annotated = {
        **big,
        "metadata": {**big["metadata"], "annotations": {"tidings.dev/run-now": "1"}},
    }
    old = {**big, "metadata": {**big["metadata"], "namespace": "team"}}
    assert _review(webhook_port, ca, annotated, admin, old=old)["allowed"] is True
