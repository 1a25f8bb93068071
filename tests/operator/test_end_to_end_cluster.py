"""End to end: report -> CronJob -> Job -> pod running the real renderer (`tidings run`, from the
pod's own command, env and mounted files) -> email accepted by a real SMTP server on loopback ->
the report's status shows the delivery."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.support.operator_harness import Cluster, OperatorProcess, PodRunner
from tests.support.report_bodies import manifest
from tests.support.smtp_mailbox import Mailbox, closed_relay_env, smtp_secret

from tidings.snapshot import spec_size_problem
from tidings.validation import validate_spec

pytestmark = pytest.mark.cluster


@pytest.fixture
def operator_env() -> dict[str, str]:
    return closed_relay_env()


def _rows_up_to_the_limit(spec: dict, now: datetime) -> list[dict]:
    """Inline rows that bring the spec to just under the size limit (models.MAX_SPEC_BYTES)."""
    rows: list[dict] = []
    when = (now - timedelta(days=1)).isoformat()
    while True:
        batch = [
            {
                "id": len(rows) + i,
                "title": f"Change {len(rows) + i} " + "x" * 150,
                "status": "completed",
                "completed_at": when,
            }
            for i in range(100)
        ]
        trial = {**spec, "source": {"inline": {"rows": rows + batch}}}
        if spec_size_problem(trial) is not None:
            break
        rows += batch
    while True:
        candidate = [*rows, {**rows[-1], "id": len(rows)}]
        if spec_size_problem({**spec, "source": {"inline": {"rows": candidate}}}) is not None:
            break
        rows = candidate
    return rows


@pytest.mark.parametrize("size", ["small", "at-the-limit"])
def test_scheduled_run_delivers_and_status_shows_it(
    size: str,
    mailbox: tuple[Mailbox, int],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    smtp_secret(cluster, port)
    now = datetime.now(UTC)
    rows = [
        {"id": i, "title": f"Change {i}", "status": "completed", "completed_at": when.isoformat()}
        for i, when in enumerate((now - timedelta(days=2), now - timedelta(days=1)), start=1)
    ]
    body = manifest(
        "weekly",
        title="Payments weekly",
        source={"inline": {"rows": rows}},
        recipients={"to": ["ciso@example.com"], "cc": ["audit@example.com"]},
        delivery={"smtpSecretRef": {"name": "team-smtp"}},
        failurePolicy={"disableAfter": 3, "retries": 0, "timeoutSeconds": 600},
    )
    if size == "at-the-limit":
        rows = _rows_up_to_the_limit(body["spec"], now)
        body["spec"]["source"]["inline"]["rows"] = rows
        assert validate_spec(body["spec"]).ok  # admitted: the limit is inclusive
    cluster.create_report(body)
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")

    # The CronJob controller's Job for the most recent minute: the renderer derives the
    # scheduled time (and so the window) from the Job's name via TIDINGS_JOB_NAME.
    scheduled = now.replace(second=0, microsecond=0)
    job = cluster.create_scheduled_job("weekly", scheduled)
    exit_code = PodRunner(cluster, tmp_path).execute(job)
    assert exit_code == 0, cluster.pods(job)[0]["status"]["containerStatuses"][0]["state"]

    status = cluster.wait_status(
        "weekly",
        "the delivery recorded",
        lambda s: any(h["jobName"] == job for h in s.get("history", [])),
    )
    (entry,) = status["history"]
    assert entry["outcome"] == "Delivered"
    assert entry["scheduledTime"] == scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert entry["windowEnd"] == entry["scheduledTime"]
    assert (entry["recipientsAccepted"], entry["recipientsRejected"]) == (2, 0)
    assert entry["renderer"] in ("pdf", "text")
    assert entry["bytes"] > 0
    assert status["lastSentAt"] == entry["finishedAt"]
    assert status["consecutiveFailures"] == 0

    (recipients, raw) = box.messages[0]
    assert len(box.messages) == 1
    assert sorted(recipients) == ["audit@example.com", "ciso@example.com"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["From"] == "tidings@team.test"
    assert "Payments weekly" in message["Subject"]
    attachments = [part.get_content_type() for part in message.iter_attachments()]
    expected = "application/pdf" if entry["renderer"] == "pdf" else "text/plain"
    assert expected in attachments
    assert cluster.report("weekly")["metadata"]["generation"] == 1
