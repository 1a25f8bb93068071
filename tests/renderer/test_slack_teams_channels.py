"""The Slack and Teams channels through `tidings send`, against loopback HTTPS fakes of their
APIs (tests/support/channel_fakes.py) and the mail against a real SMTP server: Slack's upload
flow with the report's files and the summary as its comment, the Teams Adaptive Card, and the
failure classes of each (API errors in a 200, 4xx, 429 with Retry-After, 5xx, slow, dropped
connections), the workflow URL held to its admitted host."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.channel_fakes import FakeSlack, FakeTeams, slack_api, teams_workflow
from tests.support.pki import Pki
from tests.support.renderer_cli import send
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import SmtpServer

from tidings.contract import EX_DATAERR, EX_OK
from tidings.renderer.channels.run import CHANNEL_SECRET_DIR_ENV
from tidings.renderer.channels.slack import API_URL_ENV

TOKEN = "xoxb-test-token"
CHANNEL = "C0123ABCD"


@pytest.fixture
def slack(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    with slack_api(pki) as fake:
        monkeypatch.setenv(API_URL_ENV, fake.url)  # the node's setting, never the spec's
        yield fake


@pytest.fixture
def teams(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTeams]:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    with teams_workflow(pki) as fake:
        yield fake


def mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *values: str) -> None:
    """Each channel's Secret key where the pod has it: <dir>/<index>/key."""
    root = tmp_path / "channels"
    for index, value in enumerate(values):
        (root / str(index)).mkdir(parents=True)
        (root / str(index) / "key").write_text(value + "\n")
    monkeypatch.setenv(CHANNEL_SECRET_DIR_ENV, str(root))


def slack_channel() -> dict[str, Any]:
    return {"slack": {"channel": CHANNEL, "tokenSecretRef": {"name": "bot", "key": "token"}}}


def teams_channel(host: str = "127.0.0.1") -> dict[str, Any]:
    return {"teams": {"host": host, "urlSecretRef": {"name": "flow", "key": "url"}}}


def report(*channels: dict[str, Any], retries: int = 0) -> dict[str, Any]:
    return small_report(delivery={"channels": list(channels)}, failurePolicy={"retries": retries})


def test_slack_shares_the_reports_files_with_the_summary_as_comment(
    smtp: SmtpServer, slack: FakeSlack, tmp_path: Path, capsys, monkeypatch
) -> None:
    mount(tmp_path, monkeypatch, TOKEN)
    code, result = send(tmp_path, capsys, smtp, report(slack_channel()))
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert len(smtp.recorder.messages) == 1
    (pdf,) = result["attachments"]
    assert slack.methods() == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    asked = slack.calls[0].fields
    assert asked == {"filename": pdf["name"], "length": str(pdf["bytes"])}
    (uploaded,) = slack.uploads.values()
    assert hashlib.sha256(uploaded).hexdigest() == pdf["sha256"]
    (shared,) = slack.messages
    assert shared["channel_id"] == CHANNEL
    assert json.loads(shared["files"]) == [{"id": next(iter(slack.uploads)), "title": pdf["name"]}]
    comment = shared["initial_comment"]
    assert comment.startswith("*Delivery check*")
    assert "Rows: 1" in comment and "completed: 1" in comment
    assert "Email: Delivered, mailed to 3 recipient(s)" in comment
    assert all(
        c.headers.get("Authorization") == f"Bearer {TOKEN}"
        for c in slack.calls
        if c.path != "upload"
    )
    (channel,) = result["channels"]
    assert (channel["name"], channel["type"], channel["outcome"]) == (
        "slack[0]",
        "slack",
        "accepted",
    )
    assert channel["destination"] == f"127.0.0.1/{CHANNEL}"
    assert channel["reply"] == f"shared 1 file(s) in {CHANNEL}"
    assert TOKEN not in json.dumps(result)


def test_slack_without_files_posts_a_message(
    smtp: SmtpServer, slack: FakeSlack, tmp_path: Path, capsys, monkeypatch
) -> None:
    mount(tmp_path, monkeypatch, TOKEN)
    body = report(slack_channel())
    body["spec"]["delivery"]["attachments"] = ["csv"]
    body["spec"]["source"]["inline"]["rows"] = []  # an empty window: still a CSV header
    code, result = send(tmp_path, capsys, smtp, body)
    assert code == EX_OK and result["channels"][0]["outcome"] == "accepted"
    assert "files.completeUploadExternal" in slack.methods()


