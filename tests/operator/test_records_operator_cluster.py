"""Delivery records end to end: the real operator, the real renderer run from the
pod's own command (PodRunner), a real SMTP server on loopback. A delivered run and a refused
run each leave exactly one ReportDelivery with the right fields, also across an operator
restart, and deleting the reports leaves their records."""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    PodRunner,
    restart_and_see_jobs,
    wait_for,
)
from tests.support.report_bodies import manifest
from tests.support.smtp_mailbox import Mailbox, closed_relay_env, serve_mailbox, smtp_secret

from tidings import models

pytestmark = pytest.mark.cluster

TO = [f"finance-reader-{i:02d}@example.com" for i in range(20)]
CC = [f"finance-copy-{i:02d}@example.com" for i in range(15)]
BCC = [f"finance-archive-{i:02d}@example.com" for i in range(15)]
REFUSED = ["refused-lead@example.com", "refused-ops@example.com"]
REFUSED_BCC = ["refused-archive@example.com"]


class RefusingMailbox(Mailbox):
    """Accepts everyone but addresses starting with `refused-` (550, as for an unknown user)."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused-"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    yield from serve_mailbox(RefusingMailbox())


@pytest.fixture
def operator_env() -> dict[str, str]:
    return closed_relay_env()


def records_of(cluster: Cluster, report_name: str) -> list[dict[str, Any]]:
    return client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        models.GROUP,
        models.VERSION,
        cluster.ns,
        models.DELIVERY_PLURAL,
        label_selector=f"tidings.dev/report={report_name}",
    )["items"]


def run_report(
    cluster: Cluster, runner: PodRunner, name: str, recipients: dict, scheduled: datetime
) -> tuple[str, int, dict]:
    now = datetime.now(UTC)
    rows = [
        {"id": i, "title": f"Change {i}", "status": "completed", "completed_at": when.isoformat()}
        for i, when in enumerate((now - timedelta(days=2), now - timedelta(days=1)), start=1)
    ]
    cluster.create_report(
        manifest(
            name,
            title=f"{name} report",
            source={"inline": {"rows": rows}},
            recipients=recipients,
            delivery={"smtpSecretRef": {"name": "team-smtp"}, "retentionDays": 30},
            failurePolicy={"disableAfter": 3, "retries": 0, "timeoutSeconds": 600},
        )
    )
    cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")
    job = cluster.create_scheduled_job(name, scheduled)
    exit_code = runner.execute(job)
    status = cluster.wait_status(
        name, "the run recorded", lambda s: any(h["jobName"] == job for h in s.get("history", []))
    )
    return job, exit_code, status["history"][0]


def test_each_run_leaves_one_record_that_outlives_the_report(
    mailbox: tuple[Mailbox, int],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    smtp_secret(cluster, port)
    runner = PodRunner(cluster, tmp_path)
    scheduled = datetime.now(UTC).replace(second=0, microsecond=0)

    # A delivered run to 50 recipients: every address is in the record.
    sent_job, code, entry = run_report(
        cluster, runner, "weekly", {"to": TO, "cc": CC, "bcc": BCC}, scheduled
    )
    assert code == 0, entry["error"]
    (record,) = records_of(cluster, "weekly")
    spec = record["spec"]
    report = cluster.report("weekly")
    assert "ownerReferences" not in record["metadata"]
    assert record["metadata"]["labels"]["tidings.dev/report-uid"] == report["metadata"]["uid"]
    assert spec["report"] == {
        "name": "weekly",
        "uid": report["metadata"]["uid"],
        "title": "weekly report",
        "type": "changes_summary",
    }
    assert (spec["jobName"], spec["trigger"], spec["outcome"]) == (
        sent_job,
        "Schedule",
        "Delivered",
    )
    (rcpt_tos, raw) = box.messages[0]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert spec["messageId"] == message["Message-ID"] == entry["messageId"]
    recipients = spec["recipients"]
    assert (recipients["accepted"], recipients["refused"], recipients["omitted"]) == (50, 0, 0)
    assert recipients["to"]["accepted"] == TO
    assert recipients["cc"]["accepted"] == CC
    assert recipients["bcc"]["accepted"] == BCC  # in the record, and in no header
    assert not any(address in raw.decode() for address in BCC)
    assert sorted(rcpt_tos) == sorted(TO + CC + BCC)
    sent = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert {a["name"]: (a["bytes"], a["sha256"]) for a in spec["attachments"]} == {
        name: (len(content), hashlib.sha256(content).hexdigest()) for name, content in sent.items()
    }
    assert spec["rows"] == 2
    assert spec["pages"] >= 1 if spec["renderer"] == "pdf" else "pages" not in spec
    assert spec["bytes"] == entry["bytes"] > 0
    assert spec["window"] and spec["windowEnd"] == entry["windowEnd"]
    assert spec["finishedAt"] == entry["finishedAt"] and spec["startedAt"]
    assert (spec["attempts"], spec["retentionDays"]) == (1, 30)

    # Every recipient refused: a failed run, its refusals counted and listed.
    refused_job, code, entry = run_report(
        cluster, runner, "refused", {"to": REFUSED, "bcc": REFUSED_BCC}, scheduled
    )
    assert code == 69
    assert (entry["outcome"], entry["recipientsRejected"]) == ("Failed", 3)
    assert entry["messageId"].startswith("<tidings.")
    (record,) = records_of(cluster, "refused")
    spec = record["spec"]
    assert (spec["outcome"], spec["failure"]) == ("Failed", "permanent")
    assert (spec["recipients"]["accepted"], spec["recipients"]["refused"]) == (0, 3)
    assert spec["recipients"]["bcc"]["refused"] == [
        {"address": REFUSED_BCC[0], "reply": "550 5.1.1 No such user"}
    ]
    assert spec["messageId"] == entry["messageId"]
    assert "every recipient was refused" in spec["error"]

    # A restarted operator sees both finished Jobs again and writes nothing new.
    names = {
        r["metadata"]["name"] for name in ("weekly", "refused") for r in records_of(cluster, name)
    }
    restart_and_see_jobs(run_operator, [sent_job, refused_job])
    assert {r["metadata"]["name"] for r in records_of(cluster, "weekly")} | {
        r["metadata"]["name"] for r in records_of(cluster, "refused")
    } == names
    assert len(names) == 2

    # Deleting the reports leaves their records (not owned, so not garbage-collected).
    for name in ("weekly", "refused"):
        cluster.custom.delete_namespaced_custom_object(
            models.GROUP, models.VERSION, cluster.ns, models.PLURAL, name
        )
    wait_for(
        "the reports and their CronJobs to be gone",
        lambda: (
            not cluster.custom.list_namespaced_custom_object(
                models.GROUP, models.VERSION, cluster.ns, models.PLURAL
            )["items"]
            and cluster.cronjob("weekly") is None
        ),
    )
    assert len(records_of(cluster, "weekly")) == len(records_of(cluster, "refused")) == 1
