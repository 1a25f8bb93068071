"""The delivery relay on a real node: the chart installed by helm with the platform relay
requiring a login (STARTTLS, credentials set through the chart's smtp.credentialsSecret in the
release namespace; the test's SMTP server checks them), renderer pods run by the kubelet with
their projected relay token.

Shown: a genuine run is mailed through the relay with the platform login; a built-in `edit`
user's copy of the CronJob's job template with her address in the snapshot, and a plain pod of
hers that takes the relay settings (env, token volume) from the CronJob, get no mail to her
address: the SMTP server receives none."""

from __future__ import annotations

import copy
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from kubernetes import client
from tests.support.chart_tools import CHART
from tests.support.node_cluster import RELEASE, RELEASE_NAMESPACE, NodeCluster
from tests.support.node_reports import Reports, wait_for

from tidings.controller import cronjob as cj
from tidings_dev.cluster import CertificateAuthority
from tidings_dev.node import NODE_IP
from tidings_dev.procs import free_port

# Node start, install and the upgrade to the login are set-up time of the first test.
pytestmark = pytest.mark.timeout(900)
LOGIN_SECRET = "platform-login"
USER, PASSWORD = "tidings-platform", f"pw-{uuid.uuid4().hex}"
OUTSIDE = "mallory@outside.example.org"


@dataclass
class PlatformRelay:
    """The platform relay: STARTTLS and AUTH required, only the platform login accepted."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode())
        with self.lock:
            self.logins.append((auth_data.login.decode(errors="replace"), ok))
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK: queued"

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for rcpts, _ in self.messages for r in rcpts]


@pytest.fixture(scope="module")
def platform(
    installed: NodeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PlatformRelay]:
    """The chart upgraded to a platform relay that requires the login, restored afterwards."""
    pki = tmp_path_factory.mktemp("platform-relay")
    ca = CertificateAuthority.create(pki, "platform-relay-ca")
    cert, key = ca.issue(pki, "relay", "platform relay", ip_addresses=(NODE_IP,))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = PlatformRelay()
    port = free_port()
    server = Controller(
        box,
        hostname=NODE_IP,
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=box.authenticate,
        auth_required=True,
    )
    server.start()
    core = client.CoreV1Api(installed.api)
    core.create_namespaced_secret(
        RELEASE_NAMESPACE,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=LOGIN_SECRET),
            string_data={"username": USER, "password": PASSWORD},
        ),
    )
    args = ["upgrade", "--install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE]
    args += ["--wait", "--timeout", "5m", "--set-file", f"smtp.caCert={ca.cert_path}"]
    values = [
        *installed.chart_values(),
        f"smtp.port={port}",
        "smtp.tls=starttls",
        f"smtp.credentialsSecret={LOGIN_SECRET}",
    ]
    for value in values:
        args += ["--set", value]
    try:
        done = installed.helm(*args)
        assert done.returncode == 0, done.stderr
        installed.wait_webhook_routed()
        yield box
    finally:
        installed.install()  # back to the session's plain sink, for the tests after these
        core.delete_namespaced_secret(LOGIN_SECRET, RELEASE_NAMESPACE)
        server.stop()


@pytest.fixture
def reports(installed: NodeCluster, platform: PlatformRelay) -> Iterator[Reports]:
    name = f"relay-{uuid.uuid4().hex[:6]}"
    installed.kubectl("create", "namespace", name)
    wait_for(
        f"the default ServiceAccount in {name}",
        lambda: installed.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
    )
    yield Reports(installed, name)
    installed.kubectl("delete", "namespace", name, "--wait=false")


def editor(installed: NodeCluster, namespace: str) -> client.ApiClient:
    """A user with the built-in `edit` role in `namespace` and nothing else."""
    user = f"eve-{uuid.uuid4().hex[:6]}"
    client.RbacAuthorizationV1Api(installed.api).create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=f"{user}-edit"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="edit"
            ),
            subjects=[client.RbacV1Subject(kind="User", name=user)],
        ),
    )
    return installed.plane.api_client(user)


def her_snapshot(template: dict[str, Any]) -> dict[str, str]:
    """The pod template's annotations with her address as the snapshot's only recipient."""
    annotations = dict(template["metadata"]["annotations"])
    snapshot = yaml.safe_load(annotations[cj.SNAPSHOT_ANNOTATION])
    snapshot["spec"]["recipients"] = {"to": [OUTSIDE]}
    annotations[cj.SNAPSHOT_ANNOTATION] = yaml.safe_dump(snapshot)
    return annotations


HER_SNAPSHOT = "eve.example/snapshot"


def past_the_policy(template: dict[str, Any]) -> dict[str, Any]:
    """The pod template as she must write it once the chart's admission policy refuses the
    operator's marks: no tidings.dev/ key and no managed-by label, the snapshot (with her
    address) under an annotation of her own, the downward API volume reading it from there."""
    template = copy.deepcopy(template)
    meta = template["metadata"]
    annotations = her_snapshot(template)
    meta["annotations"] = {HER_SNAPSHOT: annotations[cj.SNAPSHOT_ANNOTATION]}
    meta["labels"] = {
        k: v
        for k, v in (meta.get("labels") or {}).items()
        if not k.startswith("tidings.dev/") and k != "app.kubernetes.io/managed-by"
    }
    for volume in template["spec"].get("volumes") or []:
        for item in (volume.get("downwardAPI") or {}).get("items") or []:
            item["fieldRef"]["fieldPath"] = f"metadata.annotations['{HER_SNAPSHOT}']"
    return template


def refused_by_the_policy(create: Any) -> None:
    """Her copy as it is, with the operator's marks, is refused at admission."""
    try:
        create()
    except client.ApiException as error:
        assert error.status == 403 and "tidings-protect-runs" in error.body, error.body
    else:
        raise AssertionError("the admission policy let her copy of the operator's run in")