@pytest.mark.parametrize(
    ("fault", "reply"),
    [
        ("channel_not_found", "Slack files.getUploadURLExternal: channel_not_found"),
        ("not_in_channel", "not_in_channel"),
        (403, "HTTP 403"),
    ],
)
def test_slack_errors_that_a_retry_cannot_mend_are_permanent(
    smtp: SmtpServer, slack: FakeSlack, tmp_path: Path, capsys, monkeypatch, fault, reply
) -> None:
    mount(tmp_path, monkeypatch, TOKEN)
    slack.faults = [fault]
    code, result = send(tmp_path, capsys, smtp, report(slack_channel(), retries=3))
    assert (code, result["outcome"]) == (EX_OK, "Delivered")  # the mail went
    (channel,) = result["channels"]
    assert (channel["failure"], channel["attempts"]) == ("permanent", 1)
    assert reply in channel["reply"]
    assert "channel slack[0]" in result["error"] and slack.messages == []


def test_a_wrong_bot_token_is_invalid_auth_and_permanent(
    smtp: SmtpServer, slack: FakeSlack, tmp_path: Path, capsys, monkeypatch
) -> None:
    mount(tmp_path, monkeypatch, "xoxb-revoked")
    code, result = send(tmp_path, capsys, smtp, report(slack_channel(), retries=2))
    assert code == EX_OK  # the mail went
    (channel,) = result["channels"]
    assert channel["failure"] == "permanent" and "invalid_auth" in channel["reply"]
    assert len(slack.calls) == 1 and "xoxb-revoked" not in json.dumps(result)


@pytest.mark.parametrize("fault", ["ratelimited", 429])
def test_slack_rate_limits_wait_their_retry_after(
    smtp: SmtpServer, slack: FakeSlack, tmp_path: Path, capsys, monkeypatch, caplog, fault
) -> None:
    mount(tmp_path, monkeypatch, TOKEN)
    slack.faults = [fault]
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tidings.renderer.channels"):
        code, result = send(tmp_path, capsys, smtp, report(slack_channel(), retries=2))
        assert code == EX_OK  # the mail went
    assert time.monotonic() - started >= 1.0
    assert "retry 1/2 in 1s" in caplog.text  # Retry-After: 1, not the 2 s backoff
    (channel,) = result["channels"]
    assert (channel["outcome"], channel["attempts"]) == ("accepted", 2)
    assert len(slack.messages) == 1  # one share, however many attempts


@pytest.mark.parametrize(
    ("fault", "reply"), [(503, "HTTP 503"), ("drop", "cannot reach 127.0.0.1")]
)
def test_slack_outages_and_dropped_connections_are_transient(
    smtp: SmtpServer, slack: FakeSlack, tmp_path: Path, capsys, monkeypatch, fault, reply
) -> None:
    mount(tmp_path, monkeypatch, TOKEN)
    slack.faults = [fault, fault]
    code, result = send(tmp_path, capsys, smtp, report(slack_channel(), retries=1))
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    (channel,) = result["channels"]
    assert (channel["failure"], channel["attempts"]) == ("transient", 2)
    assert reply in channel["reply"]


def test_a_slow_slack_times_out_within_the_run_deadline(
    smtp: SmtpServer, slack: FakeSlack, tmp_path: Path, capsys, monkeypatch
) -> None:
    mount(tmp_path, monkeypatch, TOKEN)
    slack.faults = ["slow"]
    started = time.monotonic()
    code, result = send(tmp_path, capsys, smtp, report(slack_channel()), "--timeout", "4")
    assert code == EX_OK  # the mail went
    assert time.monotonic() - started < 6
    (channel,) = result["channels"]
    assert channel["failure"] == "transient" and channel["outcome"] == "refused"
    assert "deadline" in channel["reply"] or "did not answer in time" in channel["reply"]


