"""The delivery relay's pure decisions (tidings.relay.policy) and what the operator puts in a pod
for it: which tokens name a pod, which run a Job is (the dedupe key), who is admitted."""

from __future__ import annotations

from typing import Any

import pytest

from tidings import contract
from tidings.controller import cronjob as cj
from tidings.controller import testsend
from tidings.controller.settings_load import load_settings
from tidings.relay.policy import (
    AUDIENCE,
    JOB_OWNERS,
    POD_NAME_EXTRA,
    POD_UID_EXTRA,
    Refused,
    admitted,
    check_owner,
    check_uid,
    identity_from_review,
    normalize,
    refusal,
    run_of,
)
from tidings.renderer.mail import RELAY_USERNAME, platform_values, settings_from_values


def review(**overrides: Any) -> dict[str, Any]:
    status = {
        "authenticated": True,
        "audiences": [AUDIENCE],
        "user": {
            "username": "system:serviceaccount:team:default",
            "extra": {POD_NAME_EXTRA: ["weekly-29000000-abcde"], POD_UID_EXTRA: ["pod-uid"]},
        },
    }
    return {**status, **overrides}


def test_a_pod_bound_token_for_the_audience_names_its_pod() -> None:
    who = identity_from_review(review(), AUDIENCE)
    assert (who.namespace, who.pod, who.pod_uid, who.service_account) == (
        "team",
        "weekly-29000000-abcde",
        "pod-uid",
        "default",
    )


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (review(authenticated=False), "not valid"),
        (review(audiences=["https://kubernetes.default.svc"]), f"not for audience {AUDIENCE}"),
        (review(user={"username": "alice", "extra": {}}), "not a service-account token"),
        (
            review(user={"username": "system:serviceaccount:team:default", "extra": {}}),
            "not bound to a pod",
        ),
        (None, "not valid"),
    ],
)
def test_other_tokens_are_refused_saying_why(status: dict | None, why: str) -> None:
    with pytest.raises(Refused, match=why):
        identity_from_review(status, AUDIENCE)


def obj(name: str, uid: str, *owners: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid, "ownerReferences": list(owners), **meta}}


def ref(kind: str, name: str, uid: str, api_version: str = "batch/v1", **extra: Any) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, **extra}


REPORT_API = "tidings.dev/v1alpha1"


def test_owner_chain_checks_kind_api_version_controller_and_uid() -> None:
    job = obj("weekly-1", "j1", ref("CronJob", "weekly", "c1", controller=True))
    assert check_owner(job, JOB_OWNERS)["name"] == "weekly"
    run_now = obj(
        "weekly-r1", "j2", ref("ScheduledReport", "weekly", "r1", REPORT_API, controller=True)
    )
    assert check_owner(run_now, JOB_OWNERS)["kind"] == "ScheduledReport"
    for forged in (
        obj("x", "j3"),  # no owner
        obj("x", "j3", ref("CronJob", "weekly", "c1")),  # not the controller
        obj("x", "j3", ref("Deployment", "weekly", "c1", "apps/v1", controller=True)),
        obj("x", "j3", ref("ScheduledReport", "weekly", "r1", "batch/v1", controller=True)),
    ):
        with pytest.raises(Refused, match="not a report's run"):
            check_owner(forged, JOB_OWNERS)
    owner = ref("CronJob", "weekly", "c1", controller=True)
    assert check_uid(obj("weekly", "c1"), owner)
    with pytest.raises(Refused, match="is gone"):
        check_uid(obj("weekly", "c2"), owner)  # same name, another object
    with pytest.raises(Refused, match="is gone"):
        check_uid(None, owner)


REPORT = {
    "metadata": {"name": "weekly", "namespace": "team", "uid": "r1", "annotations": {}},
    "spec": {
        "recipients": {"to": ["ciso@Example.com"], "cc": ["audit@example.com"], "bcc": ["b@x.io"]}
    },
}


