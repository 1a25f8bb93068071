"""The validating webhook in front of a real apiserver, for the cluster tests: kopf in-process
(KopfRunner) with only the admission handler, serving HTTPS on loopback with a certificate from
a CA generated here, and a ValidatingWebhookConfiguration scoped to one namespace pointing the
apiserver at it with `clientConfig.url` and the CA bundle."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.support.admission_cases import INVALID

from tidings.controller import admission
from tidings.controller.kube import Kube
from tidings.controller.settings import Settings
from tidings_dev.cluster import CertificateAuthority, ControlPlane
from tidings_dev.procs import free_port

if TYPE_CHECKING:
    import kopf
    from kubernetes.client import ApiClient
    from tests.support.apiserver_reports import Reports

WEBHOOK_ONLY = next(c for c in INVALID if c.id == "schedule-sunday-as-7")
DENIED = f'admission webhook "{admission.WEBHOOK_ID}" denied the request'


def connection_info(kubeconfig: Path) -> kopf.ConnectionInfo:
    """kopf credentials for the admin kubeconfig of the test control plane."""
    import kopf
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"kopf's webhook server did not listen on 127.0.0.1:{port}")


def wait_until_enforced(reports: Reports, timeout: float = 60) -> None:
    """The apiserver picks up a new webhook configuration asynchronously: probe with a dry run
    until it answers with the webhook's verdict."""
    from kubernetes.client import ApiException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reports.create("probe", WEBHOOK_ONLY.spec, dry_run=True)
        except ApiException as exc:
            if DENIED in json.loads(exc.body)["message"]:
                return
            raise
        time.sleep(0.3)
    pytest.fail("the webhook configuration never took effect")


@contextlib.contextmanager
def serving_webhook(
    control_plane: ControlPlane,
    kube: ApiClient,
    namespace: str,
    pki: Path,
    settings: Settings | None = None,
) -> Iterator[dict]:
    """kopf in-process with only the admission handler, and a ValidatingWebhookConfiguration for
    `namespace` pointing at it; yields the configuration. The handler's permission check gets
    what the operator's startup gives it: an admin client and `settings` (default: defaults)."""
    import kopf
    from kopf.testing import KopfRunner
    from kubernetes import client

    ca = CertificateAuthority.create(pki, "tidings-webhook-test-ca")
    cert, key = ca.issue(pki, "webhook", "127.0.0.1", ip_addresses=("127.0.0.1",))
    port = free_port()

    registry = kopf.OperatorRegistry()
    admission.register(registry)
    credentials = connection_info(control_plane.kubeconfig)
    kopf.on.login(registry=registry)(lambda **_: credentials)

    @kopf.on.startup(registry=registry)
    def connect(memo: kopf.Memo, **_) -> None:
        memo.kube = Kube(control_plane.api_client())
        memo.settings = settings or Settings()

    @kopf.on.cleanup(registry=registry)
    async def disconnect(memo: kopf.Memo, **_) -> None:
        await memo.kube.close()

    operator_settings = kopf.OperatorSettings()
    operator_settings.admission.server = admission.LargeRequestWebhookServer(
        addr="127.0.0.1",
        port=port,
        host="127.0.0.1",
        certfile=str(cert),
        pkeyfile=str(key),
        cafile=str(ca.cert_path),
    )
    operator_settings.posting.enabled = False
    runner = KopfRunner(
        ["run", "--standalone", "--namespace", namespace],
        registry=registry,
        settings=operator_settings,
        timeout=60,
    )
    admission_api = client.AdmissionregistrationV1Api(kube)
    configuration = admission.webhook_configuration(
        f"tidings-test-{namespace}",
        {
            "url": f"https://127.0.0.1:{port}",
            "caBundle": base64.b64encode(ca.cert_path.read_bytes()).decode(),
        },
        namespace=namespace,
    )
    with runner:
        wait_for_port(port)
        admission_api.create_validating_webhook_configuration(configuration)
        try:
            yield configuration
        finally:
            admission_api.delete_validating_webhook_configuration(configuration["metadata"]["name"])
    assert runner.exit_code == 0, runner.output
