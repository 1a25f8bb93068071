"""`kubectl tidings` against the real control plane and the real operator: get, status, run
--wait (the stand-in kubelet ends the run's pod), suspend, resume, reactivate, preview with the
user's own Secret access, schedule; plus kubectl finding the plugin on PATH and the printer
columns of `kubectl get sr`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from pypdf import PdfReader
from tests.support.json_http import JsonHandler, JsonHttpServer
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import kubectl_plugin
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]


def plugin(
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    kubeconfig: Path | None = None,
) -> tuple[int, str, str]:
    config = str(kubeconfig or control_plane.kubeconfig)
    code = kubectl_plugin.main(["--kubeconfig", config, "-n", namespace, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _phase(cluster: Cluster, name: str, phase: str) -> dict:
    return cluster.wait_status(name, phase, lambda s: s.get("phase") == phase)


def _follow_in_background(control_plane: ControlPlane, namespace: str, name: str):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)])}
    command = [sys.executable, "-m", "tidings.kubectl_plugin"]
    command += ["--kubeconfig", str(control_plane.kubeconfig), "-n", namespace]
    command += ["run", name, "--wait", "--timeout", "90"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stderr_until(process: subprocess.Popen, text: str, timeout: float = 60) -> str:
    """What `process` wrote to stderr up to and including the first line holding `text`."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for raw in iter(process.stderr.readline, b""):
            seen.append(raw.decode())
            if text in seen[-1]:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"{text!r} not on stderr within {timeout:.0f}s: {''.join(seen)!r}"
    return "".join(seen)


def _run_now_job(cluster: Cluster) -> str:
    def probe() -> str | None:
        jobs = [j for j in cluster.jobs() if "tidings.dev/run-now" in j["metadata"]["annotations"]]
        fresh = [j for j in jobs if not j.get("status", {}).get("conditions")]
        return fresh[0]["metadata"]["name"] if fresh else None

    return wait_for("the run-now Job", probe)


def test_get_status_and_printer_columns(
    run_operator: OperatorProcess,
    cluster: Cluster,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipients = {"to": ["ciso@example.com"], "cc": ["a@example.com"], "bcc": ["b@example.com"]}
    cluster.create_report(manifest("weekly", recipients=recipients))
    status = _phase(cluster, "weekly", "Active")
    # NEXT: a wall time in the report's zone, e.g. "Mon 2026-12-07 09:00 CET".
    assert status["nextSendLocal"].startswith("Mon ")
    assert status["nextSendLocal"].endswith(("09:00 CET", "09:00 CEST"))
    assert status["recipientCount"] == 3

    table = control_plane.kubectl("get", "sr", "-n", namespace).stdout
    assert status["nextSendLocal"] in table
    assert status["nextSendAt"] not in table
    wide = control_plane.kubectl("get", "sr", "-n", namespace, "-o", "wide").stdout
    header, row = wide.splitlines()
    assert header.split()[-3:] == ["REASON", "LAST", "ERROR"]
    assert row.split()[-1] == "Scheduled"  # no last error: an empty cell
    assert status["recipientSummary"] == "3"  # RECIPIENTS, in the default view
    assert status["deliveryFormat"] == "pdf"

    code, out, _ = plugin(control_plane, namespace, capsys, "get")
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:6] == ["NAME", "TYPE", "FORMAT", "PROGRAM", "SCHEDULE", "RECIPIENTS"]
    assert row.startswith("weekly ")
    assert "Active" in row
    assert " in " in row  # relative
    assert status["nextSendLocal"] in row  # and the local wall time

    code, out, _ = plugin(control_plane, namespace, capsys, "status", "weekly")
    assert code == 0
    assert f"Name:       {namespace}/weekly" in out
    assert "Phase:      Active" in out
    assert "Last run:   none yet" in out
    assert "Next 3 runs (Europe/Berlin):" in out
    fire_lines = out.split("Next 3 runs (Europe/Berlin):\n")[1].splitlines()
    assert len(fire_lines) == 3
    assert fire_lines[0].strip().startswith(status["nextSendLocal"])

    code, _, err = plugin(control_plane, namespace, capsys, "status", "missing")
    assert code == 1
    assert f"scheduledreport missing not found in namespace {namespace}" in err


