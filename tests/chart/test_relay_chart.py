"""The chart's delivery relay without a cluster: what it installs, that the platform login
reaches the relay pods only, and that operator and relay agree on port and audience."""

from __future__ import annotations

import dataclasses

import pytest
from tests.support.chart_tools import CHART, VALUES_ALL, container_env, find, helm, render

from tidings.controller import cronjob
from tidings.controller.settings_load import load_settings

LOGIN = ("smtp.credentialsSecret=platform-login", "smtp.host=mail.example", "smtp.tls=starttls")


def relay_container(objects: list[dict]) -> dict:
    deployment = find(objects, "Deployment", "rel-tidings-relay")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_the_relay_is_installed_by_default_with_its_service_and_budget() -> None:
    objects = render("rel", "tidings-system", set_values=LOGIN)
    deployment = find(objects, "Deployment", "rel-tidings-relay")
    service = find(objects, "Service", "rel-tidings-relay")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["replicas"] == 2
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "relay"
    operator = find(objects, "Deployment", "rel-tidings-operator")
    assert operator["spec"]["selector"]["matchLabels"] != service["spec"]["selector"]
    assert service["spec"]["ports"] == [{"name": "smtp", "port": 2525, "targetPort": "smtp"}]
    container = relay_container(objects)
    assert container["command"] == ["tidings", "relay"]
    assert container["ports"] == [{"name": "smtp", "containerPort": 2525}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["serviceAccountName"] == "rel-tidings-relay"
    assert find(objects, "PodDisruptionBudget", "rel-tidings-relay")["spec"]["minAvailable"] == 1


def test_the_platform_login_is_mounted_into_the_relay_only() -> None:
    objects = render("rel", "tidings-system", set_values=LOGIN)
    container = relay_container(objects)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["TIDINGS_SMTP_USERNAME"] == {
        "secretKeyRef": {"name": "platform-login", "key": "username"}
    }
    assert env["TIDINGS_SMTP_PASSWORD_FILE"] == "/etc/tidings/platform-login/password"
    (volume,) = [
        v
        for v in find(objects, "Deployment", "rel-tidings-relay")["spec"]["template"]["spec"][
            "volumes"
        ]
        if "secret" in v
    ]
    assert volume["secret"]["secretName"] == "platform-login"
    assert "optional" not in volume["secret"]
    # The operator gets no Secret name to hand on: report pods get the relay and a token.
    operator = container_env(objects)
    assert operator["TIDINGS_SMTP_CREDENTIALS_SECRET"] == ""
    literal = {k: v for k, v in operator.items() if isinstance(v, str)}
    settings = load_settings({**literal, "TIDINGS_OPERATOR_NAMESPACE": "tidings-system"})
    assert settings.relay_service == "rel-tidings-relay"
    report = {
        "metadata": {"name": "r", "namespace": "team-a", "uid": "u-1"},
        "spec": {"schedule": "0 9 * * 1", "timeZone": "UTC"},
    }
    resolved = dataclasses.replace(settings, relay_host="198.18.1.7")  # looked up at start-up
    pod = cronjob.desired_cronjob(report, resolved, suspend=False)["spec"]["jobTemplate"]
    spec = pod["spec"]["template"]["spec"]
    pod_env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert not any("secretKeyRef" in (e.get("valueFrom") or {}) for e in pod_env.values())
    assert pod_env["TIDINGS_SMTP_HOST"]["value"] == "198.18.1.7"
    assert pod_env["TIDINGS_SMTP_PORT"]["value"] == "2525"
    (token,) = [v for v in spec["volumes"] if v["name"] == "relay-token"]
    audience = token["projected"]["sources"][0]["serviceAccountToken"]["audience"]
    relay_env = {e["name"]: e.get("value") for e in relay_container(objects)["env"]}
    assert audience == relay_env["TIDINGS_RELAY_AUDIENCE"] == "tidings.dev/relay"


def test_operator_and_relay_agree_on_port_and_audience_when_changed() -> None:
    objects = render("rel", "tidings-system", VALUES_ALL)
    operator = container_env(objects)
    relay = {e["name"]: e.get("value") for e in relay_container(objects)["env"]}
    assert operator["TIDINGS_RELAY_PORT"] == relay["TIDINGS_RELAY_PORT"] == "2526"
    assert operator["TIDINGS_RELAY_AUDIENCE"] == relay["TIDINGS_RELAY_AUDIENCE"]
    assert relay["TIDINGS_NAMESPACES"] == "tidings-chart-team-a,tidings-chart-team-b"
    assert relay["TIDINGS_RELAY_MAX_BYTES"] == "20971520"
    assert find(objects, "Service", "rel-tidings-relay")["spec"]["ports"][0]["port"] == 2526


def test_relay_rbac_reads_only_what_binding_a_run_needs() -> None:
    objects = render("rel", "tidings-system")
    review = find(objects, "ClusterRole", "rel-tidings-relay-review")
    assert review["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    ]
    reads = find(objects, "ClusterRole", "rel-tidings-relay")
    assert all(rule["verbs"] == ["get"] for rule in reads["rules"])
    assert sorted(r for rule in reads["rules"] for r in rule["resources"]) == [
        "cronjobs",
        "jobs",
        "pods",
        "recipientgroups",  # @group recipients, expanded by the relay itself
        "scheduledreports",
    ]
    dedupe = find(objects, "Role", "rel-tidings-relay-dedupe")
    assert dedupe["metadata"]["namespace"] == "tidings-system"
    assert dedupe["rules"][0]["resources"] == ["configmaps"]
    lookup = find(objects, "Role", "rel-tidings-operator-relay")
    assert lookup["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["services"],
            "resourceNames": ["rel-tidings-relay"],
            "verbs": ["get"],
        }
    ]
    # With watchNamespaces the reads are bound in those namespaces only.
    scoped = render("rel", "tidings-system", VALUES_ALL)
    bindings = [
        o
        for o in scoped
        if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "rel-tidings-relay"
    ]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == [
        "tidings-chart-team-a",
        "tidings-chart-team-b",
    ]
    assert not [
        o
        for o in scoped
        if o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"] == "rel-tidings-relay"
    ]


def test_the_relay_listens_on_its_pod_address_and_may_use_the_nodes_network() -> None:
    container = relay_container(render("rel", "tidings-system"))
    (address,) = [e for e in container["env"] if e["name"] == "TIDINGS_RELAY_ADDRESS"]
    assert address["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    pod = find(render("rel", "x"), "Deployment", "rel-tidings-relay")["spec"]["template"]["spec"]
    assert "hostNetwork" not in pod
    host = render("rel", "x", set_values=("relay.hostNetwork=true", "relay.replicas=1"))
    pod = find(host, "Deployment", "rel-tidings-relay")["spec"]["template"]["spec"]
    assert (pod["hostNetwork"], pod["dnsPolicy"]) == (True, "ClusterFirstWithHostNet")
    strategy = find(host, "Deployment", "rel-tidings-relay")["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}  # the node port


def test_without_the_relay_pods_get_the_platform_relay_and_its_login_secret() -> None:
    objects = render("rel", "tidings-system", set_values=(*LOGIN, "relay.enabled=false"))
    assert not [o for o in objects if o["metadata"]["name"].startswith("rel-tidings-relay")]
    env = container_env(objects)
    assert env["TIDINGS_SMTP_CREDENTIALS_SECRET"] == "platform-login"
    assert env["TIDINGS_RELAY_SERVICE"] == ""


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("relay.port=0", "at '/relay/port'"),
        ("relay.replicas=0", "at '/relay/replicas'"),
        ("relay.audience=", "at '/relay/audience'"),
        ("relay.dedupeTTLSeconds=60", "at '/relay/dedupeTTLSeconds'"),
        ("relay.enabeld=true", "additional properties 'enabeld' not allowed"),
    ],
)
def test_schema_refuses_bad_relay_values(setting: str, message: str) -> None:
    done = helm("template", "t", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
