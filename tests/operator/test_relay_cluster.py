"""The delivery relay against the real control plane: renderer pods (the real renderer, run by
the stand-in kubelet with a real pod-bound token from the TokenRequest API) submit to `tidings
relay`, which forwards to a real SMTP server on loopback that requires the platform login.

Shown: a genuine run delivers through it; a second fire of the same slot is not forwarded, not
even after a relay restart, while a run-now of the window is; an `edit` user's copy of the
jobTemplate with other recipients gets a 550 and the platform relay receives nothing; her own
pods, her own service account's token, and a token for another audience are refused."""

from __future__ import annotations

import smtplib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from tests.support.operator_harness import Cluster, OperatorProcess, wait_for
from tests.support.relay_harness import (
    MINTED,
    OUTSIDE,
    PLATFORM_PASSWORD,
    ROW_MARKER,
    SENDER,
    PlatformRelay,
    RelayPodRunner,
    RelayProcess,
    mint,
    relay_env,
    serve_platform,
)
from tests.support.report_bodies import manifest

from tidings import contract, groups, models
from tidings.controller import cronjob as cj
from tidings.relay.dedupe import COMPONENT
from tidings.relay.policy import AUDIENCE
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster


@pytest.fixture
def platform() -> Iterator[tuple[PlatformRelay, int]]:
    yield from serve_platform(PlatformRelay())


@pytest.fixture
def relay_namespace(kube: client.ApiClient) -> Iterator[str]:
    """The operator's namespace, where the relay keeps its dedupe records."""
    core = client.CoreV1Api(kube)
    name = f"tidings-system-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def relay(
    control_plane: ControlPlane,
    relay_namespace: str,
    platform: tuple[PlatformRelay, int],
    tmp_path: Path,
) -> Iterator[RelayProcess]:
    process = RelayProcess(
        control_plane.kubeconfig, relay_namespace, platform[1], tmp_path / "relay.log"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        text = process.log()
        assert PLATFORM_PASSWORD not in text
        assert ROW_MARKER not in text, "the relay logged a message body"
        for token in MINTED:
            assert token not in text, "the relay logged a token"
        MINTED.clear()


@pytest.fixture
def operator_env(relay: RelayProcess) -> dict[str, str]:
    return relay_env(relay)


def report(name: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    rows = [
        {"id": i, "title": f"{ROW_MARKER} {i}", "status": "completed", "completed_at": when}
        for i, when in enumerate(
            ((now - timedelta(days=2)).isoformat(), (now - timedelta(days=1)).isoformat()),
            start=1,
        )
    ]
    return manifest(
        name,
        title="Payments weekly",
        source={"inline": {"rows": rows}},
        recipients={"to": ["ciso@example.com"], "cc": ["audit@example.com"]},
        failurePolicy={"disableAfter": 10, "retries": 0, "timeoutSeconds": 600},
    )


def termination(cluster: Cluster, job: str) -> str:
    state = cluster.pods(job)[0]["status"]["containerStatuses"][0]["state"]
    return state["terminated"].get("message") or ""


def editor(control_plane: ControlPlane, cluster: Cluster) -> client.ApiClient:
    """A user with the built-in `edit` role in the namespace, and nothing else."""
    user = f"eve-{uuid.uuid4().hex[:6]}"
    client.RbacAuthorizationV1Api(cluster.api).create_namespaced_role_binding(
        cluster.ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=f"{user}-edit"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"
            ),
            subjects=[client.RbacV1Subject(kind="User", name=user)],
        ),
    )
    return control_plane.api_client(user)


