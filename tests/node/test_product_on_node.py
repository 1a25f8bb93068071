"""The product as a user runs it, on a real node: the chart installed by helm with the image built
from renderer-image/Dockerfile, CronJobs fired by the CronJob controller, renderer pods run by the
kubelet, mail delivered to an SMTP server on the host, status written by the operator pods.

The scenarios run in file order on one installation (session fixtures); uninstall comes last.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.chart_tools import CHART
from tests.support.json_http import JsonHandler, JsonHttpServer
from tests.support.node_cluster import RELEASE, RELEASE_NAMESPACE, NodeCluster
from tests.support.node_reports import ROWS, WAIT, Reports, wait_for

from tidings_dev.node import NODE_IP

OPERATOR_SELECTOR = "app.kubernetes.io/component=operator"


@pytest.fixture
def reports(installed: NodeCluster, request: pytest.FixtureRequest) -> Iterator[Reports]:
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:5]}"
    installed.kubectl("create", "namespace", name)
    wait_for(
        f"the default ServiceAccount in {name}",
        lambda: installed.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
    )
    yield Reports(installed, name)
    installed.kubectl("delete", "namespace", name, "--wait=false")


def messages_for(cluster: NodeCluster, title: str) -> list[email.message.EmailMessage]:
    found = []
    for raw in list(cluster.smtp.messages):
        message = email.message_from_bytes(raw["content"], policy=email.policy.default)
        if title in str(message["Subject"]):
            found.append(message)
    return found


def pdf_text(message: email.message.EmailMessage, tmp_path: Path) -> str:
    pdf = next(p for p in message.iter_attachments() if p.get_content_type() == "application/pdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.get_content())
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


class SlowSource:
    """An HTTP data source on the host's bridge address that answers only when released, so a
    renderer pod stays running while the test looks at it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests = 0
        release, outer = self.release, self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                release.wait(120)
                self.reply(200, ROWS)

        self.server = JsonHttpServer(Handler, host=NODE_IP)
        self.url = f"{self.server.url}/changes"

    def close(self) -> None:
        self.release.set()
        self.server.close()


def start_held_run(reports: Reports, source: SlowSource, name: str) -> client.V1Pod:
    """Apply a report on the slow source, run it now, and return its renderer pod once it is
    running and waiting for its data."""
    reports.apply(name, source={"http": {"url": source.url}})
    reports.wait_status(name, "reconciled", lambda s: s.get("phase"))
    reports.run_now(name)
    pod = reports.running_renderer_pod()
    wait_for("the renderer to ask for its data", lambda: source.requests)
    return pod


@pytest.fixture
def slow_source() -> Iterator[SlowSource]:
    source = SlowSource()
    yield source
    source.close()


# ---------------------------------------------------------------------------- scenarios