def terminated(core: client.CoreV1Api, namespace: str, selector: str) -> Any:
    def probe() -> Any:
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
            for status in pod.status.container_statuses or []:
                if status.state.terminated:
                    return status.state.terminated
        return None

    return wait_for(f"a finished pod ({selector})", probe)


def diagnosis(installed: NodeCluster, reports: Reports, status: dict[str, Any]) -> str:
    """What a failed run leaves to look at: the run, the pods' ends, the relay's log."""
    pods = [
        (
            p.metadata.name,
            [
                s.state.terminated.message
                for s in p.status.container_statuses or []
                if s.state.terminated
            ],
        )
        for p in reports.core.list_namespaced_pod(reports.namespace).items
    ]
    relay = installed.kubectl(
        "-n",
        RELEASE_NAMESPACE,
        "logs",
        "-l",
        "app.kubernetes.io/component=relay",
        "--tail=40",
        check=False,
    )
    return f"history: {status.get('history')}\npods: {pods}\nrelay: {relay.stdout}{relay.stderr}"


def test_genuine_runs_mail_through_the_relay_with_the_platform_login(
    installed: NodeCluster, reports: Reports, platform: PlatformRelay
) -> None:
    reports.apply("weekly", schedule="0 3 1 1 *", failurePolicy={"retries": 0})
    reports.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    template = reports.cronjob("weekly").spec.job_template.spec.template.spec
    env = {e.name: e.value for e in template.containers[0].env}
    assert env["TIDINGS_SMTP_HOST"] != NODE_IP  # the relay Service, not the platform relay
    assert not any(e.value_from and e.value_from.secret_key_ref for e in template.containers[0].env)
    reports.run_now("weekly")
    status = reports.wait_status("weekly", "a run recorded", lambda s: s.get("history"))
    assert status["history"][0]["outcome"] == "Delivered", diagnosis(installed, reports, status)
    assert "ciso@example.com" in platform.recipients()
    assert platform.logins and all(ok for _, ok in platform.logins)
    # The platform login is in the release namespace only.
    secrets = client.CoreV1Api(installed.api).list_namespaced_secret(reports.namespace).items
    assert not [s for s in secrets if s.metadata.name == LOGIN_SECRET]


