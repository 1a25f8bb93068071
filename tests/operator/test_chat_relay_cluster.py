"""Slack and Teams through the relay's channel front, against the real control plane: a run's
pod (the real renderer, with a pod-bound token from the TokenRequest API) mails through `tidings
relay` and hands it each channel's body and credential; the relay runs Slack's upload flow on
its own API base (TIDINGS_SLACK_API_URL of the relay, not the pod's) to the channel the report
admits, and posts the Teams card only to a workflow URL on the admitted host.

Shown: one run's record lists both channels' outcomes; what the pod cannot change (the Slack
channel, the Slack API base, the Teams host) it does not change; a workflow URL for another
host is refused with nothing posted; Slack's errors come back through the relay in their
classes (channel_not_found permanent, ratelimited transient after its Retry-After)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from tests.support.channel_fakes import FakeSlack, FakeTeams, slack_api, teams_workflow
from tests.support.operator_harness import Cluster, OperatorProcess, wait_for
from tests.support.pki import smtp_pki
from tests.support.relay_harness import (
    MINTED,
    PlatformRelay,
    RelayPodRunner,
    RelayProcess,
    mint,
    relay_env,
    serve_platform,
)
from tests.support.report_bodies import manifest

from tidings.controller.cronjob import cronjob_name
from tidings.relay.policy import AUDIENCE
from tidings.renderer.channels import ChannelFailed, Summary
from tidings.renderer.channels.teams import Teams
from tidings.renderer.channels.webhook import Relay
from tidings_dev.cluster import ControlPlane
from tidings_dev.procs import free_port

pytestmark = pytest.mark.cluster

TOKEN = "xoxb-test-token"


@pytest.fixture
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, FakeSlack, FakeTeams]]:
    pki = smtp_pki(tmp_path_factory.mktemp("chat-pki"))
    with slack_api(pki) as slack, teams_workflow(pki) as teams:
        yield pki.ca, slack, teams


@pytest.fixture
def relay(
    control_plane: ControlPlane,
    kube: client.ApiClient,
    chat: tuple[Path, FakeSlack, FakeTeams],
    tmp_path: Path,
) -> Iterator[RelayProcess]:
    """`tidings relay` with its channel front; it alone trusts the fakes' CA and knows the
    Slack API base."""
    core = client.CoreV1Api(kube)
    home = f"tidings-system-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=home)))
    ca, slack, _ = chat
    platform = serve_platform(PlatformRelay())
    _, upstream = next(platform)
    http_port = free_port()
    process = RelayProcess(
        control_plane.kubeconfig,
        home,
        upstream,
        tmp_path / "relay.log",
        TIDINGS_RELAY_HTTP_PORT=str(http_port),
        SSL_CERT_FILE=str(ca),
        TIDINGS_SLACK_API_URL=slack.url,
    )
    process.start()
    process.http_port = http_port  # type: ignore[attr-defined]

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", http_port), 1).close()
        except OSError:
            return False
        return True

    wait_for("the relay's channel front", listening, timeout=60)
    try:
        yield process
    finally:
        process.stop()
        next(platform, None)
        core.delete_namespace(home)
        text = process.log()
        for secret in (TOKEN, "sig=test-signature", *MINTED):
            assert secret not in text, "the relay logged a credential"
        MINTED.clear()


@pytest.fixture
def operator_env(relay: RelayProcess) -> dict[str, str]:
    return {**relay_env(relay), "TIDINGS_RELAY_HTTP_PORT": str(relay.http_port)}  # type: ignore[attr-defined]


def secret(cluster: Cluster, name: str, key: str, value: str) -> None:
    cluster.core.create_namespaced_secret(
        cluster.ns,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={key: value}),
    )


def chat_report(cluster: Cluster, name: str, teams_url: str, retries: int = 0) -> None:
    secret(cluster, f"{name}-bot", "token", TOKEN)
    secret(cluster, f"{name}-flow", "url", teams_url)
    channels = [
        {
            "slack": {
                "channel": "C0123ABCD",
                "tokenSecretRef": {"name": f"{name}-bot", "key": "token"},
            }
        },
        {"teams": {"host": "127.0.0.1", "urlSecretRef": {"name": f"{name}-flow", "key": "url"}}},
    ]
    done = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    row = {"id": 1, "title": "Deploy", "status": "completed", "completed_at": done}
    cluster.create_report(
        manifest(
            name,
            source={"inline": {"rows": [row]}},
            delivery={"channels": channels},
            failurePolicy={"disableAfter": 10, "retries": retries, "timeoutSeconds": 600},
        )
    )
    cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")


def run(cluster: Cluster, name: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """One scheduled run by the stand-in kubelet; the job name and its record."""
    job = cluster.create_scheduled_job(
        cronjob_name(name), datetime.now(UTC).replace(second=0, microsecond=0)
    )
    # The pod's own Slack API base would be an attacker's: the relay's is used.
    runner = RelayPodRunner(
        cluster, tmp_path, node_env={"TIDINGS_SLACK_API_URL": "https://attacker.example.net/api/"}
    )
    runner.execute(job)
    wait_for("the run's record", lambda: any(r for r in cluster.records(name)), timeout=60)
    (record,) = cluster.records(name)
    return job, record


def test_slack_and_teams_through_the_relay_with_one_record(
    run_operator: OperatorProcess,
    relay: RelayProcess,
    chat: tuple[Path, FakeSlack, FakeTeams],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    _, slack, teams = chat
    chat_report(cluster, "relayed", teams.url)
    template = cluster.cronjob(cronjob_name("relayed"))["spec"]["jobTemplate"]["spec"]
    env = {v["name"]: v.get("value") for v in template["template"]["spec"]["containers"][0]["env"]}
    assert env["TIDINGS_CHANNEL_RELAY_URL"] == f"http://127.0.0.1:{relay.http_port}"  # type: ignore[attr-defined]
    job, record = run(cluster, "relayed", tmp_path)
    by_name = {c["name"]: c for c in record["spec"]["channels"]}
    assert by_name["slack[0]"]["outcome"] == "accepted", by_name
    assert by_name["slack[0]"]["reply"] == "shared 1 file(s) in C0123ABCD"
    assert by_name["teams[1]"]["outcome"] == "accepted", by_name
    assert record["spec"]["outcome"] == "Delivered"
    assert slack.methods() == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    assert all(
        c.headers["Authorization"] == f"Bearer {TOKEN}" for c in slack.calls if c.path != "upload"
    )
    (shared,) = slack.messages
    assert shared["channel_id"] == "C0123ABCD"
    (call,) = teams.calls
    assert "X-Tidings-Credential" not in call.headers and "Authorization" not in call.headers
    assert call.headers["User-Agent"] == "tidings-relay"
    status = cluster.wait_status(
        "relayed",
        "the run in history",
        lambda s: any(h["jobName"] == job for h in s.get("history", [])),
    )
    (entry,) = status["history"]
    assert entry["channels"] == ["slack[0] accepted", "teams[1] accepted"]


def summary() -> Summary:
    return Summary(
        namespace="qa",
        report="x",
        report_uid="u",
        title="X",
        report_type="changes_summary",
        scheduled="2026-12-02T08:00:00Z",
        window_start="2026-11-25T00:00:00Z",
        window_end="2026-12-02T00:00:00Z",
        rows=0,
        figures={},
        outcome="Delivered",
    )


def test_a_workflow_url_for_another_host_is_refused_by_the_relay(
    run_operator: OperatorProcess,
    relay: RelayProcess,
    chat: tuple[Path, FakeSlack, FakeTeams],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    """A pod that claims another workflow URL (her own copy of the template, a Secret swapped
    for a URL elsewhere) gets a refusal naming the admitted host; nothing is posted."""
    _, _, teams = chat
    chat_report(cluster, "forged", teams.url)
    job = cluster.create_scheduled_job(
        cronjob_name("forged"), datetime.now(UTC).replace(second=0, microsecond=0)
    )
    pod = wait_for("the run's pod", lambda: (pods := cluster.pods(job)) and pods[0])
    token_file = tmp_path / "token"
    token_file.write_text(mint(cluster, "default", AUDIENCE, pod))
    elsewhere = teams.url.replace("127.0.0.1", "localhost")  # the same server, another host
    channel = Teams(
        "teams[1]",
        "localhost",  # what the pod claims; the relay compares with the spec's host
        elsewhere,
        index=1,
        relay=Relay(f"http://127.0.0.1:{relay.http_port}", str(token_file)),  # type: ignore[attr-defined]
    )
    with pytest.raises(ChannelFailed) as refused:
        channel.send(summary(), time.monotonic() + 30)
    assert refused.value.failure == "permanent"
    assert str(refused.value).startswith("relay: channel 1 of report ")
    assert "not on the admitted host 127.0.0.1" in str(refused.value)
    # Without its credential: no workflow URL for Teams, no bot token for Slack.
    base = f"http://127.0.0.1:{relay.http_port}/v1/channels"  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {token_file.read_text()}"}
    bare = {
        index: httpx.post(f"{base}/{index}", content=b"{}", headers=auth, timeout=30)
        for index in (0, 1)
    }
    assert bare[0].status_code == 403 and "no bot token" in bare[0].text
    assert bare[1].status_code == 403 and "not https://" in bare[1].text
    assert teams.calls == []


def test_slacks_errors_keep_their_classes_through_the_relay(
    run_operator: OperatorProcess,
    relay: RelayProcess,
    chat: tuple[Path, FakeSlack, FakeTeams],
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    _, slack, teams = chat
    slack.faults = ["ratelimited", "channel_not_found"]  # a retry, then a permanent refusal
    chat_report(cluster, "erring", teams.url, retries=2)
    _, record = run(cluster, "erring", tmp_path)
    by_name = {c["name"]: c for c in record["spec"]["channels"]}
    refused = by_name["slack[0]"]
    assert (refused["outcome"], refused["failure"], refused["attempts"]) == (
        "refused",
        "permanent",
        2,
    )
    assert "channel_not_found" in refused["reply"]
    assert by_name["teams[1]"]["outcome"] == "accepted"
    assert record["spec"]["outcome"] == "Delivered"  # the mail and Teams got through
    assert slack.messages == []
