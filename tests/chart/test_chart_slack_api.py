"""The chart's relay.slackApiUrl: the Slack Web API base of the relay's channel front, set only
by the platform (tests point it at a loopback fake); https:// only."""

from __future__ import annotations

from typing import Any

from tests.support.chart_tools import CHART, helm, render


def relay_env(*values: str) -> dict[str, Any]:
    objects = render("demo", "tidings", set_values=values)
    (relay,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-relay")
    ]
    (container,) = relay["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_the_relay_gets_the_slack_api_base_only_when_set() -> None:
    env = relay_env("relay.httpPort=8025", "relay.slackApiUrl=https://slack.internal.example/api/")
    assert env["TIDINGS_SLACK_API_URL"] == "https://slack.internal.example/api/"
    assert "TIDINGS_SLACK_API_URL" not in relay_env("relay.httpPort=8025")  # slack.com


def test_a_plain_http_slack_api_base_is_refused() -> None:
    done = helm(
        "template", "demo", str(CHART), "--set", "relay.slackApiUrl=http://127.0.0.1:8080/api/"
    )
    assert done.returncode != 0 and "slackApiUrl" in done.stderr