def test_an_http_slack_api_url_is_a_configuration_error(
    smtp: SmtpServer, tmp_path: Path, capsys, monkeypatch
) -> None:
    mount(tmp_path, monkeypatch, TOKEN)
    monkeypatch.setenv(API_URL_ENV, "http://127.0.0.1:9/api/")
    code, result = send(tmp_path, capsys, smtp, report(slack_channel()))
    assert code == EX_DATAERR and "TIDINGS_SLACK_API_URL" in result["error"]
    assert smtp.recorder.messages == []


def test_teams_gets_an_adaptive_card_saying_where_the_report_went(
    smtp: SmtpServer, teams: FakeTeams, tmp_path: Path, capsys, monkeypatch, caplog
) -> None:
    mount(tmp_path, monkeypatch, teams.url)
    monkeypatch.setenv("TIDINGS_JOB_NAME", "smtp-check-29012345")
    with caplog.at_level(logging.DEBUG):
        code, result = send(tmp_path, capsys, smtp, report(teams_channel()))
    assert "sig=" not in caplog.text  # httpx's request log would quote the workflow URL
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    (card,) = teams.cards()
    assert card["type"] == "message"
    (attachment,) = card["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = attachment["content"]
    assert content["type"] == "AdaptiveCard" and content["body"][0]["text"] == "Delivery check"
    facts = {f["title"]: f["value"] for f in content["body"][1]["facts"]}
    assert facts["Report"] == "Delivery check (qa/smtp-check, changes_summary)"
    assert facts["Window"] == f"{result['windowStart']} to {result['windowEnd']}"
    assert facts["Rows"] == "1" and facts["completed"] == "1"
    assert facts["Email"] == (
        "Delivered, mailed to 3 recipient(s); record: the ReportDelivery of run smtp-check-29012345"
    )
    (call,) = teams.calls
    assert call.headers["Idempotency-Key"] == result["channels"][0]["idempotencyKey"]
    (channel,) = result["channels"]
    assert (channel["name"], channel["type"], channel["destination"]) == (
        "teams[0]",
        "teams",
        "127.0.0.1",
    )
    assert channel["outcome"] == "accepted" and channel["reply"] == "HTTP 202"
    assert "sig=" not in json.dumps(result)  # the workflow URL is a credential


@pytest.mark.parametrize(
    ("faults", "failure", "attempts", "reply"),
    [
        ([400], "permanent", 1, "HTTP 400"),
        ([429], None, 2, "HTTP 202"),
        ([503, 503], "transient", 2, "HTTP 503"),
        (["drop", "drop"], "transient", 2, "cannot reach 127.0.0.1"),
        (["redirect"], "permanent", 1, "not followed"),
    ],
)
def test_teams_failure_classes(
    smtp: SmtpServer,
    teams: FakeTeams,
    tmp_path: Path,
    capsys,
    monkeypatch,
    faults,
    failure,
    attempts,
    reply,
) -> None:
    mount(tmp_path, monkeypatch, teams.url)
    teams.faults = list(faults)
    code, result = send(tmp_path, capsys, smtp, report(teams_channel(), retries=1))
    assert code == EX_OK  # the mail went
    (channel,) = result["channels"]
    assert (channel["failure"], channel["attempts"]) == (failure, attempts)
    assert reply in channel["reply"]
    assert len(teams.calls) == attempts  # a redirect elsewhere is never followed


def test_a_slow_workflow_times_out(
    smtp: SmtpServer, teams: FakeTeams, tmp_path: Path, capsys, monkeypatch
) -> None:
    mount(tmp_path, monkeypatch, teams.url)
    teams.faults = ["slow"]
    started = time.monotonic()
    code, result = send(tmp_path, capsys, smtp, report(teams_channel()), "--timeout", "4")
    assert code == EX_OK  # the mail went
    assert time.monotonic() - started < 6
    assert result["channels"][0]["failure"] == "transient"


def test_a_workflow_url_off_the_admitted_host_is_not_posted_to(
    smtp: SmtpServer, teams: FakeTeams, tmp_path: Path, capsys, monkeypatch
) -> None:
    mount(tmp_path, monkeypatch, teams.url)
    code, result = send(
        tmp_path, capsys, smtp, report(teams_channel("prod-12.westeurope.logic.azure.com"))
    )
    assert code == EX_OK
    (channel,) = result["channels"]
    assert channel["failure"] == "permanent"
    assert "not on the admitted host prod-12.westeurope.logic.azure.com" in channel["reply"]
    assert teams.calls == []