def test_run_wait_failure_reactivate_success_suspend_resume(
    run_operator: OperatorProcess,
    cluster: Cluster,
    kubelet: StandInKubelet,
    control_plane: ControlPlane,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = {"disableAfter": 1, "retries": 0, "timeoutSeconds": 600}
    cluster.create_report(manifest("weekly", failurePolicy=policy))
    _phase(cluster, "weekly", "Active")

    follower = _follow_in_background(control_plane, namespace, "weekly")
    job = _run_now_job(cluster)
    pod = kubelet.pending_pod(job)
    # The pod ends only once the follower has shown it running: otherwise the stand-in kubelet
    # can finish it between two of the plugin's one-second polls, and the line never appears.
    seen = _stderr_until(follower, f"Job {job}: running")
    kubelet.finish(pod, 75, json.dumps(result_line(False, error="SMTP 451 relay busy")))
    out, rest = follower.communicate(timeout=120)
    err = seen + rest.decode()
    assert follower.returncode == 1, (out, err)
    assert f"Failed: Job {job}: SMTP 451 relay busy" in out.decode()
    assert f"Job {job}: running" in err  # the progress line
    status = _phase(cluster, "weekly", "Disabled")
    assert status["lastErrorBrief"] == "SMTP 451 relay busy"
    # Events say they come from tidings (kubectl describe's "From"), not from kopf.
    (disabled,) = wait_for("the Disabled Event", lambda: cluster.events("Disabled", "weekly"))
    assert (disabled.reporting_component, disabled.source.component) == ("tidings", "tidings")
    assert disabled.reporting_instance
    wide = control_plane.kubectl("get", "sr", "-n", namespace, "-o", "wide").stdout
    assert "SMTP 451 relay busy" in wide
    assert "Disabled" in wide

    code, out, _ = plugin(control_plane, namespace, capsys, "reactivate", "weekly")
    assert code == 0
    assert "reactivated" in out
    status = _phase(cluster, "weekly", "Active")
    assert status["consecutiveFailures"] == 0

    follower = _follow_in_background(control_plane, namespace, "weekly")
    job = _run_now_job(cluster)
    kubelet.run(job, 0, result_line(True, recipientsAccepted=1))
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, (out, err)
    assert f"Delivered by Job {job} to 1 recipient(s)" in out.decode()

    code, _, _ = plugin(control_plane, namespace, capsys, "suspend", "weekly")
    assert code == 0
    assert cluster.report("weekly")["spec"]["suspend"] is True
    _phase(cluster, "weekly", "Paused")
    code, out, _ = plugin(control_plane, namespace, capsys, "status", "weekly")
    assert "Next runs:  none while Paused" in out
    code, _, _ = plugin(control_plane, namespace, capsys, "resume", "weekly")
    assert code == 0
    _phase(cluster, "weekly", "Active")


@pytest.fixture
def rows_server() -> Iterator[str]:
    """A JSON rows endpoint on loopback that answers only with the right Authorization."""

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != "Bearer s3cret":
                self.send_response(401)
                self.end_headers()
                return
            row = {"id": 7, "status": "completed", "title": "Rotate keys"}
            row["completed_at"] = "2025-03-28T10:00:00Z"
            self.reply(200, [row])

    with JsonHttpServer(Handler) as server:
        yield f"{server.url}/changes"


def test_preview_uses_the_users_own_secret_access(
    cluster: Cluster,
    report_crd: None,
    kube: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    rows_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = {"http": {"url": rows_server, "authSecretRef": {"name": "rows", "key": "auth"}}}
    cluster.create_report(manifest("weekly", source=source, title="Key rotations"))
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "rows"}, "stringData": {"auth": "Bearer s3cret"}}
    )
    rbac = client.RbacAuthorizationV1Api(kube)

    def grant(role: str, group: str, resource: str, names: list[str] | None = None) -> None:
        rule = {"apiGroups": [group], "resources": [resource], "verbs": ["get"]}
        if names:
            rule["resourceNames"] = names
        rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": [rule]})
        ref = {"kind": "Role", "name": role, "apiGroup": "rbac.authorization.k8s.io"}
        subject = {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
        rbac.create_namespaced_role_binding(
            namespace, {"metadata": {"name": role}, "roleRef": ref, "subjects": [subject]}
        )

    grant("read-reports", "tidings.dev", "scheduledreports")
    alice = control_plane.kubeconfig_for("alice")
    pdf = tmp_path / "weekly.pdf"
    args = ("preview", "weekly", "-o", str(pdf), "--at", "2025-03-31T09:00:00+02:00")

    # alice may read the report but not its Secret: refused, naming the Secret.
    code, _, err = wait_for(
        "alice's report access",
        lambda: (
            (r := plugin(control_plane, namespace, capsys, *args, kubeconfig=alice))
            and "scheduledreport" not in r[2]
            and r
        ),
    )
    assert code == 1
    assert "forbidden: secret rows" in err
    assert 'user "alice" cannot get secrets "rows"' in err  # checked before reading
    assert not pdf.exists()

    grant("read-rows", "", "secrets", ["rows"])
    code, out, err = wait_for(
        "alice's Secret access",
        lambda: (
            (r := plugin(control_plane, namespace, capsys, *args, kubeconfig=alice))[0] == 0 and r
        ),
    )
    assert f"wrote {pdf}" in out
    assert 'preview reads secret rows (spec.source.http.authSecretRef) as user "alice"' in err
    assert f"preview sends that Secret's value to {rows_server}" in err
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Key rotations" in text
    assert "Rotate keys" in text


def test_schedule_and_kubectl_finds_the_plugin(tmp_path: Path, control_plane: ControlPlane) -> None:
    """kubectl runs `kubectl-tidings` from PATH; `schedule` marks the DST change."""
    shim = tmp_path / "kubectl-tidings"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m tidings.kubectl_plugin "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)]),
    }
    kubectl = str(control_plane.bin_dir / "kubectl")
    listed = subprocess.run([kubectl, "plugin", "list"], env=env, capture_output=True, text=True)
    assert str(shim) in listed.stdout
    done = subprocess.run(
        [kubectl, "tidings", "schedule", "0 9 * * 0", "--tz", "Europe/Berlin", "--count", "52"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Next 52 runs of '0 9 * * 0' in Europe/Berlin:"
    assert len(lines) == 53
    assert all(" 09:00 CE" in line for line in lines[1:])
    changes = [line for line in lines if "clocks change before this run" in line]
    assert len(changes) == 2  # one spring-forward, one fall-back within a year
    bad = subprocess.run(
        [kubectl, "tidings", "schedule", "0 9 * *", "--tz", "Europe/Berlin"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "is not a five-field cron expression" in bad.stderr
