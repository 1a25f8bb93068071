"""The chart's owner-notice wiring without a cluster: the operator mounts its own relay token
for the relay's audience, the relay knows the operator's account, and the rate limit reaches
the operator as the setting it loads."""

from __future__ import annotations

from tests.support.chart_tools import find, render

from tidings.controller.settings_load import load_settings

LOGIN = ("smtp.credentialsSecret=platform-login", "smtp.host=mail.example", "smtp.tls=starttls")


def _pod(objects: list[dict], name: str) -> dict:
    return find(objects, "Deployment", name)["spec"]["template"]["spec"]


def _env(pod: dict) -> dict[str, str]:
    """The literal values, and the namespace the downward API would give."""
    (container,) = pod["containers"]
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return {**literal, "TIDINGS_OPERATOR_NAMESPACE": "tidings-system"}


def test_operator_token_audience_account_and_interval_agree() -> None:
    objects = render(
        "rel",
        "tidings-system",
        set_values=(
            *LOGIN,
            "relay.audience=relay.example/tidings",
            "operator.ownerNotices.minIntervalSeconds=900",
        ),
    )
    operator = _pod(objects, "rel-tidings-operator")
    (volume,) = [v for v in operator["volumes"] if v["name"] == "relay-token"]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "relay.example/tidings"
    (mount,) = [m for m in operator["containers"][0]["volumeMounts"] if m["name"] == "relay-token"]
    settings = load_settings(_env(operator))
    assert (
        settings.owner_notice_token_file
        == f"{mount['mountPath']}/{source['serviceAccountToken']['path']}"
    )
    assert settings.owner_notice_min_interval == 900
    relay = _env(_pod(objects, "rel-tidings-relay"))
    assert relay["TIDINGS_RELAY_OPERATOR_ACCOUNT"] == (
        f"tidings-system:{operator['serviceAccountName']}"
    )
    assert relay["TIDINGS_RELAY_AUDIENCE"] == "relay.example/tidings"


def test_the_default_interval_is_six_hours_and_no_relay_means_no_token() -> None:
    operator = _pod(render("rel", "tidings-system", set_values=LOGIN), "rel-tidings-operator")
    assert load_settings(_env(operator)).owner_notice_min_interval == 6 * 3600
    without = render("rel", "tidings-system", set_values=(*LOGIN, "relay.enabled=false"))
    assert all(v["name"] != "relay-token" for v in _pod(without, "rel-tidings-operator")["volumes"])
