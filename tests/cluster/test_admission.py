"""The validating webhook in front of a real apiserver.

kopf runs in-process (KopfRunner) with only the admission handler, serving HTTPS on loopback
with a certificate from a CA generated here; a ValidatingWebhookConfiguration scoped to this
module's namespace points the apiserver at it with `clientConfig.url` and the CA bundle.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tests.support.admission_cases import BASE, INVALID, VALID, changed, example_specs

from tidings import models
from tidings.controller import admission
from tidings.controller.kube import Kube
from tidings.controller.settings import Settings
from tidings_dev.cluster import CertificateAuthority, free_port

pytestmark = pytest.mark.cluster

WEBHOOK_ONLY = next(c for c in INVALID if c.id == "schedule-sunday-as-7")
DENIED = f'admission webhook "{admission.WEBHOOK_ID}" denied the request'


def connection_info(kubeconfig: Path):
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


def wait_until_enforced(reports, timeout: float = 60) -> None:
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
    control_plane, kube, namespace: str, pki: Path, settings: Settings | None = None
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
    def disconnect(memo: kopf.Memo, **_) -> None:
        memo.kube.api.close()

    operator_settings = kopf.OperatorSettings()
    operator_settings.admission.server = kopf.WebhookServer(
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


@pytest.fixture(scope="module")
def webhook(control_plane, kube, reports, tmp_path_factory) -> Iterator[dict]:
    # A report the webhook would refuse, stored before the webhook exists: a report admitted
    # under older rules, as after an upgrade.
    reports.create("legacy", WEBHOOK_ONLY.spec)
    pki = tmp_path_factory.mktemp("webhook-pki")
    with serving_webhook(control_plane, kube, reports.namespace, pki) as configuration:
        wait_until_enforced(reports)
        yield configuration


def test_configuration_uses_loopback_url_and_fails_closed(webhook):
    (hook,) = webhook["webhooks"]
    assert hook["clientConfig"]["url"].startswith("https://127.0.0.1:")
    assert hook["clientConfig"]["url"].endswith(f"/{admission.WEBHOOK_ID}")
    assert hook["failurePolicy"] == "Fail"
    assert hook["rules"][0]["resources"] == ["scheduledreports"]  # not the status subresource


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_report_is_rejected_naming_the_field(webhook, reports, case):
    status, message = reports.rejection(case.id, case.spec)
    assert status == case.code, message
    assert case.path in message, message
    if not case.schema:
        # Only the webhook knows this rule: its verdict, with validate_spec's wording.
        assert message.startswith(f"{DENIED}: {models.KIND} is invalid: "), message
        assert case.rule in message, message


def test_enough_distinct_rules_are_rejected_with_422():
    rejected_422 = {(c.path, c.rule) for c in INVALID if c.code == 422}
    assert len(rejected_422) >= 40
    assert len([c for c in INVALID if not c.schema]) >= 30


@pytest.mark.parametrize("case", VALID + example_specs(), ids=lambda c: c.id)
def test_valid_report_is_accepted(webhook, reports, case):
    warnings = reports.create(case.id, case.spec)
    assert reports.get(case.id)["spec"]["title"] == case.spec["title"]
    if case.warning:
        assert any(case.warning in w for w in warnings), warnings
    else:
        assert warnings == []


def test_all_problems_listed_in_one_rejection(webhook, reports):
    spec = changed(
        {
            "schedule": "0 9 * * 7",
            "timeZone": "Europe/Berln",
            "recipients.to": ["ciso@example.com", "CISO <ciso@example.com>"],
            "delivery.subjectTemplate": "{name} {env}",
        }
    )
    status, message = reports.rejection("many-problems", spec)
    assert status == 422
    problems = message.split(f"{models.KIND} is invalid: ", 1)[1].split("; ")
    assert [p.split(":", 1)[0] for p in problems] == [
        "spec.schedule",
        "spec.timeZone",
        "spec.recipients.to[1]",
        "spec.delivery.subjectTemplate",
    ]


def test_updates_are_validated_too(webhook, reports):
    reports.create("to-be-broken", BASE)
    from kubernetes.client import ApiException

    with pytest.raises(ApiException) as exc:
        reports.api.patch_namespaced_custom_object(
            models.GROUP,
            models.VERSION,
            reports.namespace,
            models.PLURAL,
            "to-be-broken",
            {"spec": {"timeZone": "Mars/Olympus_Mons"}},
        )
    assert exc.value.status == 422 and "spec.timeZone" in exc.value.body
    assert reports.get("to-be-broken")["spec"]["timeZone"] == BASE["timeZone"]


def test_metadata_and_status_writes_pass_for_a_report_admitted_under_older_rules(webhook, reports):
    """Annotating (run-now, reactivate), finalizers and status writes must not be blocked by a
    spec the operator will mark Invalid anyway; a spec change is checked as usual."""
    from kubernetes.client import ApiException

    api, ns = reports.api, reports.namespace
    args = (models.GROUP, models.VERSION, ns, models.PLURAL, "legacy")
    api.patch_namespaced_custom_object(
        *args, {"metadata": {"annotations": {"tidings.dev/run-now": "1"}}}
    )
    api.patch_namespaced_custom_object_status(*args, {"status": {"phase": "Invalid"}})
    stored = reports.get("legacy")
    assert stored["metadata"]["annotations"]["tidings.dev/run-now"] == "1"
    assert stored["status"]["phase"] == "Invalid"
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_custom_object(*args, {"spec": {"title": "Still broken"}})
    assert exc.value.status == 422 and "spec.schedule" in exc.value.body


def test_kubectl_apply_shows_the_rejection_and_the_warning(control_plane, webhook, reports):
    def manifest(name: str, spec: dict) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": f"{models.GROUP}/{models.VERSION}",
                "kind": models.KIND,
                "metadata": {"name": name, "namespace": reports.namespace},
                "spec": spec,
            },
            allow_unicode=True,
        )

    bad = control_plane.kubectl(
        "apply", "-f", "-", input=manifest("typo", changed({"schedule": "0 9 * * 7"})), check=False
    )
    assert bad.returncode != 0
    assert f"{DENIED}: {models.KIND} is invalid: spec.schedule: day-of-week field" in bad.stderr

    warned = control_plane.kubectl(
        "apply",
        "-f",
        "-",
        input=manifest("no-date", changed({"delivery.subjectTemplate": "Weekly {name}"})),
    )
    assert "scheduledreport.tidings.dev/no-date created" in warned.stdout
    assert "Warning: spec.delivery.subjectTemplate: has no {date} placeholder" in warned.stderr
