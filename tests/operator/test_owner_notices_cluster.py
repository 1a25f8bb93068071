"""Owner notices on the real control plane: the operator mails spec.owners through the real
`tidings relay`, logged in with its own service-account token (TokenRequest, audience
tidings.dev/relay), and the relay forwards to a real SMTP server on loopback.

Shown: a permanent failure, a refusal and Disabled each reach the owners, with what failed, the
last error and how to reactivate; the rate limit holds across an operator restart (it lives in
status.ownerNoticeSentAt) while the Disabled notice still goes; a notice that cannot be sent
changes no counter; the operator's token reaches only the named report's owners, and an
editor's token cannot pose as the operator."""

from __future__ import annotations

import email
import email.policy
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from kubernetes import client
from tests.support.operator_harness import (
    MONDAY,
    Cluster,
    OperatorProcess,
    StandInKubelet,
    history,
    result_line,
)
from tests.support.relay_harness import (
    MINTED,
    SENDER,
    PlatformRelay,
    RelayProcess,
    mint,
    serve_platform,
)
from tests.support.report_bodies import manifest

from tidings import models
from tidings.relay.policy import AUDIENCE
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster

OPERATOR_ACCOUNT = "tidings-operator"
OWNER = "owner@example.com"
DEPUTY = "deputy@example.com"
HOUR = 3600


@pytest.fixture
def platform() -> Iterator[tuple[PlatformRelay, int]]:
    yield from serve_platform()


@pytest.fixture
def operator_ns(kube: client.ApiClient) -> Iterator[Cluster]:
    """The operator's namespace: its service account, the relay's dedupe records."""
    core = client.CoreV1Api(kube)
    name = f"tidings-system-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_service_account(
        name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=OPERATOR_ACCOUNT))
    )
    yield Cluster(kube, name)
    core.delete_namespace(name)


