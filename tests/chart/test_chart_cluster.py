"""The chart applied to the real control plane: every object accepted by server-side apply
(strict field validation), the CRDs established, the webhook configuration valid; the
operator's ServiceAccount can do what the operator needs and nothing beyond; the webhook TLS
I/O converges two replicas on one certificate and rotates it; and the real operator runs with
nothing but the chart's RBAC."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.support.chart_tools import VALUES_ALL, render
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    result_line,
    wait_for,
)
from tests.support.report_bodies import manifest

from tidings import contract, groups, models
from tidings.controller import admission, recipient_groups
from tidings.controller import cronjob as cj
from tidings.controller import webhook_tls as tls
from tidings.controller.webhook_tls_store import WebhookTLSStore
from tidings_dev.cluster import ControlPlane
from tidings_dev.procs import free_port

pytestmark = pytest.mark.cluster

CERT_MANAGER_CRDS = Path(__file__).with_name("cert-manager-crds-minimal.yaml")
PROMETHEUS_OPERATOR_CRDS = Path(__file__).with_name("prometheus-operator-crds-minimal.yaml")


def apply(plane: ControlPlane, objects: list[dict[str, Any]]) -> None:
    """Server-side apply, CRDs first (then wait until they are served), as `helm install`
    does. CRDs are applied with --force-conflicts: other tests may have created the peering
    CRDs with another field manager, and a field-ownership conflict says nothing about
    validity."""
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    if crds:
        done = plane.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-",
            input=yaml.safe_dump_all(crds), check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        names = [f"crd/{c['metadata']['name']}" for c in crds]
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    done = plane.kubectl(
        "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(rest), check=False
    )
    assert done.returncode == 0, done.stderr
    listed = plane.kubectl("get", "-f", "-", "-o", "name", input=yaml.safe_dump_all(rest))
    assert len(listed.stdout.split()) == len(rest)


def remove_cluster_scoped(plane: ControlPlane, objects: list[dict[str, Any]]) -> None:
    """Cluster-scoped objects outlive the test namespaces; CRDs stay (other tests use them)."""
    for obj in objects:
        if "namespace" not in obj["metadata"] and obj["kind"] != "CustomResourceDefinition":
            plane.kubectl(
                "delete", obj["kind"], obj["metadata"]["name"], "--ignore-not-found", check=False
            )


@dataclass
class Release:
    name: str
    namespace: str
    objects: list[dict[str, Any]]

    @property
    def service_account(self) -> str:
        return f"{self.name}-tidings"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def named(self, kind: str) -> str:
        (obj,) = (o for o in self.objects if o["kind"] == kind)
        return obj["metadata"]["name"]

    @property
    def tls_secret(self) -> str:
        return f"{self.name}-tidings-webhook-tls"

    @property
    def webhook_service(self) -> str:
        return f"{self.name}-tidings-webhook"


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, kube: client.ApiClient) -> Iterator[Release]:
    """The chart with default values, installed in its own namespace. The webhook is scoped
    to a label no namespace carries: there is no kubelet to run the operator pod behind its
    Service, and failurePolicy Fail would otherwise refuse every report other tests create."""
    suffix = uuid.uuid4().hex[:5]
    name, namespace = f"rel{suffix}", f"tidings-system-{suffix}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    objects = render(
        name,
        namespace,
        set_values=(f"webhook.namespaceSelector.matchLabels.tidings-chart-test=none-{suffix}",),
    )
    try:
        apply(control_plane, objects)
        yield Release(name, namespace, objects)
    finally:
        remove_cluster_scoped(control_plane, objects)
        core.delete_namespace(namespace)


def test_default_install_is_accepted(
    control_plane: ControlPlane, kube: client.ApiClient, release: Release
) -> None:
    kinds = {o["kind"] for o in release.objects}
    assert {
        "CustomResourceDefinition", "Deployment", "ServiceAccount", "ClusterRole",
        "ClusterRoleBinding", "Role", "RoleBinding", "Service",
        "ValidatingWebhookConfiguration", "ClusterKopfPeering", "PodDisruptionBudget",
    } <= kinds  # fmt: skip
    crds = client.ApiextensionsV1Api(kube)
    for crd in (
        "scheduledreports.tidings.dev",
        "recipientgroups.tidings.dev",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    ):
        conditions = crds.read_custom_resource_definition(crd).status.conditions
        assert any(c.type == "Established" and c.status == "True" for c in conditions), crd
    config = client.AdmissionregistrationV1Api(kube).read_validating_webhook_configuration(
        release.named("ValidatingWebhookConfiguration")
    )
    webhook, connect, group_hook = config.webhooks
    assert group_hook.name == recipient_groups.GROUP_WEBHOOK_ID
    assert group_hook.rules[0].resources == ["recipientgroups"]
    assert group_hook.client_config.service.path == f"/{recipient_groups.GROUP_WEBHOOK_ID}"
    assert connect.name == admission.CONNECT_WEBHOOK_ID
    assert webhook.name == admission.WEBHOOK_ID
    assert webhook.client_config.service.path == f"/{admission.WEBHOOK_ID}"
    assert webhook.client_config.service.name == release.webhook_service
    assert webhook.failure_policy == "Fail"
    deployment = client.AppsV1Api(kube).read_namespaced_deployment(
        f"{release.name}-tidings-operator", release.namespace
    )
    assert deployment.spec.template.spec.service_account_name == release.service_account


def test_every_option_install_is_accepted(
    control_plane: ControlPlane, kube: client.ApiClient
) -> None:
    suffix = uuid.uuid4().hex[:5]
    namespace = f"tidings-all-{suffix}"
    core = client.CoreV1Api(kube)
    watched = yaml.safe_load(VALUES_ALL.read_text())["operator"]["watchNamespaces"]
    for ns in (namespace, *watched):
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        except ApiException as exc:
            if exc.status != 409:
                raise
    objects = render(f"all{suffix}", namespace, VALUES_ALL)
    crds = [
        *yaml.safe_load_all(CERT_MANAGER_CRDS.read_text()),
        *yaml.safe_load_all(PROMETHEUS_OPERATOR_CRDS.read_text()),
    ]
    try:
        apply(control_plane, crds + objects)
        kinds = [o["kind"] for o in objects]
        monitoring = ("ServiceMonitor", "PrometheusRule")
        for kind in (
            "Certificate",
            "Issuer",
            "KopfPeering",
            "RoleBinding",
            "Deployment",
            *monitoring,
        ):
            assert kind in kinds
        assert kinds.count("KopfPeering") == len(watched)
        (config,) = (o for o in objects if o["kind"] == "ValidatingWebhookConfiguration")
        live = client.AdmissionregistrationV1Api(kube).read_validating_webhook_configuration(
            config["metadata"]["name"]
        )
        assert live.metadata.annotations["cert-manager.io/inject-ca-from"] == (
            f"{namespace}/all{suffix}-tidings-webhook"
        )
    finally:
        remove_cluster_scoped(control_plane, objects)
        core.delete_namespace(namespace)


def can_i(plane: ControlPlane, user: str, verb: str, resource: str, *where: str) -> bool:
    done = plane.kubectl("auth", "can-i", verb, resource, f"--as={user}", *where, check=False)
    assert done.stdout.strip() in ("yes", "no"), done.stderr
    return done.stdout.strip() == "yes"


def test_service_account_can_do_what_the_operator_needs(
    control_plane: ControlPlane, release: Release
) -> None:
    team = ("-n", "any-team")
    own = ("-n", release.namespace)
    vwc = release.named("ValidatingWebhookConfiguration")
    needed = [
        ("get", "scheduledreports.tidings.dev", *team),
        ("list", "scheduledreports.tidings.dev", "-A"),
        ("watch", "scheduledreports.tidings.dev", "-A"),
        ("patch", "scheduledreports.tidings.dev", "--subresource=status", *team),
        ("update", "scheduledreports.tidings.dev", "--subresource=finalizers", *team),
        *((v, "cronjobs.batch", *team) for v in ("get", "list", "watch", "create", "patch")),
        *((v, "jobs.batch", *team) for v in ("get", "list", "watch", "create", "patch")),
        ("list", "pods", *team),
        ("create", "events", *team),
        # @group recipients: the groups, and each report's tidings-recipients-REPORT ConfigMap.
        *((v, "recipientgroups.tidings.dev", *team) for v in ("get", "list", "watch")),
        ("list", "recipientgroups.tidings.dev", "-A"),
        *((v, "configmaps", *team) for v in ("get", "create", "patch")),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        *((v, "namespaces") for v in ("get", "list", "watch")),
        ("create", "subjectaccessreviews.authorization.k8s.io"),
        *((v, "clusterkopfpeerings.kopf.dev") for v in ("get", "list", "watch", "patch")),
        *((v, f"validatingwebhookconfigurations/{vwc}") for v in ("get", "patch")),
        ("create", "secrets", *own),
        *((v, f"secrets/{release.tls_secret}", *own) for v in ("get", "update")),
    ]
    refused = [c for c in needed if not can_i(control_plane, release.user, *c)]
    assert not refused, f"the operator's ServiceAccount lacks {refused}"


def test_service_account_can_do_nothing_beyond(
    control_plane: ControlPlane, release: Release
) -> None:
    team = ("-n", "any-team")
    own = ("-n", release.namespace)
    beyond = [
        ("list", "secrets", "-A"),
        ("get", "secrets", *team),
        ("get", "secrets/some-other-secret", *own),
        ("list", "secrets", *own),
        ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "pods", *team),
        ("patch", "scheduledreports.tidings.dev", *team),  # spec is the user's
        ("delete", "scheduledreports.tidings.dev", *team),
        ("delete", "cronjobs.batch", *team),  # garbage collection deletes, not the operator
        ("delete", "jobs.batch", *team),
        *((v, "configmaps", *team) for v in ("list", "watch", "delete", "update")),
        *((v, "recipientgroups.tidings.dev", *team) for v in ("create", "patch", "delete")),
        ("create", "mutatingadmissionpolicies.admissionregistration.k8s.io"),
        ("patch", "validatingwebhookconfigurations/someone-elses-webhook"),
        ("create", "validatingwebhookconfigurations"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ("escalate", "clusterroles.rbac.authorization.k8s.io"),
        ("impersonate", "users"),
        ("update", "deployments.apps", *own),
        ("create", "serviceaccounts", "--subresource=token", *own),
    ]
    granted = [c for c in beyond if can_i(control_plane, release.user, *c)]
    assert not granted, f"the operator's ServiceAccount may also {granted}"


class ServiceConnection(http.client.HTTPSConnection):
    """HTTPS to a loopback port, verifying the certificate for a Service's DNS name (what the
    apiserver checks when it calls the webhook)."""

    def __init__(self, port: int, server_name: str, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, timeout=30)
        self.server_name, self.tls = server_name, context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.server_name)


def post_review(
    port: int, server_name: str, context: ssl.SSLContext, review: dict[str, Any]
) -> dict[str, Any]:
    connection = ServiceConnection(port, server_name, context)
    try:
        connection.request(
            "POST",
            f"/{admission.WEBHOOK_ID}",
            body=json.dumps(review),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        assert response.status == 200, response.read()
        return json.loads(response.read())
    finally:
        connection.close()


def service_account_kubeconfig(plane: ControlPlane, release: Release, path: Path) -> Path:
    """A kubeconfig with a TokenRequest token for the release's ServiceAccount."""
    token = plane.kubectl(
        "create", "token", release.service_account, "-n", release.namespace, "--duration=1h"
    ).stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": plane.server,
                    "certificate-authority": str(plane.pki_dir / "ca.crt"),
                },
            }
        ],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "test", "user": "operator"}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def stores(release: Release, api: client.ApiClient, root: Path) -> list[WebhookTLSStore]:
    """Two replicas' stores: same Secret and webhook configuration, own local directories."""
    return [
        WebhookTLSStore(
            api=api,
            namespace=release.namespace,
            secret_name=release.tls_secret,
            service=release.webhook_service,
            configuration=release.named("ValidatingWebhookConfiguration"),
            cert_dir=root / replica,
        )
        for replica in ("a", "b")
    ]