def test_an_editors_copy_of_the_job_template_mails_no_outside_address(
    installed: NodeCluster, reports: Reports, platform: PlatformRelay
) -> None:
    reports.apply("weekly", schedule="0 3 1 1 *", failurePolicy={"retries": 0})
    reports.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    eve = editor(installed, reports.namespace)
    batch = client.BatchV1Api(eve)
    cronjob = eve.sanitize_for_serialization(
        batch.read_namespaced_cron_job("weekly", reports.namespace)
    )

    job_template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    job_template["spec"]["template"]["metadata"]["annotations"] = her_snapshot(
        job_template["spec"]["template"]
    )
    job_template["spec"]["template"]["metadata"]["labels"]["eve"] = "forged"
    # Owned by the real CronJob, as the CronJob controller's Jobs are: bound to the report.
    owner = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": "weekly",
        "uid": cronjob["metadata"]["uid"],
        "controller": True,
    }
    forged = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "weekly-forged",
            "labels": job_template["metadata"]["labels"],
            "ownerReferences": [owner],
        },
        "spec": job_template["spec"],
    }
    refused_by_the_policy(lambda: batch.create_namespaced_job(reports.namespace, forged))
    # Past the policy: her own keys; the relay must still refuse the outside address.
    forged["metadata"]["labels"] = {"eve": "forged"}
    forged["spec"]["template"] = past_the_policy(job_template["spec"]["template"])
    forged["spec"]["template"]["metadata"]["labels"]["eve"] = "forged"
    forged["spec"].pop("selector", None)
    batch.create_namespaced_job(reports.namespace, forged)
    state = terminated(reports.core, reports.namespace, "eve=forged")
    result = json.loads(state.message.strip().splitlines()[-1])
    assert state.exit_code == 69, state.message
    assert "550" in result["error"] and "not a recipient in the admitted spec" in result["error"]
    assert OUTSIDE not in platform.recipients()


def test_a_plain_pod_with_the_cronjobs_relay_settings_mails_no_outside_address(
    installed: NodeCluster, reports: Reports, platform: PlatformRelay
) -> None:
    reports.apply("weekly", schedule="0 3 1 1 *", failurePolicy={"retries": 0})
    reports.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    eve = editor(installed, reports.namespace)
    cronjob = eve.sanitize_for_serialization(
        client.BatchV1Api(eve).read_namespaced_cron_job("weekly", reports.namespace)
    )
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "eve-mailer",
            "labels": {"eve": "plain"},
            "annotations": her_snapshot(template),
        },
        "spec": template["spec"],  # the relay env and the projected relay token included
    }
    core = client.CoreV1Api(eve)
    refused_by_the_policy(lambda: core.create_namespaced_pod(reports.namespace, pod))
    pod["metadata"] = {"name": "eve-mailer", **past_the_policy(template)["metadata"]}
    pod["metadata"]["labels"]["eve"] = "plain"
    pod["spec"] = past_the_policy(template)["spec"]
    core.create_namespaced_pod(reports.namespace, pod)
    state = terminated(reports.core, reports.namespace, "eve=plain")
    assert state.exit_code != 0, state.message
    assert "535" in state.message and "not controlled by a Job" in state.message, state.message
    assert OUTSIDE not in platform.recipients()
    assert all(ok for _, ok in platform.logins)  # nobody tried another login upstream
    relay_log = installed.kubectl(
        "-n", RELEASE_NAMESPACE, "logs", "-l", "app.kubernetes.io/component=relay", "--tail=-1"
    ).stdout
    assert "refused AUTH" in relay_log
    assert PASSWORD not in relay_log
    assert "Rotate the payment keys" not in relay_log  # no message body in the relay's log
