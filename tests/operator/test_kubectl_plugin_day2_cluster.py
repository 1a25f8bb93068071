"""`kubectl tidings` day-2 commands against the real control plane: `test --wait` with the real
operator (the stand-in kubelet ends the test pod), `deliveries` over ReportDelivery records
created as the operator writes them (a 70-character report name, a deleted report), kubectl's
flags after the subcommand, and `doctor`'s checks (the renderer pod against a real node only
where one exists)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    ready_deployment,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import __version__, kubectl_plugin, models
from tidings.controller import cronjob as cj
from tidings.controller import testsend
from tidings.schedule import rfc3339
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
LONG_NAME = "quarterly-compliance-readiness-report-for-the-payments-platform-team-x"


def plugin(
    control_plane: ControlPlane, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """The plugin with kubectl's flags *after* the subcommand, as kubectl users type them."""
    code = kubectl_plugin.main([*argv, "--kubeconfig", str(control_plane.kubeconfig)])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------ test


def test_test_send_waits_for_its_outcome_and_repeats_to_the_same_address(
    run_operator: OperatorProcess,
    cluster: Cluster,
    kubelet: StandInKubelet,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster.create_report(manifest("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    for count in (1, 2):  # the second: the same address again (remove, then set)
        job = testsend.job_name(cj.cronjob_name("weekly"), "me@example.com", count)
        finisher = threading.Thread(
            target=kubelet.run,
            args=(job, 0, result_line(True, recipientsAccepted=1)),
            daemon=True,
        )
        finisher.start()
        argv = ["test", "weekly", "--to", "me@example.com", "--wait", "--timeout", "90"]
        code, out, err = plugin(control_plane, capsys, *argv, "-n", namespace)
        finisher.join(timeout=30)
        assert code == 0, (out, err)
        assert f"Test sent by Job {job} to me@example.com" in out
    status = cluster.status("weekly")
    tests = [h for h in status["history"] if h.get("testRecipient") == "me@example.com"]
    assert len(tests) == 2
    assert not status.get("lastSentAt")  # a test touches nothing else


def test_test_send_refused_by_the_operator_says_why(
    run_operator: OperatorProcess,
    cluster: Cluster,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An address the webhook would refuse, which gets in without it: the operator refuses it
    and the plugin reports the operator's reason, exit 1."""
    cluster.create_report(manifest("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    argv = ["test", "weekly", "--to", "not-an-address", "--wait", "--timeout", "60"]
    code, out, _ = plugin(control_plane, capsys, *argv, "-n", namespace)
    assert code == 1
    assert out.splitlines()[-1].startswith("Not sent: ")
    assert testsend.ANNOTATION_PATH in out


# ------------------------------------------------------------------------------ deliveries


def _record(
    namespace: str, report: dict[str, Any], n: int, finished: datetime, **spec: Any
) -> dict[str, Any]:
    """A ReportDelivery as the operator writes it (controller/records.py): labels included."""
    from tidings.controller.records import REPORT_LABEL, report_label

    meta = report["metadata"]
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.DELIVERY_KIND,
        "metadata": {
            "name": f"rec-{meta['uid'][:8]}-{n}",
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "tidings",
                "app.kubernetes.io/component": "delivery-record",
                REPORT_LABEL: report_label(meta["name"]),
                kubectl_plugin.REPORT_UID_LABEL: meta["uid"],
            },
        },
        "spec": {
            "report": {"name": meta["name"], "uid": meta["uid"]},
            "jobName": f"job-{n}",
            "jobUid": f"uid-{n}",
            "trigger": "Schedule",
            "finishedAt": rfc3339(finished),
            "window": f"2026-11-{n:02d}..2026-11-{n + 7:02d}",
            "outcome": "Delivered",
            "messageId": f"<m{n}@tidings.test>",
            "retentionDays": 90,
            "recipients": {"accepted": 1, "refused": 0, "to": {"accepted": ["ciso@example.com"]}},
            **spec,
        },
    }
    return body


def test_deliveries_newest_first_for_a_long_name_and_a_deleted_report(
    report_crd: None,
    cluster: Cluster,
    kube: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert len(LONG_NAME) == 70  # longer than a label value: its name label is a hash
    custom = client.CustomObjectsApi(kube)
    now = datetime.now(UTC).replace(microsecond=0)
    long_report = cluster.create_report(manifest(LONG_NAME))
    other = cluster.create_report(manifest("other"))
    refused = {"to": {"accepted": [], "refused": [{"address": "x@example.com", "reply": "550 no"}]}}
    bodies = [
        _record(namespace, long_report, 1, now - timedelta(days=9)),
        _record(namespace, long_report, 2, now - timedelta(hours=3)),
        _record(namespace, long_report, 3, now - timedelta(days=1), outcome="Failed",
                failure="permanent", trigger="RunNow",
                recipients={"accepted": 0, "refused": 1, **refused}),
        _record(namespace, other, 4, now - timedelta(hours=1)),
    ]  # fmt: skip
    for body in bodies:
        custom.create_namespaced_custom_object(
            models.GROUP, models.VERSION, namespace, models.DELIVERY_PLURAL, body
        )

    code, out, err = plugin(control_plane, capsys, "deliveries", LONG_NAME, "-n", namespace)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["FINISHED", "WINDOW", "OUTCOME", "TRIGGER"]
    windows = [next(c for c in r.split() if c.startswith("2026-11-")) for r in rows]
    assert windows == ["2026-11-02..2026-11-09", "2026-11-03..2026-11-10", "2026-11-01..2026-11-08"]
    assert "<m2@tidings.test>" in rows[0] and "ciso@example.com" in rows[0]
    assert "Failed (permanent)" in rows[1] and "RunNow" in rows[1]

    # --since, --outcome, -o wide (the refusals and the record), with -n before the command.
    argv = ["deliveries", LONG_NAME, "--since", "2d", "--outcome", "Failed", "-o", "wide"]
    code, out, _ = plugin(control_plane, capsys, "-n", namespace, *argv)
    assert code == 0
    (row,) = out.splitlines()[1:]
    assert "x@example.com: 550 no" in row and bodies[2]["metadata"]["name"] in row

    # -o yaml: the records themselves.
    code, out, _ = plugin(
        control_plane, capsys, "deliveries", "other", "-n", namespace, "-o", "yaml"
    )
    assert [i["metadata"]["name"] for i in yaml.safe_load(out)["items"]] == [
        bodies[3]["metadata"]["name"]
    ]

    # Every report's, newest first, with the REPORT column.
    code, out, _ = plugin(control_plane, capsys, "deliveries", "-n", namespace)
    assert [r.split()[0] for r in out.splitlines()[1:]] == [
        "other",
        LONG_NAME,
        LONG_NAME,
        LONG_NAME,
    ]

    # The report deleted: its records stay, found by spec.report.name.
    cluster.custom.delete_namespaced_custom_object(
        models.GROUP, models.VERSION, namespace, models.PLURAL, LONG_NAME
    )
    wait_for("the report to go", lambda: not _exists(cluster, LONG_NAME))
    code, out, _ = plugin(control_plane, capsys, "deliveries", LONG_NAME, "-n", namespace)
    assert code == 0 and len(out.splitlines()) == 4

    code, _, err = plugin(control_plane, capsys, "deliveries", "never-was", "-n", namespace)
    assert code == 0 and "No delivery records for scheduledreport never-was" in err


def _exists(cluster: Cluster, name: str) -> bool:
    try:
        cluster.report(name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_get_and_status_take_kubectl_flags_after_the_subcommand(
    report_crd: None,
    cluster: Cluster,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster.create_report(manifest("weekly"))
    code, out, err = plugin(control_plane, capsys, "status", "weekly", "-n", namespace)
    assert code == 0, err
    assert f"Name:       {namespace}/weekly" in out
    code, out, _ = plugin(control_plane, capsys, "get", "-o", "json", "--namespace", namespace)
    assert code == 0
    assert [i["metadata"]["name"] for i in yaml.safe_load(out)["items"]] == ["weekly"]
    code, out, _ = plugin(control_plane, capsys, "get", "-A")
    assert code == 0 and f"\n{namespace} " in f"\n{out}"


# ---------------------------------------------------------------------------------- doctor


def _install_operator_deployment(kube: client.ApiClient, namespace: str, peering: str) -> str:
    labels = {"app.kubernetes.io/name": "tidings", "app.kubernetes.io/component": "operator"}
    image = f"tidings:{__version__}"
    env = [
        {"name": "TIDINGS_PEERING", "value": peering},
        {"name": "TIDINGS_STANDALONE", "value": "false"},
        {"name": "TIDINGS_RENDERER_IMAGE", "value": image},
    ]
    return ready_deployment(kube, namespace, "tidings-operator", labels, image, env)


def _live_peering(kube: client.ApiClient, control_plane: ControlPlane, name: str, pod: str) -> None:
    ext = client.ApiextensionsV1Api(kube)
    (crd, _) = yaml.safe_load_all(
        (REPO / "charts" / "tidings" / "crds" / "kopf-peerings.yaml").read_text()
    )
    try:
        ext.create_custom_resource_definition(crd)
    except ApiException as error:
        if error.status != 409:
            raise
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", crd["metadata"]["name"]
    )
    seen = datetime.now(UTC).replace(tzinfo=None).isoformat()  # kopf writes naive UTC
    client.CustomObjectsApi(kube).create_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name},
            "status": {pod: {"priority": 7, "lifetime": 600, "lastseen": seen}},
        },
    )


def _finish_doctor_pod(kube: client.ApiClient, namespace: str, code: int, message: str) -> None:
    """Stands in for the kubelet: ends the doctor's renderer pod as `tidings render` would."""
    core = client.CoreV1Api(kube)

    def pod() -> Any:
        pods = core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=doctor"
        )
        fresh = [
            p
            for p in pods.items
            if not p.metadata.deletion_timestamp and not p.status.container_statuses
        ]
        return fresh[0] if fresh else None

    found = wait_for("the doctor's renderer pod", pod)
    spec = found.spec
    assert spec.automount_service_account_token is False
    assert spec.containers[0].security_context.read_only_root_filesystem is True
    now = rfc3339(datetime.now(UTC))
    terminated = {"exitCode": code, "message": message, "startedAt": now, "finishedAt": now,
                  "reason": "Completed" if code == 0 else "Error"}  # fmt: skip
    core.patch_namespaced_pod_status(
        found.metadata.name,
        namespace,
        {
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [
                    {"name": "render", "image": spec.containers[0].image, "imageID": "",
                     "ready": False, "restartCount": 0, "started": False,
                     "state": {"terminated": terminated}}
                ],
            }
        },
    )  # fmt: skip


def _doctor_lines(out: str) -> dict[str, str]:
    return {
        line.split("]")[1].split(":")[0].strip(): line for line in out.splitlines() if "]" in line
    }


def test_doctor_on_the_control_plane(
    report_crd: None,
    kube: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Operator, leader, version and CRDs pass; the renderer pod (ended by a stand-in kubelet)
    passes with exit 0 and fails with the text fallback's 69; this control plane has no webhook
    configured, so that line fails with what to do, and the exit code is 1."""
    peering = f"doctor-{namespace}"[:63]
    pod = _install_operator_deployment(kube, namespace, peering)
    _live_peering(kube, control_plane, peering, pod)
    try:
        for code, message, verdict in (
            (0, "wrote /tmp/doctor.pdf: Changes summary, 3 rows", "ok"),
            (69, "tidings render: PDF renderer unavailable (OSError: no pango)", "FAIL"),
        ):
            finisher = threading.Thread(
                target=_finish_doctor_pod, args=(kube, namespace, code, message), daemon=True
            )
            finisher.start()
            argv = ["doctor", "-n", namespace, "--operator-namespace", namespace]
            exit_code, out, _ = plugin(control_plane, capsys, *argv, "--renderer-timeout", "60")
            finisher.join(timeout=30)
            lines = _doctor_lines(out)
            assert list(lines) == ["operator", "leader", "version", "webhook", "crds",
                                   "renderer", "relay"], out  # fmt: skip
            assert lines["operator"].startswith("[  ok] operator: ") and "1/1 replicas" in out
            assert lines["leader"].startswith(f"[  ok] leader: {pod} is active")
            assert lines["version"].startswith(f"[  ok] version: operator {__version__}")
            assert lines["crds"].startswith("[  ok] crds: ")
            assert lines["webhook"].startswith("[FAIL] webhook: ") and " -> helm upgrade" in out
            assert lines["renderer"].startswith(f"[{verdict:>4}] renderer: ")
            # No relay Deployment here (tests/operator/test_doctor_relay_cluster.py has one).
            assert lines["relay"].startswith(f"[skip] relay: no delivery relay in {namespace}")
            assert exit_code == 1
            assert out.splitlines()[-1].startswith("1 check(s) failed" if code == 0 else "2 ")
        # The doctor leaves no pod behind.
        pods = client.CoreV1Api(kube).list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=doctor"
        )
        assert all(p.metadata.deletion_timestamp for p in pods.items)
    finally:
        client.CustomObjectsApi(kube).delete_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", peering
        )


def test_doctor_without_an_operator_says_where_it_looked(
    report_crd: None,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["doctor", "--skip-renderer", "-n", namespace, "--operator-namespace", namespace]
    code, out, _ = plugin(control_plane, capsys, *argv)
    assert code == 1
    assert "[FAIL] operator: no operator Deployment" in out and f"in {namespace}" in out
    assert "-> helm install tidings charts/tidings" in out
