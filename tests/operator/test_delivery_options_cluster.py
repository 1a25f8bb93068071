"""Delivery options through the real control plane: the operator's platform branding and the
namespace's ConfigMap tidings-branding reach the renderer pod (its env and mounts, as a kubelet
would give them) and the mail a real SMTP server receives; a skipped empty window shows in
status without touching lastSentAt or the failure counter; xlsx attachments arrive."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.operator_harness import Cluster, OperatorProcess, PodRunner
from tests.support.report_bodies import manifest
from tests.support.smtp_mailbox import Mailbox, closed_relay_env, smtp_secret

from tidings.contract import digest
from tidings.controller import testsend
from tidings_dev.cluster import REPO_ROOT

pytestmark = pytest.mark.cluster

LOGOS = REPO_ROOT / "tests" / "renderer" / "branding"
ACME = (LOGOS / "acme.png").read_bytes()
TEAM = (LOGOS / "team.png").read_bytes()


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Platform branding, as the chart sets it on the operator."""
    return {
        **closed_relay_env(),  # mail goes through the namespace Secret
        "TIDINGS_BRAND_LOGO": "data:image/png;base64," + base64.b64encode(ACME).decode(),
        "TIDINGS_BRAND_ACCENT_COLOR": "#8e44ad",
        "TIDINGS_BRAND_FOOTER_TEXT": "ACME Corp",
        "TIDINGS_MAIL_FROM_NAME": "ACME Reports",
        "TIDINGS_MAIL_REPLY_TO": "reports-help@example.com",
    }


def _rows(now: datetime) -> list[dict]:
    return [
        {"id": i, "title": f"Change {i}", "status": "completed", "completed_at": when.isoformat()}
        for i, when in enumerate((now - timedelta(days=2), now - timedelta(days=1)), start=1)
    ]


def _run(cluster: Cluster, name: str, tmp_path: Path, now: datetime) -> tuple[str, dict]:
    cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")
    job = cluster.create_scheduled_job(name, now.replace(second=0, microsecond=0))
    exit_code = PodRunner(cluster, tmp_path).execute(job)
    assert exit_code == 0, cluster.pods(job)[0]["status"]["containerStatuses"][0]["state"]
    status = cluster.wait_status(
        name, "the run recorded", lambda s: any(h["jobName"] == job for h in s.get("history", []))
    )
    return job, status


def test_branding_travels_from_operator_and_namespace_to_the_mail(
    mailbox: tuple[Mailbox, int],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    smtp_secret(cluster, port)
    cluster.core.create_namespaced_config_map(
        cluster.ns,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="tidings-branding"),
            data={"accentColor": "#2e7d4f", "fromName": "Team Payments"},
            binary_data={"logo.png": base64.b64encode(TEAM).decode()},
        ),
    )
    now = datetime.now(UTC)
    cluster.create_report(
        manifest(
            "weekly",
            title="Payments weekly",
            source={"inline": {"rows": _rows(now)}},
            recipients={"to": ["ciso@example.com"]},
            delivery={"smtpSecretRef": {"name": "team-smtp"}, "attachments": ["pdf", "xlsx"]},
            failurePolicy={"disableAfter": 3, "retries": 0, "timeoutSeconds": 600},
        )
    )
    job, status = _run(cluster, "weekly", tmp_path, now)
    env = {
        e["name"]: e.get("value")
        for e in cluster.job(job)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["TIDINGS_MAIL_REPLY_TO"] == "reports-help@example.com"  # the run contract
    assert status["history"][0]["outcome"] == "Delivered"

    (_, raw) = box.messages[0]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    # Namespace keys win (logo, colour, display name); the rest are the platform's.
    assert message["From"] == "Team Payments <tidings@team.test>"
    assert message["Reply-To"] == "reports-help@example.com"
    html = message.get_body(("html",)).get_content()
    assert "#2e7d4f" in html and "#8e44ad" not in html and "ACME Corp · Sent by" in html
    (logo,) = [p for p in message.walk() if p.get("Content-ID") == "<logo@tidings>"]
    assert logo.get_content() == TEAM
    names = sorted(p.get_filename() for p in message.iter_attachments())
    assert [n.rsplit(".", 1)[1] for n in names] == ["pdf", "xlsx"]


def test_a_skipped_empty_window_leaves_last_sent_and_failures(
    mailbox: tuple[Mailbox, int],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    smtp_secret(cluster, port)
    now = datetime.now(UTC)
    old = [{**r, "completed_at": "2020-01-01T00:00:00Z"} for r in _rows(now)]
    cluster.create_report(
        manifest(
            "quiet",
            source={"inline": {"rows": old}},
            recipients={"to": ["ciso@example.com"]},
            delivery={"smtpSecretRef": {"name": "team-smtp"}, "skipIfEmpty": True},
            failurePolicy={"disableAfter": 3, "retries": 0, "timeoutSeconds": 600},
        )
    )
    _, status = _run(cluster, "quiet", tmp_path, now)
    (entry,) = status["history"]
    assert entry["outcome"] == "Skipped"
    assert "skipIfEmpty" in entry["error"]
    assert "lastSentAt" not in status
    assert status.get("consecutiveFailures", 0) == 0
    assert status["lastAttemptAt"] == entry["finishedAt"]
    assert status["phase"] == "Active"
    assert box.messages == []
    assert cluster.events("Skipped", "quiet")


def test_a_test_send_goes_to_one_address_and_changes_nothing_else(
    mailbox: tuple[Mailbox, int],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    smtp_secret(cluster, port)
    now = datetime.now(UTC)
    cluster.create_report(
        manifest(
            "weekly",
            title="Payments weekly",
            source={"inline": {"rows": _rows(now)}},
            recipients={"to": ["ciso@example.com"], "cc": ["audit@example.com"]},
            delivery={"smtpSecretRef": {"name": "team-smtp"}},
            failurePolicy={"disableAfter": 3, "retries": 0, "timeoutSeconds": 600},
        )
    )
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    before = cluster.status("weekly")
    cluster.annotate("weekly", **{testsend.ANNOTATION: "tester@example.com"})
    status = cluster.wait_status("weekly", "the test started", lambda s: s.get("testSendCount"))
    assert status["testSendHandled"] == digest("tester@example.com")
    (job,) = [j["metadata"]["name"] for j in cluster.jobs() if testsend.recipient_of(j)]
    assert PodRunner(cluster, tmp_path).execute(job) == 0
    status = cluster.wait_status(
        "weekly",
        "the test recorded",
        lambda s: any(h["jobName"] == job for h in s.get("history", [])),
    )
    (entry,) = status["history"]
    assert (entry["testRecipient"], entry["outcome"]) == ("tester@example.com", "Delivered")
    for key in ("phase", "lastSentAt", "lastAttemptAt", "consecutiveFailures", "lastError"):
        assert status.get(key) == before.get(key), key
    assert not [c for c in status.get("conditions", []) if c["type"] == "Delivered"]
    assert cluster.events("TestSent", "weekly")

    ((recipients, raw),) = box.messages
    assert recipients == ["tester@example.com"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"].startswith("[TEST] ") and "Payments weekly" in message["Subject"]
    # The same value again does nothing; after removing it, the same address can test again.
    cluster.annotate("weekly", **{"tidings.dev/run-now": "nudge"})  # a report event
    nudged = digest("nudge")
    cluster.wait_status("weekly", "run-now seen", lambda s: s.get("runNowHandled") == nudged)
    assert cluster.status("weekly")["testSendCount"] == 1