def submit(port: int, token: str, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
    """A plain SMTP client's submission (what a pod of her own would do): the reply to AUTH
    (key "AUTH"), to each RCPT and to DATA."""
    replies: dict[str, tuple[int, bytes]] = {}
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
        connection.ehlo()
        try:
            connection.login("pod-token", token)
            replies["AUTH"] = (235, b"")
        except smtplib.SMTPAuthenticationError as error:
            replies["AUTH"] = (error.smtp_code, error.smtp_error)
            return replies
        connection.mail(SENDER)
        for address in recipients:
            replies[address] = connection.rcpt(address)
        if any(code == 250 for code, _ in replies.values()):
            message = f"From: {SENDER}\r\nSubject: hello\r\n\r\n{ROW_MARKER}\r\n".encode()
            replies["DATA"] = connection.data(message)
    return replies


def test_a_genuine_run_delivers_through_the_relay_once_per_window_and_trigger(
    run_operator: OperatorProcess,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    relay_namespace: str,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, _ = platform
    cluster.create_report(report("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    template = cluster.cronjob("weekly")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {v["name"]: v.get("value") for v in template["containers"][0]["env"]}
    assert "TIDINGS_SMTP_PASSWORD" not in env and env["TIDINGS_SMTP_PORT"] == str(relay.port)
    runner = RelayPodRunner(cluster, tmp_path)

    scheduled = datetime.now(UTC).replace(second=0, microsecond=0)
    started = time.monotonic()
    job = cluster.create_scheduled_job("weekly", scheduled)
    assert runner.execute(job) == 0, termination(cluster, job)
    delivered = time.monotonic() - started
    assert box.recipients() == ["audit@example.com", "ciso@example.com"]
    assert box.logins and all(ok for _, ok in box.logins)  # with the platform login
    assert f"From: {SENDER}".encode() in box.messages[0][1]
    status = cluster.wait_status(
        "weekly",
        "the run recorded",
        lambda s: any(h["jobName"] == job for h in s.get("history", [])),
    )
    assert status["history"][0]["recipientsAccepted"] == 2

    # The key is durable: a restarted relay still knows the slot was sent.
    records = client.CoreV1Api(cluster.api).list_namespaced_config_map(
        relay_namespace, label_selector=f"app.kubernetes.io/component={COMPONENT}"
    )
    assert len(records.items) == 1
    assert "ciso@example.com" not in str(records.items[0].data)  # hashes, not addresses
    relay.stop()
    relay.start()

    # A second fire of the same slot (the CronJob controller may start two Jobs for one).
    cronjob = cluster.cronjob("weekly")
    stamp = scheduled.isoformat()
    twin = cj.job_from_template(
        cronjob, f"{job}-twin", {contract.SCHEDULED_TIMESTAMP_ANNOTATION: stamp}
    )
    cluster.batch.create_namespaced_job(cluster.ns, twin)
    assert runner.execute(twin["metadata"]["name"]) == 0, termination(
        cluster, twin["metadata"]["name"]
    )
    assert len(box.messages) == 1, "the same window and trigger were forwarded twice"

    # An explicit re-run of a window is a new trigger: it is mailed.
    cluster.annotate("weekly", **{contract.RUN_NOW_ANNOTATION: "again"})
    run_now = wait_for(
        "the run-now Job",
        lambda: [j["metadata"]["name"] for j in cluster.jobs(f"{cj.RUN_NOW_LABEL}=true")],
    )[0]
    assert runner.execute(run_now) == 0, termination(cluster, run_now)
    assert len(box.messages) == 2
    print(f"genuine run through the relay: {delivered:.1f}s from Job to mail")


def test_an_editors_copy_of_the_job_template_reaches_no_outside_address(
    control_plane: ControlPlane,
    run_operator: OperatorProcess,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, _ = platform
    cluster.create_report(report("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    eve = editor(control_plane, cluster)

    # She reads the CronJob, puts her address in the snapshot, and creates the Job herself,
    # owned by the real CronJob and carrying the operator's labels.
    cronjob = eve.sanitize_for_serialization(
        client.BatchV1Api(eve).read_namespaced_cron_job("weekly", cluster.ns)
    )
    forged = cj.job_from_template(cronjob, "weekly-forged", {})
    forged["metadata"]["ownerReferences"][0].pop("blockOwnerDeletion")
    pod_meta = forged["spec"]["template"]["metadata"]
    snapshot = yaml.safe_load(pod_meta["annotations"][cj.SNAPSHOT_ANNOTATION])
    snapshot["spec"]["recipients"] = {"to": [OUTSIDE]}
    pod_meta["annotations"][cj.SNAPSHOT_ANNOTATION] = yaml.safe_dump(snapshot)
    client.BatchV1Api(eve).create_namespaced_job(cluster.ns, forged)

    exit_code = RelayPodRunner(cluster, tmp_path).execute("weekly-forged")
    message = termination(cluster, "weekly-forged")
    assert exit_code == 69, message
    assert "550" in message and "not a recipient in the admitted spec of report" in message
    assert box.messages == [], "the platform relay received the forged run's mail"
    assert OUTSIDE in relay.log() and "refused RCPT" in relay.log()


def test_her_own_pods_and_tokens_are_refused(
    control_plane: ControlPlane,
    run_operator: OperatorProcess,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, _ = platform
    cluster.create_report(report("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    eve = editor(control_plane, cluster)
    template = cluster.cronjob("weekly")["spec"]["jobTemplate"]["spec"]["template"]

    # A plain pod of hers that takes the relay settings (env, token volume) from the CronJob.
    plain = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "eve-mailer"},
        "spec": {**template["spec"], "restartPolicy": "Never"},
    }
    created = client.CoreV1Api(eve).create_namespaced_pod(cluster.ns, plain)
    pod = eve.sanitize_for_serialization(created)
    replies = submit(relay.port, mint(cluster, "default", AUDIENCE, pod), [OUTSIDE])
    assert replies["AUTH"][0] == 535
    assert b"not controlled by a Job" in replies["AUTH"][1]

    # A token of her own service account, not bound to any pod.
    replies = submit(relay.port, mint(cluster, "default", AUDIENCE), [OUTSIDE])
    assert replies["AUTH"][0] == 535 and b"not bound to a pod" in replies["AUTH"][1]

    # A genuine run's pod, but a token for another audience (the apiserver's).
    scheduled = datetime.now(UTC).replace(second=0, microsecond=0)
    job = cluster.create_scheduled_job("weekly", scheduled)
    genuine = RelayPodRunner(cluster, tmp_path).pending_pod(job)
    other = mint(cluster, "default", "https://kubernetes.default.svc.cluster.local", genuine)
    replies = submit(relay.port, other, ["ciso@example.com"])
    assert (
        replies["AUTH"][0] == 535
        and f"not valid for audience {AUDIENCE}".encode() in replies["AUTH"][1]
    )

    # Her pod claiming to belong to the genuine Job (a forged owner reference) is bound to
    # that run: the outside address is refused, an admitted one goes out once per key.
    job_uid = cluster.job(job)["metadata"]["uid"]
    owned = {
        **plain,
        "metadata": {
            "name": "eve-owned",
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job,
                    "uid": job_uid,
                    "controller": True,
                }
            ],
        },
    }
    pod = eve.sanitize_for_serialization(
        client.CoreV1Api(eve).create_namespaced_pod(cluster.ns, owned)
    )
    token = mint(cluster, "default", AUDIENCE, pod)
    replies = submit(relay.port, token, [OUTSIDE, "ciso@example.com"])
    assert (
        replies[OUTSIDE][0] == 550
        and b"not a recipient in the admitted spec" in replies[OUTSIDE][1]
    )
    assert replies["ciso@example.com"][0] == 250 and replies["DATA"][0] == 250
    replies = submit(relay.port, token, ["ciso@example.com"])  # the same window and trigger
    assert replies["DATA"][0] == 250 and b"not sent again" in replies["DATA"][1]
    assert box.recipients() == ["ciso@example.com"]


def test_a_forged_recipients_configmap_reaches_no_outside_address(
    control_plane: ControlPlane,
    run_operator: OperatorProcess,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    """@group recipients: the pod reads its groups from a ConfigMap an editor can rewrite; the
    relay expands the live RecipientGroup itself, so what she adds there gets a 550."""
    box, _ = platform
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        models.GROUP,
        models.VERSION,
        cluster.ns,
        models.GROUP_PLURAL,
        {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.GROUP_KIND,
            "metadata": {"name": "finance"},
            "spec": {"addresses": ["ciso@example.com"]},
        },
    )
    body = report("weekly")
    body["spec"]["recipients"] = {"to": ["@finance"], "cc": ["audit@example.com"]}
    cluster.create_report(body)
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    name = groups.configmap_name("weekly")
    wait_for(
        "the recipients ConfigMap",
        lambda: (
            "ciso@example.com"
            in str(cluster.core.read_namespaced_config_map(name, cluster.ns).data)
        ),
    )
    eve = editor(control_plane, cluster)
    forged = groups.payload(["finance"], {"finance": ["ciso@example.com", OUTSIDE]})
    client.CoreV1Api(eve).patch_namespaced_config_map(
        name, cluster.ns, {"data": {groups.CONFIGMAP_KEY: forged}}
    )

    job = cluster.create_scheduled_job("weekly", datetime.now(UTC).replace(second=0, microsecond=0))
    assert RelayPodRunner(cluster, tmp_path).execute(job) == 0, termination(cluster, job)
    assert box.recipients() == ["audit@example.com", "ciso@example.com"]
    message = termination(cluster, job)
    assert OUTSIDE in message and "not a recipient in the admitted spec" in message
    assert "refused RCPT" in relay.log() and OUTSIDE in relay.log()