@pytest.fixture
def relay(
    control_plane: ControlPlane,
    operator_ns: Cluster,
    platform: tuple[PlatformRelay, int],
    tmp_path: Path,
) -> Iterator[RelayProcess]:
    process = RelayProcess(
        control_plane.kubeconfig,
        operator_ns.ns,
        platform[1],
        tmp_path / "relay.log",
        TIDINGS_RELAY_OPERATOR_ACCOUNT=f"{operator_ns.ns}:{OPERATOR_ACCOUNT}",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        text = process.log()
        for token in MINTED:
            assert token not in text, "the relay logged a token"
        MINTED.clear()


def _operator(plane: ControlPlane, namespace: str, relay: RelayProcess, tmp: Path, token: Path):
    return OperatorProcess(
        plane.kubeconfig,
        namespace,
        tmp / "operator.log",
        {
            "TIDINGS_RELAY_HOST": "127.0.0.1",
            "TIDINGS_RELAY_PORT": str(relay.port),
            "TIDINGS_SMTP_FROM": SENDER,
            "TIDINGS_OWNER_NOTICE_TOKEN_FILE": str(token),
            "TIDINGS_OWNER_NOTICE_MIN_INTERVAL_SECONDS": str(HOUR),
        },
    )


def _notices(box: PlatformRelay) -> list[tuple[list[str], EmailMessage]]:
    return [
        (rcpts, email.message_from_bytes(raw, policy=email.policy.default))
        for rcpts, raw in box.messages
    ]


def _body(message: EmailMessage) -> str:
    return message.get_content()


def _notice_of(cluster: Cluster, name: str, job: str) -> dict:
    def decided(status: dict) -> bool:
        note = history(status).get(job, {}).get("ownerNotice") or ""
        return bool(note) and not note.endswith(": pending")

    return cluster.wait_status(name, f"the owner notice of {job}", decided)


def _run(cluster: Cluster, kubelet: StandInKubelet, name: str, week: int, code: int, **result):
    from datetime import timedelta

    job = cluster.create_scheduled_job(name, MONDAY + timedelta(weeks=week))
    kubelet.run(job, code, result_line(code == 0, **result))
    cluster.wait_status(name, f"{job} counted", lambda s: job in history(s))
    return job


def test_owners_are_told_through_the_relay_and_the_limit_survives_a_restart(
    control_plane: ControlPlane,
    report_crd: None,
    namespace: str,
    cluster: Cluster,
    kubelet: StandInKubelet,
    operator_ns: Cluster,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    tmp_path: Path,
) -> None:
    box, _ = platform
    token = tmp_path / "relay-token"
    token.write_text(mint(operator_ns, OPERATOR_ACCOUNT, AUDIENCE, seconds=HOUR))
    operator = _operator(control_plane, namespace, relay, tmp_path, token)
    operator.start()
    policy = {"disableAfter": 3, "retries": 0, "timeoutSeconds": 600}
    cluster.create_report(manifest("weekly", owners=[OWNER, DEPUTY], failurePolicy=policy))
    cluster.create_report(manifest("refused", owners=[OWNER], failurePolicy=policy))
    for name in ("weekly", "refused"):
        cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")

    # 1. A permanent failure.
    error = "SMTP 550 5.1.1 <ciso@example.com>: no such user"
    failed = _run(cluster, kubelet, "weekly", 1, 69, failure="permanent", error=error)
    status = _notice_of(cluster, "weekly", failed)
    assert history(status)[failed]["ownerNotice"] == "PermanentFailure: sent to 2 owner(s)"
    assert status["ownerNoticeSentAt"]
    ((rcpts, first),) = _notices(box)
    assert sorted(rcpts) == [DEPUTY, OWNER]
    assert first["Subject"] == f"[Tidings] report {namespace}/weekly failed permanently"
    assert error in _body(first) and failed in _body(first)
    assert status["consecutiveFailures"] == 1

    # 2. A refusal (another report: its own limit).
    partial = "partially delivered: <cfo@example.com> refused (550 mailbox unavailable)"
    refused = _run(
        cluster, kubelet, "refused", 1, 0, recipientsAccepted=1, recipientsRejected=1, error=partial
    )
    status = _notice_of(cluster, "refused", refused)
    assert history(status)[refused]["ownerNotice"] == "RecipientsRefused: sent to 1 owner(s)"
    rcpts, second = _notices(box)[1]
    assert rcpts == [OWNER]
    assert second["Subject"] == f"[Tidings] report {namespace}/refused had recipients refused"
    assert partial in _body(second)

    # 3. Restarted: the limit counts from status, not from the old process's memory.
    sent_at = cluster.status("weekly")["ownerNoticeSentAt"]
    operator.stop()
    operator = _operator(control_plane, namespace, relay, tmp_path, token)
    operator.start()
    try:
        again = _run(cluster, kubelet, "weekly", 2, 69, failure="permanent", error=error)
        status = _notice_of(cluster, "weekly", again)
        assert "rate-limited" in history(status)[again]["ownerNotice"]
        assert status["ownerNoticeSentAt"] == sent_at
        assert len(box.messages) == 2

        # 4. Disabled: always sent, with how to reactivate.
        last = _run(cluster, kubelet, "weekly", 3, 75, error="SMTP 451 try again later")
        status = _notice_of(cluster, "weekly", last)
        assert status["phase"] == "Disabled"
        assert history(status)[last]["ownerNotice"] == "Disabled: sent to 2 owner(s)"
        assert status["ownerNoticeSentAt"] > sent_at
        rcpts, disabled = _notices(box)[2]
        assert disabled["Subject"] == f"[Tidings] report {namespace}/weekly is Disabled"
        text = _body(disabled)
        assert "Disabled after 3 consecutive failed runs" in text
        assert "SMTP 451 try again later" in text
        assert f"kubectl tidings reactivate weekly -n {namespace}" in text

        # 5. A notice that cannot be sent (the relay is down) changes no counter.
        relay.stop()
        cluster.patch_report("refused", {"spec": {"failurePolicy": {**policy, "disableAfter": 1}}})
        cluster.wait_status("refused", "generation 2", lambda s: s["observedGeneration"] == 2)
        before = cluster.status("refused")
        lost = _run(cluster, kubelet, "refused", 2, 69, failure="permanent", error=error)
        status = _notice_of(cluster, "refused", lost)
        note = history(status)[lost]["ownerNotice"]
        assert note.startswith("Disabled: not sent (") and "counters are unchanged" in note
        assert (status["phase"], status["consecutiveFailures"]) == ("Disabled", 1)
        assert status["lastError"] == error
        assert status["ownerNoticeSentAt"] == before["ownerNoticeSentAt"]
        assert len(box.messages) == 3
    finally:
        operator.stop()


def test_the_operator_token_reaches_only_the_named_reports_owners(
    control_plane: ControlPlane,
    report_crd: None,
    cluster: Cluster,
    operator_ns: Cluster,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
) -> None:
    box, _ = platform
    cluster.create_report(manifest("weekly", owners=[OWNER]))
    operator_token = mint(operator_ns, OPERATOR_ACCOUNT, AUDIENCE)
    login = f"owner-notice:{cluster.ns}/weekly/probe:Disabled"

    def submit(user: str, token: str, rcpts: list[str]) -> dict[str, tuple[int, bytes]]:
        replies: dict[str, tuple[int, bytes]] = {}
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as smtp:
            smtp.ehlo()
            try:
                smtp.login(user, token)
            except smtplib.SMTPAuthenticationError as refused:
                return {"AUTH": (refused.smtp_code, refused.smtp_error)}
            smtp.mail(SENDER)
            replies = {a: smtp.rcpt(a) for a in rcpts}
            smtp.rset()
        return replies

    # The recipients of the report are not its owners: only spec.owners.
    replies = submit(login, operator_token, [OWNER, "ciso@example.com", "x@outside.example"])
    assert replies[OWNER][0] == 250
    for other in ("ciso@example.com", "x@outside.example"):
        assert replies[other][0] == 550
        assert b"not in spec.owners of the admitted report" in replies[other][1]
    # A login naming no report, or a report that is not there.
    assert submit("owner-notice:nonsense", operator_token, [OWNER])["AUTH"][0] == 535
    gone = submit(f"owner-notice:{cluster.ns}/missing/x", operator_token, [OWNER])
    assert gone["AUTH"][0] == 535 and b"is gone" in gone["AUTH"][1]
    # The namespace's own service account, with the operator's login: the pod path, refused.
    editor_token = mint(cluster, "default", AUDIENCE)
    assert submit(login, editor_token, [OWNER])["AUTH"][0] == 535
    assert box.messages == []


def test_a_notice_owed_when_the_operator_stopped_is_sent_at_start(
    control_plane: ControlPlane,
    report_crd: None,
    namespace: str,
    cluster: Cluster,
    operator_ns: Cluster,
    relay: RelayProcess,
    platform: tuple[PlatformRelay, int],
    tmp_path: Path,
) -> None:
    """The status write that counted the disabling run marked its notice pending; the operator
    stopped before sending it. The next one sends it, once."""
    box, _ = platform
    cluster.create_report(manifest("weekly", owners=[OWNER]))
    ready = {"type": "Ready", "status": "False", "reason": "Disabled", "message": "Disabled"}
    ready["lastTransitionTime"] = "2026-12-01T09:00:05Z"
    entry = {
        "jobName": "weekly-29000000",
        "outcome": "Failed",
        "finishedAt": "2026-12-01T09:00:05Z",
        "error": "SMTP 451 try again later",
        "ownerNotice": "Disabled: pending",
    }
    owed = {
        "phase": "Disabled",
        "observedGeneration": 1,
        "consecutiveFailures": 3,
        "lastError": entry["error"],
        "conditions": [ready],
        "history": [entry],
    }
    cluster.custom.patch_namespaced_custom_object_status(
        models.GROUP, models.VERSION, namespace, models.PLURAL, "weekly", {"status": owed}
    )
    token = tmp_path / "relay-token"
    token.write_text(mint(operator_ns, OPERATOR_ACCOUNT, AUDIENCE, seconds=HOUR))
    operator = _operator(control_plane, namespace, relay, tmp_path, token)
    operator.start()
    try:
        status = cluster.wait_status(
            "weekly",
            "the owed notice sent",
            lambda s: history(s)["weekly-29000000"]["ownerNotice"] != "Disabled: pending",
        )
        assert history(status)["weekly-29000000"]["ownerNotice"] == "Disabled: sent to 1 owner(s)"
        assert (status["phase"], status["consecutiveFailures"]) == ("Disabled", 3)
        ((rcpts, mail),) = _notices(box)
        assert rcpts == [OWNER]
        assert mail["Subject"] == f"[Tidings] report {namespace}/weekly is Disabled"
        assert "SMTP 451 try again later" in _body(mail)
    finally:
        operator.stop()
