"""sendWhen mode changed through the real control plane: the first run sends and its
ReportDelivery keeps the rows' digest; the operator hands that digest to the next run through
the CronJob's pod template (the pod has no API access); a second run over the same rows is
Skipped, with its reason in status and its record, and changes no counter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.support.operator_harness import Cluster, OperatorProcess, PodRunner
from tests.support.report_bodies import manifest
from tests.support.smtp_mailbox import Mailbox, closed_relay_env, smtp_secret

from tidings.contract import LAST_ROWS_DIGEST_ENV
from tidings.controller.cronjob import CONTAINER, cronjob_name
from tidings.sendwhen import is_digest

pytestmark = pytest.mark.cluster


@pytest.fixture
def operator_env() -> dict[str, str]:
    return closed_relay_env()  # mail goes through the namespace Secret


def template_env(cluster: Cluster, report_name: str) -> dict[str, str]:
    cronjob = cluster.cronjob(cronjob_name(report_name)) or {}
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == CONTAINER]
    return {e["name"]: e.get("value", "") for e in container.get("env") or ()}


def run_once(cluster: Cluster, name: str, tmp_path: Path, scheduled: datetime) -> dict:
    job = cluster.create_scheduled_job(cronjob_name(name), scheduled)
    assert PodRunner(cluster, tmp_path / job).execute(job) == 0
    status = cluster.wait_status(
        name, "the run recorded", lambda s: any(h["jobName"] == job for h in s.get("history", []))
    )
    return next(h for h in status["history"] if h["jobName"] == job)


def test_two_identical_windows_with_changed_send_once(
    mailbox: tuple[Mailbox, int],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    smtp_secret(cluster, port)
    rows = [
        {"id": i, "title": f"Change {i}", "status": "completed", "completed_at": when}
        for i, when in enumerate(("2024-05-07T10:00:00Z", "2024-05-08T10:00:00Z"), start=1)
    ]
    cluster.create_report(
        manifest(
            "unchanged",
            source={"inline": {"rows": rows}},
            filters={"window": {"from": "2024-05-06", "to": "2024-05-13"}},
            delivery={"smtpSecretRef": {"name": "team-smtp"}, "sendWhen": {"mode": "changed"}},
            failurePolicy={"disableAfter": 3, "retries": 0, "timeoutSeconds": 600},
        )
    )
    cluster.wait_status("unchanged", "Active", lambda s: s.get("phase") == "Active")
    assert LAST_ROWS_DIGEST_ENV not in template_env(cluster, "unchanged")  # no record yet

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first = run_once(cluster, "unchanged", tmp_path, now - timedelta(minutes=2))
    assert first["outcome"] == "Delivered"
    assert len(box.messages) == 1
    (record,) = cluster.records("unchanged")
    digest = record["spec"]["rowsDigest"]
    assert is_digest(digest)
    status = cluster.wait_status(
        "unchanged", "the digest kept", lambda s: s.get("lastRowsDigest") == digest
    )
    sent_at = status["lastSentAt"]

    cluster.wait_status(  # the operator rewrites the pod template with the digest
        "unchanged",
        "the digest handed to the CronJob",
        lambda _: template_env(cluster, "unchanged").get(LAST_ROWS_DIGEST_ENV) == digest,
    )
    second = run_once(cluster, "unchanged", tmp_path, now - timedelta(minutes=1))
    assert second["outcome"] == "Skipped"
    assert "the rows are the same as the last delivered run's" in second["error"]
    assert len(box.messages) == 1  # sent once

    status = cluster.status("unchanged")
    assert status["lastSentAt"] == sent_at
    assert status.get("consecutiveFailures", 0) == 0
    assert status["lastRowsDigest"] == digest
    skipped = [r for r in cluster.records("unchanged") if r["spec"]["outcome"] == "Skipped"]
    (skipped_record,) = skipped
    assert "spec.delivery.sendWhen changed" in skipped_record["spec"]["error"]
    assert cluster.events("Skipped", "unchanged")
