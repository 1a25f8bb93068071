"""The Helm chart without a cluster: lint, schema refusals, and agreement with the sources it
copies (the CRD, the webhook shape, every operator setting, the docs table)."""

from __future__ import annotations

import pytest
import yaml
from tests.support.chart_tools import (
    CHART,
    VALUES_ALL,
    container_env,
    find,
    helm,
    render,
    values_table,
)

from tidings import crdgen
from tidings.controller import admission, cronjob, slot_guard
from tidings.controller.settings import Settings, SettingsError, env_table
from tidings.controller.settings_load import load_settings
from tidings_dev.cluster import REPO_ROOT


@pytest.mark.parametrize("values", [(), ("-f", str(VALUES_ALL))], ids=["default", "all-options"])
def test_helm_lint_passes(values: tuple[str, ...]) -> None:
    done = helm("lint", "--strict", str(CHART), *values)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("operator.replicas=two", "at '/operator/replicas': got string, want integer"),
        ("smtp.tls=ssl", "at '/smtp/tls': value must be one of 'none', 'starttls', 'tls'"),
        ("smtp.port=70000", "at '/smtp/port': maximum"),
        ("renderer.resources.limits.memory=1GB", "at '/renderer/resources/limits/memory'"),
        ("operator.watchNamespaces[0]=Team_A", "at '/operator/watchNamespaces/0'"),
        ("webhook.certManager.enabeld=true", "additional properties 'enabeld' not allowed"),
        ("smtp.from=not-an-address", "at '/smtp/from'"),
    ],
)
def test_schema_refuses_bad_values_naming_the_field(setting: str, message: str) -> None:
    done = helm("template", "t", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_template_refuses_several_standalone_replicas() -> None:
    done = helm("template", "t", str(CHART), "--set", "operator.peering.enabled=false")
    assert done.returncode != 0
    assert "operator.replicas > 1 needs operator.peering.enabled" in done.stderr


def test_chart_crd_is_the_generated_crd() -> None:
    chart_copy = (CHART / "crds" / "scheduledreports.tidings.dev.yaml").read_text()
    assert chart_copy == (REPO_ROOT / "crds" / "scheduledreports.tidings.dev.yaml").read_text(), (
        "charts/tidings/crds differs from crds/: cp crds/*.yaml charts/tidings/crds/"
    )
    assert chart_copy == crdgen.crd_yaml()
    delivery_copy = (CHART / "crds" / "reportdeliveries.tidings.dev.yaml").read_text()
    assert delivery_copy == (REPO_ROOT / "crds" / "reportdeliveries.tidings.dev.yaml").read_text()
    assert delivery_copy == crdgen.crd_yaml("ReportDelivery")


def test_peering_crds_are_the_ones_kopf_uses() -> None:
    from kopf._cogs.structs import references  # the selectors kopf looks peering up with

    crds = list(yaml.safe_load_all((CHART / "crds" / "kopf-peerings.yaml").read_text()))
    served = {(c["spec"]["group"], c["spec"]["names"]["plural"], c["spec"]["scope"]) for c in crds}
    for selector, scope in (
        (references.CLUSTER_PEERINGS_K, "Cluster"),
        (references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ):
        assert (selector.group, selector.any_name, scope) in served


def test_webhook_is_the_shape_admission_defines() -> None:
    objects = render("rel", "tidings-system")
    config = find(objects, "ValidatingWebhookConfiguration")
    service = {"name": "rel-tidings-webhook", "namespace": "tidings-system", "port": 443}
    expected = admission.webhook_configuration(
        config["metadata"]["name"], {"service": service}, operator_namespace="tidings-system"
    )
    assert config["webhooks"] == expected["webhooks"]
    # The operator serves the path on the port the Service targets.
    env = container_env(objects)
    assert env["TIDINGS_WEBHOOK_PORT"] == "8443"
    assert env["TIDINGS_WEBHOOK_CONFIGURATION"] == config["metadata"]["name"]
    assert env["TIDINGS_WEBHOOK_SERVICE"] == service["name"]


def test_slot_webhook_is_the_shape_slot_guard_defines() -> None:
    objects = render("rel", "tidings-system")
    config = find(objects, "MutatingWebhookConfiguration")
    validating = find(objects, "ValidatingWebhookConfiguration")
    # One name: the caBundle the operator publishes reaches both configurations.
    assert config["metadata"]["name"] == validating["metadata"]["name"]
    service = {"name": "rel-tidings-webhook", "namespace": "tidings-system", "port": 443}
    expected = slot_guard.webhook_configuration(config["metadata"]["name"], {"service": service})
    assert config["webhooks"] == expected["webhooks"]


def test_run_finalizer_policy_is_the_one_the_operator_defines() -> None:
    objects = render("rel", "tidings-system")
    policy = find(objects, "MutatingAdmissionPolicy")
    binding = find(objects, "MutatingAdmissionPolicyBinding")
    expected_policy, expected_binding = cronjob.finalizer_policy(policy["metadata"]["name"])
    assert policy["spec"] == expected_policy["spec"]
    assert binding["spec"] == expected_binding["spec"]


def test_every_operator_setting_is_set_by_the_chart_and_accepted() -> None:
    default = container_env(render("rel", "tidings-system"))
    everything = container_env(render("rel", "tidings-system", VALUES_ALL))
    chart_sets = set(default) | set(everything)
    missing = [env for env, _, _ in env_table() if env not in chart_sets]
    assert not missing, f"the chart never sets {missing}"
    for env in (default, everything):
        literal = {k: v for k, v in env.items() if isinstance(v, str)}
        literal["TIDINGS_OPERATOR_NAMESPACE"] = "tidings-system"  # the downward API's value
        try:
            load_settings(literal)
        except SettingsError as exc:
            pytest.fail(f"the chart renders a setting the operator refuses: {exc}")
    settings = load_settings({k: v for k, v in everything.items() if isinstance(v, str)})
    assert settings.namespaces == ("tidings-chart-team-a", "tidings-chart-team-b")
    assert (settings.smtp_port, settings.smtp_tls) == (587, "starttls")
    assert settings.webhook_cert_file == "/etc/tidings/webhook-tls/tls.crt"
    assert not settings.webhook_tls_secret  # cert-manager's Secret, not the operator's
    assert settings.renderer_image == "registry.example.com/tidings/renderer:0.1.0-test"
    assert settings.metrics_port == 9191
    assert len(Settings.__dataclass_fields__) == len(env_table())


def test_the_relay_is_what_smtp_values_say() -> None:
    env = container_env(
        render("demo", "tidings", set_values=("smtp.host=relay.example", "smtp.port=2525"))
    )
    assert (env["TIDINGS_SMTP_HOST"], env["TIDINGS_SMTP_PORT"]) == ("relay.example", "2525")
    assert container_env(render("demo", "tidings"))["TIDINGS_SMTP_HOST"] == ""


def test_operator_pod_is_locked_down() -> None:
    deployment = find(render("rel", "tidings-system"), "Deployment", "rel-tidings-operator")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["command"] == ["tidings", "operator"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_rbac_has_no_wildcards_and_no_cluster_wide_secrets() -> None:
    for values in ((), (VALUES_ALL,)):
        for role in render("rel", "tidings-system", *values):
            if role["kind"] not in ("ClusterRole", "Role"):
                continue
            for rule in role.get("rules") or ():
                assert "*" not in rule["verbs"] + rule["resources"], role["metadata"]["name"]
                if "secrets" in rule["resources"]:
                    assert role["kind"] == "Role", "Secrets only in the release namespace"


def test_docs_table_is_the_schema() -> None:
    text = (REPO_ROOT / "docs" / "helm.md").read_text()
    table = values_table()
    assert table in text, (
        "docs/helm.md's value table is out of date; regenerate it with "
        "`python3 tests/support/chart_tools.py`:\n" + table
    )


def test_branding_values_travel_to_the_renderer_pod() -> None:
    """values -> operator env -> Settings -> the CronJob's pod env (the run contract)."""
    import yaml

    from tidings.controller import cronjob

    values = yaml.safe_load(VALUES_ALL.read_text())
    env = container_env(render("rel", "tidings-system", VALUES_ALL))
    literal = {k: v for k, v in env.items() if isinstance(v, str)}
    settings = load_settings(literal)  # no operator-managed TLS in these values
    report = {
        "metadata": {"name": "r", "namespace": "team-a", "uid": "u-1"},
        "spec": {"schedule": "0 9 * * 1", "timeZone": "UTC"},
    }
    pod = cronjob.desired_cronjob(report, settings, suspend=False)["spec"]["jobTemplate"]
    container = pod["spec"]["template"]["spec"]["containers"][0]
    pod_env = {e["name"]: e.get("value") for e in container["env"]}
    brand = values["branding"]
    assert pod_env["TIDINGS_BRAND_LOGO"] == brand["logo"]
    assert pod_env["TIDINGS_BRAND_ACCENT_COLOR"] == brand["accentColor"]
    assert pod_env["TIDINGS_BRAND_FOOTER_TEXT"] == brand["footerText"]
    assert pod_env["TIDINGS_MAIL_FROM_NAME"] == brand["fromName"]
    assert pod_env["TIDINGS_MAIL_REPLY_TO"] == brand["replyTo"]
    assert pod_env["TIDINGS_MAX_PDF_ROWS"] == str(values["renderer"]["maxPdfRows"])
    assert pod_env["TIDINGS_SMTP_CA_PEM"] == values["smtp"]["caCert"].strip()
    # Source limits travel too; they are not branding, so no namespace ConfigMap key sets them.
    assert pod_env["TIDINGS_HTTP_DENIED_NETWORKS"] == "169.254.0.0/16,10.96.0.0/12"
    assert pod_env["TIDINGS_MAX_SOURCE_BYTES"] == "67108864"
    assert pod_env["TIDINGS_MAX_SOURCE_ROWS"] == "500000"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["branding"] == "/etc/tidings/branding"
    # Unset values stay out of the pod (the renderer then uses its built-in defaults).
    literal = {k: v for k, v in container_env(render("rel", "x")).items() if isinstance(v, str)}
    default = load_settings({**literal, "TIDINGS_OPERATOR_NAMESPACE": "x"})  # the downward API
    plain = cronjob.desired_cronjob(report, default, suspend=False)["spec"]["jobTemplate"]
    names = {e["name"] for e in plain["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not names & {
        "TIDINGS_BRAND_LOGO",
        "TIDINGS_MAIL_REPLY_TO",
        "TIDINGS_SMTP_CA_PEM",
        "TIDINGS_HTTP_DENIED_NETWORKS",
        "TIDINGS_MAX_SOURCE_BYTES",
        "TIDINGS_MAX_SOURCE_ROWS",
    }
    assert "TIDINGS_MAX_PDF_ROWS" in names  # the chart's default, 500