def test_install_two_ready_operators_webhook_refuses_and_report_goes_active(
    installed: NodeCluster, reports: Reports
) -> None:
    pods = reports.core.list_namespaced_pod(RELEASE_NAMESPACE, label_selector=OPERATOR_SELECTOR)
    ready = [
        p.metadata.name
        for p in pods.items
        if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    assert len(ready) == 2, [p.status.phase for p in pods.items]

    # A cron expression is beyond what the CRD schema can check: only the webhook pod refuses it.
    refused = reports.apply("bad-schedule", check=False, schedule="61 9 * * 1")
    assert refused.returncode != 0
    assert "admission webhook" in refused.stderr, refused.stderr
    assert "spec.schedule" in refused.stderr, refused.stderr

    reports.apply("weekly", schedule="0 9 * * 1", timeZone="Europe/Berlin")
    status = reports.wait_status("weekly", "phase Active", lambda s: s.get("phase") == "Active")
    assert status["nextSendAt"]


def test_scheduled_run_fires_renders_and_mails(
    installed: NodeCluster, reports: Reports, tmp_path: Path
) -> None:
    reports.apply("every-minute", schedule="* * * * *")
    first = reports.wait_status("every-minute", "nextSendAt", lambda s: s.get("nextSendAt"))
    title = "Payments changes every-minute"

    message = installed.smtp.wait_for(lambda m: title.encode() in m["content"], timeout=WAIT)
    parsed = email.message_from_bytes(message["content"], policy=email.policy.default)
    assert parsed["To"] == "ciso@example.com"
    text = pdf_text(parsed, tmp_path)
    assert title in text
    assert "Rotate the payment keys" in text

    status = reports.wait_status(
        "every-minute", "a delivered run", lambda s: s.get("lastSentAt") and s.get("history")
    )
    assert status["history"][0]["outcome"] == "Delivered"
    assert status["consecutiveFailures"] == 0
    assert status["nextSendAt"] > first["nextSendAt"]
    # The run came from the CronJob controller: its Job carries the scheduled time.
    jobs = reports.batch.list_namespaced_job(reports.namespace).items
    assert any(
        "batch.kubernetes.io/cronjob-scheduled-timestamp" in (j.metadata.annotations or {})
        for j in jobs
    )
    reports.cluster.kubectl("-n", reports.namespace, "delete", "sr", "every-minute")


def test_three_real_failures_disable_then_reactivate_and_a_success_resets(
    installed: NodeCluster, reports: Reports
) -> None:
    spec = {"schedule": "0 3 1 1 *", "failurePolicy": {"disableAfter": 3, "retries": 0}}
    reports.apply("flaky", **spec)
    reports.wait_status("flaky", "Active", lambda s: s.get("phase") == "Active")
    installed.smtp.refuse = "550 5.1.1 mailbox unavailable"
    try:
        for n in (1, 2, 3):
            reports.run_now("flaky")
            reports.wait_status(
                "flaky", f"{n} failures", lambda s, n=n: s.get("consecutiveFailures", 0) >= n
            )
    finally:
        installed.smtp.refuse = None

    status = reports.wait_status("flaky", "Disabled", lambda s: s.get("phase") == "Disabled")
    assert status["consecutiveFailures"] == 3
    assert status["lastError"]
    assert reports.cronjob("flaky").spec.suspend is True
    disabled = wait_for("a Disabled event", lambda: reports.events("Disabled"))
    assert "3" in disabled[0].message

    reports.annotate("flaky", "tidings.dev/reactivate", "after-fixing-the-relay")
    status = reports.wait_status("flaky", "Active again", lambda s: s.get("phase") == "Active")
    assert status["consecutiveFailures"] == 0
    assert reports.cronjob("flaky").spec.suspend is False

    reports.run_now("flaky")
    status = reports.wait_status("flaky", "delivered", lambda s: s.get("lastSentAt"))
    assert status["consecutiveFailures"] == 0
    assert status["history"][0]["outcome"] == "Delivered"


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


def _container_pid(cluster: NodeCluster, pod: client.V1Pod) -> int:
    listing = cluster.node.crictl(
        "ps", "--name", "renderer", "--pod", _sandbox_id(cluster, pod), "-o", "json"
    )
    container = json.loads(listing.stdout)["containers"][0]
    info = json.loads(cluster.node.crictl("inspect", container["id"]).stdout)
    return int(info["info"]["pid"])


def _sandbox_id(cluster: NodeCluster, pod: client.V1Pod) -> str:
    listing = cluster.node.crictl(
        "pods", "--name", pod.metadata.name, "--namespace", pod.metadata.namespace, "-q"
    )
    return listing.stdout.split()[0]


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    for line in _proc(pid, "cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return (Path("/sys/fs/cgroup") / controller / path.lstrip("/") / name).read_text()
    raise AssertionError(f"no {controller} cgroup for {pid}")


def test_renderer_pod_hardening_as_the_kernel_sees_it(
    installed: NodeCluster, reports: Reports, slow_source: SlowSource
) -> None:
    pod = start_held_run(reports, slow_source, "hardened")
    pid = _container_pid(installed, pod)

    status = dict(line.split(":", 1) for line in _proc(pid, "status").splitlines() if ":" in line)
    assert status["Uid"].split() == ["10001"] * 4
    assert status["Gid"].split() == ["10001"] * 4
    assert status["Seccomp"].strip() == "2"  # filter mode: RuntimeDefault
    assert status["NoNewPrivs"].strip() == "1"
    assert int(status["CapEff"], 16) == 0

    mounts = [line.split() for line in _proc(pid, "mountinfo").splitlines()]
    root = next(m for m in mounts if m[4] == "/")
    assert "ro" in root[5].split(","), root
    assert not [m for m in mounts if "serviceaccount" in m[4]], "a service-account token"
    tmp = next(m for m in mounts if m[4] == "/tmp")
    assert "rw" in tmp[5].split(",")

    # The chart's renderer limits: 1 CPU and 1 GiB.
    assert int(_cgroup_file(pid, "memory", "memory.limit_in_bytes")) == 1024**3
    quota = int(_cgroup_file(pid, "cpu", "cpu.cfs_quota_us"))
    period = int(_cgroup_file(pid, "cpu", "cpu.cfs_period_us"))
    assert quota == period

    slow_source.release.set()
    status = reports.wait_status("hardened", "delivered", lambda s: s.get("lastSentAt"))
    assert status["history"][0]["outcome"] == "Delivered"


def _leader(cluster: NodeCluster) -> str:
    """The operator pod kopf's peering lets run: the highest priority in the ClusterKopfPeering
    (the chart's operator watches every namespace)."""
    peering = client.CustomObjectsApi(cluster.api).get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", RELEASE
    )
    peers = peering.get("status") or {}
    best = max(peers.items(), key=lambda kv: kv[1].get("priority", 0), default=("", {}))
    return best[0]


def test_leader_lost_mid_run_counts_the_job_once_and_mails_once(
    installed: NodeCluster, reports: Reports, slow_source: SlowSource
) -> None:
    start_held_run(reports, slow_source, "handover")

    pods = {
        p.metadata.name
        for p in reports.core.list_namespaced_pod(
            RELEASE_NAMESPACE, label_selector=OPERATOR_SELECTOR
        ).items
    }
    leader = wait_for("a peering leader", lambda: (name := _leader(installed)) in pods and name)
    reports.core.delete_namespaced_pod(leader, RELEASE_NAMESPACE)
    slow_source.release.set()

    status = reports.wait_status("handover", "delivered", lambda s: s.get("lastSentAt"))
    title = "Payments changes handover"
    time.sleep(15)  # room for a wrong second count or mail to show up before we look
    status = reports.status("handover")
    assert [h["outcome"] for h in status["history"]] == ["Delivered"]
    assert len(reports.events("Delivered")) == 1
    assert len(messages_for(installed, title)) == 1
    assert wait_for("a new leader", lambda: (name := _leader(installed)) != leader and name)


def test_helm_upgrade_while_reports_are_applied_refuses_nothing_and_loses_no_status(
    installed: NodeCluster, reports: Reports
) -> None:
    reports.apply("kept", schedule="0 3 1 1 *")
    reports.wait_status("kept", "Active", lambda s: s.get("phase") == "Active")
    reports.run_now("kept")
    before = reports.wait_status("kept", "delivered", lambda s: s.get("lastSentAt"))

    # A rebuilt image: same content under a new tag, so every operator pod is replaced.
    _, _, tag = installed.images.renderer.partition(":")
    new_tag = f"{tag}-upgrade"
    installed.node.ctr(
        "images", "tag", "--force", installed.images.renderer, f"localhost/tidings:{new_tag}"
    )

    failures: list[str] = []
    applied = 0
    stop = threading.Event()

    def apply_loop() -> None:
        nonlocal applied
        while not stop.is_set():
            done = reports.apply(f"loop-{applied % 5}", check=False, schedule="0 9 * * 1")
            if done.returncode != 0:
                failures.append(done.stderr)
            applied += 1

    loop = threading.Thread(target=apply_loop)
    loop.start()
    try:
        done = installed.helm(
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            RELEASE_NAMESPACE,
            "--reuse-values",
            "--wait",
            "--timeout",
            "5m",
            "--set",
            f"image.tag={new_tag}",
        )
    finally:
        stop.set()
        loop.join()
    assert done.returncode == 0, done.stderr
    assert applied > 10
    assert failures == []

    images = {
        c.image
        for p in reports.core.list_namespaced_pod(
            RELEASE_NAMESPACE, label_selector=OPERATOR_SELECTOR
        ).items
        if p.metadata.deletion_timestamp is None
        for c in p.spec.containers
    }
    assert images == {f"localhost/tidings:{new_tag}"}
    after = reports.status("kept")
    assert after["lastSentAt"] == before["lastSentAt"]
    assert after["history"] == before["history"]
    # The new operator still works: a run after the upgrade is recorded.
    reports.run_now("kept")
    reports.wait_status("kept", "a second run", lambda s: len(s.get("history", [])) == 2)


def test_send_test_mails_one_address_only_and_leaves_status_alone(
    installed: NodeCluster, reports: Reports, tmp_path: Path
) -> None:
    reports.apply("tested", schedule="0 3 1 1 *", recipients={"to": ["board@example.com"]})
    before = reports.wait_status("tested", "Active", lambda s: s.get("phase") == "Active")
    reports.annotate("tested", "tidings.dev/send-test", "me@example.com")

    message = installed.smtp.wait_for(
        lambda m: b"Payments changes tested" in m["content"] and "me@example.com" in m["rcpt_tos"],
        timeout=WAIT,
    )
    assert message["rcpt_tos"] == ["me@example.com"]
    parsed = email.message_from_bytes(message["content"], policy=email.policy.default)
    assert str(parsed["Subject"]).startswith("[TEST] ")
    assert "Rotate the payment keys" in pdf_text(parsed, tmp_path)
    status = reports.wait_status(
        "tested",
        "the test in history",
        lambda s: any(h.get("testRecipient") for h in s.get("history", [])),
    )
    assert status.get("lastSentAt") == before.get("lastSentAt")
    assert status["consecutiveFailures"] == 0 and status["phase"] == "Active"
    assert not [m for m in installed.smtp.messages if "board@example.com" in m["rcpt_tos"]]


def test_recipient_groups_reach_each_run_through_the_kubelet_and_the_relay(
    installed: NodeCluster, reports: Reports
) -> None:
    """@leads: the kubelet mounts the report's recipients ConfigMap, the renderer expands it,
    the chart's relay admits the live members; an edited group reaches the next run."""

    def put_group(addresses: list[str]) -> None:
        body = {
            "apiVersion": "tidings.dev/v1alpha1",
            "kind": "RecipientGroup",
            "metadata": {"name": "leads", "namespace": reports.namespace},
            "spec": {"addresses": addresses},
        }
        installed.kubectl("apply", "-f", "-", input=json.dumps(body))

    def mailed(to: str) -> dict:
        return installed.smtp.wait_for(
            lambda m: b"Payments changes grouped" in m["content"] and to in m["rcpt_tos"],
            timeout=WAIT,
        )

    put_group(["lead-one@example.com"])
    reports.apply("grouped", schedule="0 3 1 1 *", recipients={"to": ["@leads"]})
    reports.wait_status("grouped", "Active", lambda s: s.get("phase") == "Active")
    reports.run_now("grouped")
    assert mailed("lead-one@example.com")["rcpt_tos"] == ["lead-one@example.com"]

    put_group(["lead-two@example.com"])
    wait_for(
        "the ConfigMap to follow the group",
        lambda: (
            "lead-two@"
            in str(
                reports.core.read_namespaced_config_map(
                    "tidings-recipients-grouped", reports.namespace
                ).data
            )
        ),
    )
    reports.run_now("grouped")
    assert mailed("lead-two@example.com")["rcpt_tos"] == ["lead-two@example.com"]
    history = reports.wait_status("grouped", "two runs", lambda s: len(s.get("history", [])) >= 2)[
        "history"
    ]
    assert all(h["outcome"] == "Delivered" for h in history), history


def test_uninstall_does_what_the_docs_say(installed: NodeCluster, reports: Reports) -> None:
    reports.apply("survivor", schedule="0 9 * * 1")
    reports.wait_status("survivor", "Active", lambda s: s.get("phase") == "Active")

    done = installed.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait")
    assert done.returncode == 0, done.stderr

    kubectl = installed.kubectl
    gone = kubectl("-n", RELEASE_NAMESPACE, "get", "deploy,sa,svc", "-o", "name").stdout
    assert gone.strip() == "" or "operator" not in gone
    webhooks = kubectl("get", "validatingwebhookconfigurations", "-o", "name").stdout
    assert "tidings" not in webhooks
    roles = kubectl("get", "clusterroles", "-o", "name").stdout
    assert "tidings" not in roles
    # Kept, as docs/helm.md says: the operator-made TLS Secret, the CRDs, reports and CronJobs.
    kubectl("-n", RELEASE_NAMESPACE, "get", "secret", f"{RELEASE}-webhook-tls")
    kubectl("get", "crd", "scheduledreports.tidings.dev")
    kubectl("-n", reports.namespace, "get", "sr", "survivor")
    kubectl("-n", reports.namespace, "get", "cronjob", "survivor")