def job(name: str, annotations: dict[str, str], env: dict[str, str] | None = None) -> dict:
    containers = [
        {"name": "renderer", "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    ]
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "annotations": annotations},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def test_every_job_of_one_slot_shares_a_key_an_explicit_run_does_not() -> None:
    slot = {contract.SCHEDULED_TIMESTAMP_ANNOTATION: "2025-03-31T09:00:00+02:00"}
    first = run_of(job("weekly-29056740", slot), REPORT)
    second = run_of(job("weekly-29056740-copy", slot), REPORT)
    assert first.key == second.key == "r1|2025-03-31T07:00:00Z|schedule"
    run_now = run_of(
        job(
            "weekly-rabc",
            {cj.RUN_NOW_LABEL: "sha256:aa"},
            {"TIDINGS_SCHEDULED_TIME": "2025-03-31T07:00:00Z"},
        ),
        REPORT,
    )
    assert run_now.key == "r1|2025-03-31T07:00:00Z|run-now:sha256:aa"
    other_value = run_of(job("weekly-rdef", {cj.RUN_NOW_LABEL: "sha256:bb"}), REPORT)
    assert other_value.trigger == "run-now:sha256:bb"
    by_hand = run_of(job("weekly-manual", {}), REPORT)
    assert by_hand.trigger == "job:uid-weekly-manual"
    from_name = run_of(job("weekly-29056740", {}), REPORT)
    assert from_name.scheduled == "2025-03-31T07:00:00Z"
    test = run_of(job("weekly-t1", {testsend.ANNOTATION: "me@example.com"}), REPORT)
    assert (test.test, test.trigger) == (True, "test:weekly-t1")


def test_only_the_current_spec_recipients_are_admitted() -> None:
    run = run_of(job("weekly-1", {}), REPORT)
    allowed = admitted(REPORT, run)
    assert allowed == {
        "ciso@example.com": "spec.recipients.to",
        "audit@example.com": "spec.recipients.cc",
        "b@x.io": "spec.recipients.bcc",
    }
    assert refusal("ciso@EXAMPLE.com", allowed, run) is None  # domains are case-insensitive
    assert refusal("CISO@example.com", allowed, run) is not None  # local parts are not
    why = refusal("mallory@outside.test", allowed, run)
    assert (
        why
        == "<mallory@outside.test> is not a recipient in the admitted spec of report team/weekly"
    )


def test_a_test_job_admits_only_the_reports_current_test_address() -> None:
    run = run_of(job("weekly-t1", {testsend.ANNOTATION: "mallory@outside.test"}), REPORT)
    assert admitted(REPORT, run) == {}  # the Job's own annotation does not count
    annotated = {
        **REPORT,
        "metadata": {**REPORT["metadata"], "annotations": {testsend.ANNOTATION: "qa@example.com"}},
    }
    allowed = admitted(annotated, run)
    assert refusal("qa@example.com", allowed, run) is None
    assert "not the admitted test address" in (refusal("ciso@example.com", allowed, run) or "")


def test_normalize_keeps_the_local_part() -> None:
    assert normalize(" Ann@Example.COM ") == "Ann@example.com"


def test_the_operator_points_pods_at_the_relay_with_a_projected_token() -> None:
    settings = load_settings(
        {
            "TIDINGS_RELAY_HOST": "198.18.1.20",
            "TIDINGS_SMTP_HOST": "platform.example",
            "TIDINGS_SMTP_CREDENTIALS_SECRET": "platform-login",
        }
    )
    report = {**REPORT, "spec": {**REPORT["spec"], "reportType": "changes_summary"}}
    pod = cj.desired_cronjob(report, settings, suspend=False)["spec"]["jobTemplate"]["spec"][
        "template"
    ]["spec"]
    (container,) = pod["containers"]
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["TIDINGS_SMTP_HOST"] == "198.18.1.20"
    assert env["TIDINGS_SMTP_PORT"] == "2525"
    assert env["TIDINGS_RELAY_TOKEN_DIR"] == contract.RELAY_TOKEN_DIR
    assert "TIDINGS_SMTP_PASSWORD" not in env and "TIDINGS_SMTP_USERNAME" not in env
    (volume,) = [v for v in pod["volumes"] if v["name"] == "relay-token"]
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": AUDIENCE, "expirationSeconds": 600, "path": "token"}
    assert pod["automountServiceAccountToken"] is False  # no API token, only the relay's


def test_without_the_relay_pods_keep_the_platform_relay() -> None:
    settings = load_settings({"TIDINGS_SMTP_HOST": "platform.example"})
    pod = cj.desired_cronjob(REPORT, settings, suspend=False)["spec"]["jobTemplate"]["spec"][
        "template"
    ]["spec"]
    env = {v["name"]: v.get("value") for v in pod["containers"][0]["env"]}
    assert env["TIDINGS_SMTP_HOST"] == "platform.example"
    assert "TIDINGS_RELAY_TOKEN_DIR" not in env
    assert all(v["name"] != "relay-token" for v in pod["volumes"])


def test_the_renderer_logs_in_to_the_relay_with_its_token(tmp_path) -> None:
    settings = settings_from_values(
        platform_values(
            {
                "TIDINGS_SMTP_HOST": "10.0.0.1",
                "TIDINGS_SMTP_FROM": "r@x.io",
                "TIDINGS_RELAY_TOKEN_DIR": str(tmp_path),
            }
        )
    )
    assert settings.username == RELAY_USERNAME
    assert settings.token_file == str(tmp_path / "token")
    assert settings.tls == "none"  # allowed: the token is short-lived and for the relay only
