"""The chart's channel values (issue 25): relay.httpPort opens the relay's channel front (its
env, container port and Service port) and tells the operator, which hands it to report pods;
allowedChannelHosts reaches the operator's admission."""

from __future__ import annotations

from tests.support.chart_tools import container_env, find, render

from tidings.controller.settings_load import load_settings

LOGIN = ("smtp.host=mail.example",)


def operator_settings(objects: list[dict]):
    """The operator's settings as its literal env gives them (valueFrom entries, such as its
    own namespace, filled in as the kubelet would)."""
    literal = {k: v for k, v in container_env(objects).items() if isinstance(v, str)}
    return load_settings({**literal, "TIDINGS_OPERATOR_NAMESPACE": "tidings-system"})


def relay_parts(objects: list[dict]) -> tuple[dict, dict[str, str], dict]:
    deployment = find(objects, "Deployment", "rel-tidings-relay")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    return container, env, find(objects, "Service", "rel-tidings-relay")


def test_the_channel_front_is_off_by_default() -> None:
    objects = render("rel", "tidings-system", set_values=LOGIN)
    container, env, service = relay_parts(objects)
    assert "TIDINGS_RELAY_HTTP_PORT" not in env
    assert [p["name"] for p in container["ports"]] == ["smtp"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["smtp"]
    assert operator_settings(objects).relay_http_port == 0


def test_relay_http_port_opens_the_front_and_the_operator_knows_it() -> None:
    values = (*LOGIN, "relay.httpPort=8025", "renderer.httpDeniedNetworks={10.0.0.0/8}")
    objects = render("rel", "tidings-system", set_values=values)
    container, env, service = relay_parts(objects)
    assert env["TIDINGS_RELAY_HTTP_PORT"] == "8025"
    assert env["TIDINGS_HTTP_DENIED_NETWORKS"] == "10.0.0.0/8"  # the guard the pods have
    assert {"name": "channels", "containerPort": 8025} in container["ports"]
    assert {"name": "channels", "port": 8025, "targetPort": "channels"} in service["spec"]["ports"]
    assert operator_settings(objects).relay_http_port == 8025


def test_allowed_channel_hosts_reach_the_operator() -> None:
    values = (*LOGIN, "allowedChannelHosts={hooks.example.com,.chat.example.org}")
    settings = operator_settings(render("rel", "tidings-system", set_values=values))
    assert settings.allowed_channel_hosts == ("hooks.example.com", ".chat.example.org")
