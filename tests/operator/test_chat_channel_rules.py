"""Slack and Teams channels in the operator and the relay, pure: their Secrets mounted as
<index>/key and checked like every reference; a new Slack channel or Teams host outside the
allowed channel hosts needs the schedule verb; the relay's reading of the admitted spec; the
Teams workflow URL held to its admitted host; the Slack envelope the pod hands the relay."""

from __future__ import annotations

import pytest
from tests.support.report_bodies import report_body

from tidings.controller import cronjob, permissions
from tidings.controller.settings import Settings
from tidings.relay import http_forward, policy
from tidings.renderer.channels import Summary, slack, teams
from tidings.renderer.mail import Attachment

HOOK = {"url": "https://hooks.example.com/t", "signingSecretRef": {"name": "hk", "key": "k"}}
SLACK = {"slack": {"channel": "C0123ABCD", "tokenSecretRef": {"name": "bot", "key": "token"}}}
TEAMS = {
    "teams": {
        "host": "prod-12.westeurope.logic.azure.com",
        "urlSecretRef": {"name": "flow", "key": "url"},
    }
}
RUN = policy.Run("team-payments", "payments-weekly", "uid", "job", "", "schedule", False)


def spec(*channels: dict) -> dict:
    return {"delivery": {"channels": list(channels)}}


def test_each_channels_secret_is_mounted_at_its_index() -> None:
    report = report_body(delivery={"channels": [{"webhook": HOOK}, SLACK, TEAMS]})
    cj = cronjob.desired_cronjob(report, Settings(), suspend=False)
    volumes = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    (projected,) = [v for v in volumes if v["name"] == "channels"]
    assert [s["secret"] for s in projected["projected"]["sources"]] == [
        {"name": "hk", "items": [{"key": "k", "path": "0/key"}]},
        {"name": "bot", "items": [{"key": "token", "path": "1/key"}]},
        {"name": "flow", "items": [{"key": "url", "path": "2/key"}]},
    ]


def test_their_secrets_are_references_the_author_must_be_able_to_get() -> None:
    found = permissions.references(spec(SLACK, TEAMS))
    assert [(r.path, r.resource, r.name) for r in found] == [
        ("spec.delivery.channels[0].slack.tokenSecretRef", "secrets", "bot"),
        ("spec.delivery.channels[1].teams.urlSecretRef", "secrets", "flow"),
    ]


def test_a_new_slack_channel_or_teams_host_needs_the_verb_unless_allowed() -> None:
    needs = permissions.channel_needs(None, spec(SLACK, TEAMS), ())
    assert [(n.path, n.change) for n in needs] == [
        (
            "spec.delivery.channels[0].slack.channel",
            'adding the external destination "slack:C0123ABCD" (allowed hosts: none)',
        ),
        (
            "spec.delivery.channels[1].teams.host",
            'adding the external destination "prod-12.westeurope.logic.azure.com" '
            "(allowed hosts: none)",
        ),
    ]
    assert permissions.channel_needs(None, spec(SLACK, TEAMS), ("slack.com", ".azure.com")) == []
    # Another channel of the same workspace is another recipient; the same one is not.
    moved = {"slack": {**SLACK["slack"], "channel": "C9999ZZZZ"}}
    assert [n.path for n in permissions.channel_needs(spec(SLACK), spec(moved), ())] == [
        "spec.delivery.channels[0].slack.channel"
    ]
    assert permissions.channel_needs(spec(SLACK, TEAMS), spec(TEAMS, SLACK), ()) == []
    rotated = {"slack": {**SLACK["slack"], "tokenSecretRef": {"name": "bot2", "key": "t"}}}
    assert permissions.channel_needs(spec(SLACK), spec(rotated), ()) == []


def test_the_relay_reads_each_kinds_admitted_destination() -> None:
    report = report_body(delivery={"channels": [{"webhook": HOOK}, SLACK, TEAMS]})
    assert http_forward.admitted(report, RUN, 0) == ("webhook", HOOK["url"])
    assert http_forward.admitted(report, RUN, 1) == ("slack", "C0123ABCD")
    assert http_forward.admitted(report, RUN, 2) == ("teams", "prod-12.westeurope.logic.azure.com")
    with pytest.raises(policy.Refused, match="is not a webhook"):
        http_forward.admitted_channel(report, RUN, 1)
    with pytest.raises(policy.Refused, match="admits no channel 3"):
        http_forward.admitted(report, RUN, 3)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://prod-12.westeurope.logic.azure.com/workflows/x?sig=s", None),
        ("https://PROD-12.westeurope.logic.azure.com/workflows/x", None),
        ("http://prod-12.westeurope.logic.azure.com/workflows/x", "not https://"),
        ("https://evil.example.net/workflows/x", "not on the admitted host"),
        ("https://prod-12.westeurope.logic.azure.com.evil.net/x", "not on the admitted host"),
        ("https://u:p@prod-12.westeurope.logic.azure.com/x", "not on the admitted host"),
        ("", "not https://"),
    ],
)
def test_a_workflow_url_must_be_https_on_the_admitted_host(url: str, problem: str | None) -> None:
    found = teams.url_problem(url, "prod-12.westeurope.logic.azure.com")
    assert found == problem if problem is None else problem in (found or "")


def summary() -> Summary:
    pdf = Attachment("r.pdf", b"%PDF-1.7 bytes", "application", "pdf")
    return Summary(
        namespace="qa",
        report="r",
        report_uid="u",
        title="Weekly <changes> & more",
        report_type="changes_summary",
        scheduled="2026-12-07T08:00:00Z",
        window_start="2026-11-30T00:00:00Z",
        window_end="2026-12-07T00:00:00Z",
        rows=2,
        figures={"rows": 2.0, "successRate": None, "completed": 2.0},
        outcome="Delivered",
        attachments=[pdf],
        mailed=4,
        run="r-29012345",
    )


def test_the_slack_envelope_carries_text_and_files_but_no_channel() -> None:
    body = slack.envelope(summary())
    text, files = slack.parse_envelope(body)
    assert text.splitlines()[0] == "*Weekly &lt;changes&gt; &amp; more*"  # mrkdwn escaped
    assert "successRate: -" in text and "completed: 2" in text
    assert "mailed to 4 recipient(s); record: the ReportDelivery of run r-29012345" in text
    assert files == [slack.File("r.pdf", b"%PDF-1.7 bytes")]
    assert b"C0123ABCD" not in body and b"channel" not in body
    for bad in (b"[]", b'{"files": []}', b'{"text": "t", "files": [{"content": "AA=="}]}'):
        with pytest.raises(ValueError):
            slack.parse_envelope(bad)


def test_the_slack_api_base_is_https_only() -> None:
    assert slack.api_url(None) == "https://slack.com/api/"
    assert slack.api_url("https://127.0.0.1:8443/api") == "https://127.0.0.1:8443/api/"
    with pytest.raises(ValueError, match="TIDINGS_SLACK_API_URL"):
        slack.api_url("http://127.0.0.1:8080/api/")


def test_the_teams_card_is_one_adaptive_card() -> None:
    card = teams.card(summary())
    assert card["type"] == "message"
    (attachment,) = card["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    facts = attachment["content"]["body"][1]["facts"]
    assert {
        "title": "Email",
        "value": "Delivered, mailed to 4 recipient(s); record: the "
        "ReportDelivery of run r-29012345",
    } in facts
