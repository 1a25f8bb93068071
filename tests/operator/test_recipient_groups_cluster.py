"""Recipient groups end to end: the real operator keeps each report's recipients ConfigMap
current from the RecipientGroups it watches, the real renderer (PodRunner, the pod's own
command and mounts) expands @name from it when the run starts, a real SMTP server on loopback
receives the mail. An edited group reaches the next run with no change to the report; a group
that does not exist fails the run as permanent naming it; records list the addresses sent to."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.support.operator_harness import Cluster, OperatorProcess, PodRunner, wait_for
from tests.support.report_bodies import manifest
from tests.support.smtp_mailbox import Mailbox, closed_relay_env, smtp_secret

from tidings import groups, models

pytestmark = pytest.mark.cluster


@pytest.fixture
def operator_env() -> dict[str, str]:
    return closed_relay_env()


def group_args(cluster: Cluster) -> tuple[str, str, str, str]:
    return (models.GROUP, models.VERSION, cluster.ns, models.GROUP_PLURAL)


def put_group(cluster: Cluster, name: str, addresses: list[str]) -> None:
    api = client.CustomObjectsApi(cluster.api)
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.GROUP_KIND,
        "metadata": {"name": name},
        "spec": {"addresses": addresses},
    }
    try:
        api.create_namespaced_custom_object(*group_args(cluster), body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        api.patch_namespaced_custom_object(
            *group_args(cluster), name, {"spec": {"addresses": addresses}}
        )


def configmap_groups(cluster: Cluster, report: str) -> dict[str, Any] | None:
    try:
        found = cluster.core.read_namespaced_config_map(groups.configmap_name(report), cluster.ns)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return json.loads((found.data or {})[groups.CONFIGMAP_KEY])


def records_of(cluster: Cluster, report_name: str) -> list[dict[str, Any]]:
    return client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        models.GROUP,
        models.VERSION,
        cluster.ns,
        models.DELIVERY_PLURAL,
        label_selector=f"tidings.dev/report={report_name}",
    )["items"]


def create_report(cluster: Cluster, name: str, recipients: dict[str, list[str]]) -> None:
    now = datetime.now(UTC)
    rows = [
        {"id": 1, "title": "Change", "status": "completed", "completed_at": now.isoformat()},
    ]
    cluster.create_report(
        manifest(
            name,
            source={"inline": {"rows": rows}},
            recipients=recipients,
            delivery={"smtpSecretRef": {"name": "team-smtp"}},
            failurePolicy={"disableAfter": 3, "retries": 0, "timeoutSeconds": 600},
        )
    )
    cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")


def run_once(cluster: Cluster, runner: PodRunner, name: str, scheduled: datetime) -> tuple:
    job = cluster.create_scheduled_job(name, scheduled)
    code = runner.execute(job)
    status = cluster.wait_status(
        name, "the run recorded", lambda s: any(h["jobName"] == job for h in s.get("history", []))
    )
    entry = next(h for h in status["history"] if h["jobName"] == job)
    return job, code, entry


def test_an_edited_group_reaches_the_next_run_and_a_missing_one_fails_naming_it(
    mailbox: tuple[Mailbox, int],
    run_operator: OperatorProcess,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    box, port = mailbox
    smtp_secret(cluster, port)
    runner = PodRunner(cluster, tmp_path)
    scheduled = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)

    put_group(cluster, "finance", ["ann@example.com", "bob@example.com"])
    create_report(cluster, "weekly", {"to": ["@finance"], "cc": ["lead@example.com"]})
    wait_for(
        "the recipients ConfigMap",
        lambda: (
            configmap_groups(cluster, "weekly")
            == {"groups": {"finance": ["ann@example.com", "bob@example.com"]}, "missing": []}
        ),
    )
    _, code, entry = run_once(cluster, runner, "weekly", scheduled)
    assert code == 0, entry["error"]
    rcpt_tos, _ = box.messages[-1]
    assert sorted(rcpt_tos) == ["ann@example.com", "bob@example.com", "lead@example.com"]
    (record,) = records_of(cluster, "weekly")
    listed = record["spec"]["recipients"]
    assert listed["to"]["accepted"] == ["ann@example.com", "bob@example.com"]
    assert listed["to"]["intended"] == ["@finance"]  # the spec as written
    assert listed["cc"]["accepted"] == ["lead@example.com"]

    # The group is edited; the report is not. The next run goes to the new members.
    generation = cluster.report("weekly")["metadata"]["generation"]
    put_group(cluster, "finance", ["ann@example.com", "cat@example.com"])
    wait_for(
        "the ConfigMap to follow the group",
        lambda: (
            (configmap_groups(cluster, "weekly") or {}).get("groups")
            == {"finance": ["ann@example.com", "cat@example.com"]}
        ),
    )
    second, code, entry = run_once(cluster, runner, "weekly", scheduled + timedelta(minutes=1))
    assert code == 0, entry["error"]
    rcpt_tos, _ = box.messages[-1]
    assert sorted(rcpt_tos) == ["ann@example.com", "cat@example.com", "lead@example.com"]
    assert cluster.report("weekly")["metadata"]["generation"] == generation
    records = {r["spec"]["jobName"]: r["spec"] for r in records_of(cluster, "weekly")}
    assert records[second]["recipients"]["to"]["accepted"] == [
        "ann@example.com",
        "cat@example.com",
    ]

    # A report naming a group nobody created yet is admitted; its run fails for good, naming it.
    create_report(cluster, "orphan", {"to": ["@auditors"], "cc": ["lead@example.com"]})
    wait_for(
        "the orphan's ConfigMap",
        lambda: configmap_groups(cluster, "orphan") == {"groups": {}, "missing": ["auditors"]},
    )
    sent = len(box.messages)
    _, code, entry = run_once(cluster, runner, "orphan", scheduled)
    assert code == 65
    assert entry["outcome"] == "Failed"
    assert f"recipient group @auditors does not exist in namespace {cluster.ns}" in entry["error"]
    assert len(box.messages) == sent  # nobody got anything, not even the plain cc address
    (record,) = records_of(cluster, "orphan")
    assert (record["spec"]["outcome"], record["spec"]["failure"]) == ("Failed", "permanent")
    assert "@auditors" in record["spec"]["error"]

    # Once the group exists, the report's ConfigMap has it for the next run.
    put_group(cluster, "auditors", ["dora@example.com"])
    wait_for(
        "the orphan's ConfigMap to find the group",
        lambda: (
            configmap_groups(cluster, "orphan")
            == {"groups": {"auditors": ["dora@example.com"]}, "missing": []}
        ),
    )
