"""One run to email and a webhook through the real control plane: the pod (the real renderer,
run by the stand-in kubelet with its mounts: the namespace SMTP Secret and the channel's
signing Secret) mails a real SMTP server and posts to a real HTTPS server on loopback, which
fails once; the retry carries the same idempotency key; the run's ReportDelivery lists the
channel's outcome and status history has it in the run's entry. Then one run to email, a
webhook, Slack and Teams at once (loopback fakes of their APIs, tests/support/channel_fakes.py)
with one record listing each channel's outcome."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from kubernetes import client
from tests.support.channel_fakes import FakeSlack, FakeTeams, slack_api, teams_workflow
from tests.support.json_http import JsonHandler, JsonHttpServer, https_server
from tests.support.operator_harness import Cluster, OperatorProcess, PodRunner
from tests.support.pki import smtp_pki
from tests.support.report_bodies import manifest
from tests.support.smtp_mailbox import Mailbox, closed_relay_env, smtp_secret

from tidings.controller.cronjob import cronjob_name

pytestmark = pytest.mark.cluster

KEY = b"cluster-signing-key"


class FlakyHook(JsonHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        FlakyHook.seen.append({"headers": dict(self.headers), "body": body})
        self.reply(503 if len(FlakyHook.seen) == 1 else 200, {"n": len(FlakyHook.seen)})


@pytest.fixture
def hook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[JsonHttpServer, Path]]:
    FlakyHook.seen.clear()
    with https_server(FlakyHook, tmp_path_factory.mktemp("hook-pki")) as served:
        yield served


@pytest.fixture
def operator_env() -> dict[str, str]:
    return closed_relay_env()  # mail through the namespace Secret; channels posted directly


def test_one_run_to_email_and_a_webhook_with_one_record(
    mailbox: tuple[Mailbox, int],
    hook: tuple[JsonHttpServer, Path],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    server, ca = hook
    smtp_secret(cluster, port)
    cluster.core.create_namespaced_secret(
        cluster.ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="hook-key"), string_data={"k": KEY.decode()}
        ),
    )
    channel = {
        "webhook": {"url": f"{server.url}/t", "signingSecretRef": {"name": "hook-key", "key": "k"}}
    }
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    done = (now - timedelta(days=1)).isoformat()
    row = {"id": 1, "title": "Deploy", "status": "completed", "completed_at": done}
    cluster.create_report(
        manifest(
            "both",
            source={"inline": {"rows": [row]}},
            delivery={"smtpSecretRef": {"name": "team-smtp"}, "channels": [channel]},
            failurePolicy={"disableAfter": 3, "retries": 1, "timeoutSeconds": 600},
        )
    )
    cluster.wait_status("both", "Active", lambda s: s.get("phase") == "Active")
    job = cluster.create_scheduled_job(cronjob_name("both"), now)
    runner = PodRunner(cluster, tmp_path, node_env={"SSL_CERT_FILE": str(ca)})
    assert runner.execute(job) == 0
    status = cluster.wait_status(
        "both", "the run recorded", lambda s: any(h["jobName"] == job for h in s.get("history", []))
    )
    (entry,) = status["history"]
    assert entry["outcome"] == "Delivered"
    assert entry["channels"] == ["webhook[0] accepted"]
    assert len(box.messages) == 1

    first, second = FlakyHook.seen  # a 503, then the retry
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    assert first["body"] == second["body"]
    expected = "sha256=" + hmac.new(KEY, second["body"], hashlib.sha256).hexdigest()
    assert second["headers"]["X-Tidings-Signature"] == expected

    (record,) = cluster.records("both")
    (outcome,) = record["spec"]["channels"]
    assert outcome["name"] == "webhook[0]" and outcome["outcome"] == "accepted"
    assert outcome["attempts"] == 2
    assert outcome["idempotencyKey"] == second["headers"]["Idempotency-Key"]
    assert record["spec"]["outcome"] == "Delivered"
    assert record["spec"]["recipients"]["accepted"] == 1


def secret(cluster: Cluster, name: str, key: str, value: str) -> None:
    cluster.core.create_namespaced_secret(
        cluster.ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={key: value}),
    )


@pytest.fixture
def chat(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, JsonHttpServer, FakeSlack, FakeTeams]]:
    """A webhook, Slack and Teams on loopback, all certified by one test CA (SSL_CERT_FILE)."""
    FlakyHook.seen.clear()
    pki = smtp_pki(tmp_path_factory.mktemp("chat-pki"))
    with (
        JsonHttpServer(FlakyHook, tls=pki.server_context()) as hook_server,
        slack_api(pki) as slack,
        teams_workflow(pki) as teams,
    ):
        yield pki.ca, hook_server, slack, teams


def test_one_run_to_email_a_webhook_slack_and_teams_with_one_record(
    mailbox: tuple[Mailbox, int],
    chat: tuple[Path, JsonHttpServer, FakeSlack, FakeTeams],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    ca, hook_server, slack, teams = chat
    teams.faults = [429]  # Teams is busy once: Retry-After 1, then the card goes
    smtp_secret(cluster, port)
    secret(cluster, "hook-key", "k", KEY.decode())
    secret(cluster, "slack-bot", "token", "xoxb-test-token")
    secret(cluster, "teams-flow", "url", teams.url)
    channels = [
        {
            "webhook": {
                "url": f"{hook_server.url}/t",
                "signingSecretRef": {"name": "hook-key", "key": "k"},
            }
        },
        {
            "slack": {
                "channel": "C0123ABCD",
                "tokenSecretRef": {"name": "slack-bot", "key": "token"},
            }
        },
        {"teams": {"host": "127.0.0.1", "urlSecretRef": {"name": "teams-flow", "key": "url"}}},
    ]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    done = (now - timedelta(days=1)).isoformat()
    row = {"id": 1, "title": "Deploy", "status": "completed", "completed_at": done}
    cluster.create_report(
        manifest(
            "everywhere",
            source={"inline": {"rows": [row]}},
            delivery={"smtpSecretRef": {"name": "team-smtp"}, "channels": channels},
            failurePolicy={"disableAfter": 3, "retries": 2, "timeoutSeconds": 600},
        )
    )
    cluster.wait_status("everywhere", "Active", lambda s: s.get("phase") == "Active")
    job = cluster.create_scheduled_job(cronjob_name("everywhere"), now)
    # The Slack API base is the node's (the platform's) setting, never the report's.
    node_env = {"SSL_CERT_FILE": str(ca), "TIDINGS_SLACK_API_URL": slack.url}
    runner = PodRunner(cluster, tmp_path, node_env=node_env)
    assert runner.execute(job) == 0
    status = cluster.wait_status(
        "everywhere",
        "the run recorded",
        lambda s: any(h["jobName"] == job for h in s.get("history", [])),
    )
    (entry,) = status["history"]
    assert entry["outcome"] == "Delivered"
    assert entry["channels"] == ["webhook[0] accepted", "slack[1] accepted", "teams[2] accepted"]
    assert len(box.messages) == 1

    assert len(FlakyHook.seen) == 2  # a 503, then the retry
    assert slack.methods() == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    (shared,) = slack.messages
    assert shared["channel_id"] == "C0123ABCD" and shared["initial_comment"].startswith("*")
    assert "mailed to 1 recipient(s)" in shared["initial_comment"]
    (card,) = teams.cards()[1:]  # the 429'd attempt, then this one
    facts = {f["title"]: f["value"] for f in card["attachments"][0]["content"]["body"][1]["facts"]}
    assert facts["Email"].startswith("Delivered, mailed to 1 recipient(s); record: the ")
    assert job in facts["Email"]

    (record,) = cluster.records("everywhere")
    by_name = {c["name"]: c for c in record["spec"]["channels"]}
    assert set(by_name) == {"webhook[0]", "slack[1]", "teams[2]"}
    assert {c["type"] for c in by_name.values()} == {"webhook", "slack", "teams"}
    assert all(c["outcome"] == "accepted" for c in by_name.values())
    assert (by_name["webhook[0]"]["attempts"], by_name["teams[2]"]["attempts"]) == (2, 2)
    assert by_name["slack[1]"]["reply"] == "shared 1 file(s) in C0123ABCD"
    assert by_name["slack[1]"]["destination"] == "127.0.0.1/C0123ABCD"
    assert by_name["teams[2]"]["destination"] == "127.0.0.1"
    assert "sig=" not in str(record) and "xoxb-test-token" not in str(record)
    assert record["spec"]["outcome"] == "Delivered"