def test_tls_store_converges_replicas_and_rotates(
    control_plane: ControlPlane, kube: client.ApiClient, release: Release, tmp_path: Path
) -> None:
    core = client.CoreV1Api(kube)
    try:
        core.delete_namespaced_secret(release.tls_secret, release.namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
    admission_api = client.AdmissionregistrationV1Api(kube)
    vwc = release.named("ValidatingWebhookConfiguration")

    def ca_bundle() -> bytes:
        config = admission_api.read_validating_webhook_configuration(vwc)
        return base64.b64decode(config.webhooks[0].client_config.ca_bundle or "")

    def secret() -> client.V1Secret:
        return core.read_namespaced_secret(release.tls_secret, release.namespace)

    # As the operator: with the ServiceAccount's own token, so the chart's RBAC is what allows it.
    kubeconfig = service_account_kubeconfig(control_plane, release, tmp_path / "sa.kubeconfig")
    from kubernetes import config as kube_config

    api = kube_config.new_client_from_config(config_file=str(kubeconfig))
    first, second = stores(release, api, tmp_path)
    now = datetime.now(UTC)

    assert first.ensure(now) is True
    issued = secret()
    assert issued.type == "kubernetes.io/tls"
    assert ca_bundle() == base64.b64decode(issued.data["ca.crt"])
    assert first.cert_file.read_bytes() == base64.b64decode(issued.data["tls.crt"])

    assert second.ensure(now) is True  # the second replica reuses the Secret as it is
    assert secret().metadata.resource_version == issued.metadata.resource_version
    assert second.cert_file.read_bytes() == first.cert_file.read_bytes()

    near_expiry = now + tls.CERT_VALIDITY - timedelta(days=10)
    assert second.ensure(near_expiry) is True
    rotated = secret()
    assert rotated.metadata.resource_version != issued.metadata.resource_version
    assert rotated.data["tls.crt"] != issued.data["tls.crt"]
    cas = x509.load_pem_x509_certificates(ca_bundle())
    old_ca = x509.load_pem_x509_certificates(base64.b64decode(issued.data["ca.crt"]))[0]
    assert len(cas) == 2 and cas[1] == old_ca  # replicas still on the old cert stay trusted

    first.ensure(near_expiry)  # the other replica picks the rotated certificate up
    assert secret().metadata.resource_version == rotated.metadata.resource_version
    assert first.cert_file.read_bytes() == second.cert_file.read_bytes()
    assert first.cert_file.read_bytes() == base64.b64decode(rotated.data["tls.crt"])
    api.close()


def test_operator_runs_with_only_the_charts_rbac(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    release: Release,
    namespace: str,
    tmp_path: Path,
) -> None:
    kubeconfig = service_account_kubeconfig(control_plane, release, tmp_path / "sa.kubeconfig")
    webhook_port = free_port()
    operator = OperatorProcess(
        kubeconfig,
        namespace,
        tmp_path / "operator.log",
        {
            "TIDINGS_WEBHOOK_PORT": str(webhook_port),
            "TIDINGS_WEBHOOK_TLS_SECRET": release.tls_secret,
            "TIDINGS_WEBHOOK_SERVICE": release.webhook_service,
            "TIDINGS_WEBHOOK_CONFIGURATION": release.named("ValidatingWebhookConfiguration"),
            "TIDINGS_OPERATOR_NAMESPACE": release.namespace,
        },
    )
    operator.start()
    try:
        cluster = Cluster(kube, namespace)
        cluster.create_report(manifest("weekly"))
        cronjob = wait_for("the CronJob", lambda: cluster.cronjob(cj.cronjob_name("weekly")))
        assert cronjob["spec"]["schedule"] == "0 9 * * 1"
        cluster.wait_status("weekly", "phase Active", lambda s: s.get("phase") == "Active")
        # A run: run-now Job, the finished pod read, the outcome in status, an Event posted.
        cluster.annotate("weekly", **{contract.RUN_NOW_ANNOTATION: "chart-rbac"})
        job = cj.run_now_job_name("weekly", "chart-rbac")
        StandInKubelet(cluster).run(job, 0, result_line(True))
        cluster.wait_status("weekly", "the run recorded", lambda s: s.get("lastSentAt"))
        assert wait_for("the Delivered event", lambda: cluster.events("Delivered", "weekly"))

        # @group recipients: the group watched, the report's ConfigMap written and refreshed.
        group_args = (models.GROUP, models.VERSION, namespace, models.GROUP_PLURAL)
        cluster.custom.create_namespaced_custom_object(
            *group_args,
            {
                "apiVersion": f"{models.GROUP}/{models.VERSION}",
                "kind": models.GROUP_KIND,
                "metadata": {"name": "leads"},
                "spec": {"addresses": ["lead@example.com"]},
            },
        )
        cluster.create_report(manifest("grouped", recipients={"to": ["@leads"]}))

        def members() -> str:
            name = groups.configmap_name("grouped")
            try:
                found = cluster.core.read_namespaced_config_map(name, namespace)
            except ApiException:
                return ""
            return (found.data or {}).get(groups.CONFIGMAP_KEY, "")

        wait_for("the recipients ConfigMap", lambda: "lead@example.com" in members())
        cluster.custom.patch_namespaced_custom_object(
            *group_args, "leads", {"spec": {"addresses": ["new-lead@example.com"]}}
        )
        wait_for("the ConfigMap to follow the group", lambda: "new-lead@" in members())

        # The webhook answers over TLS with the Secret's certificate, for the Service's name.
        stored = client.CoreV1Api(kube).read_namespaced_secret(
            release.tls_secret, release.namespace
        )
        context = ssl.create_default_context(
            cadata=base64.b64decode(stored.data["ca.crt"]).decode()
        )
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "1",
                "kind": {"group": "tidings.dev", "version": "v1alpha1", "kind": "ScheduledReport"},
                "resource": {
                    "group": "tidings.dev",
                    "version": "v1alpha1",
                    "resource": "scheduledreports",
                },
                "operation": "CREATE",
                "namespace": namespace,
                "name": "bad",
                "userInfo": {"username": "admin", "groups": ["system:masters"]},
                "object": {
                    **manifest("bad"),
                    "spec": {**manifest("bad")["spec"], "timeZone": "Mars/Olympus"},
                },
                "dryRun": False,
            },
        }
        server_name = f"{release.webhook_service}.{release.namespace}.svc"
        answer = post_review(webhook_port, server_name, context, review)
        assert answer["response"]["allowed"] is False
        assert "timeZone" in answer["response"]["status"]["message"]
    finally:
        operator.stop()
    log = operator.log_path.read_text()
    assert "Forbidden" not in log and " 403" not in log, operator.log_tail()
