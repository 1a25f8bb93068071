"""Channels in the operator, pure: a channel's outcome from the result line goes into the
ReportDelivery record (bounded, redacted) and, as one line each, into status history; a
channel's signing Secret is mounted and its reference checked like every other; a new
destination outside the allowed hosts needs the schedule verb."""

from __future__ import annotations

import pytest
from tests.support.job_outcomes import NOW, finished_run, record_outcome
from tests.support.report_bodies import report_body, with_status

from tidings.contract import CHANNEL_RELAY_ENV
from tidings.controller import cronjob, permissions, records
from tidings.controller.records import Retention
from tidings.controller.run_outcome import job_outcome, job_result
from tidings.controller.settings import Settings
from tidings.relay import http_forward, policy

HOOK = {"url": "https://hooks.example.com/t", "signingSecretRef": {"name": "hk", "key": "k"}}
CHANNELS = [
    {
        "name": "webhook[0]",
        "type": "webhook",
        "destination": "hooks.example.com",
        "outcome": "accepted",
        "reply": "HTTP 200",
        "attempts": 2,
        "idempotencyKey": "tidings-abc",
    },
    {
        "name": "webhook[1]",
        "type": "webhook",
        "destination": "other.example.com",
        "outcome": "refused",
        "failure": "permanent",
        "reply": "HTTP 403: " + "x" * 2000,
        "attempts": 1,
    },
]


def test_each_channel_is_in_the_record_and_in_history() -> None:
    job, pods = finished_run(
        {"outcome": "Delivered", "recipientsAccepted": 1, "channels": CHANNELS}
    )
    outcome = job_outcome(job, pods, NOW)
    assert outcome is not None
    record = records.delivery_record(report_body(), job, outcome, job_result(pods), Retention())
    first, second = record["spec"]["channels"]
    assert first == {**CHANNELS[0]}
    assert second["outcome"] == "refused" and second["failure"] == "permanent"
    assert len(second["reply"]) == 1024  # bounded as the schema says
    report = with_status(report_body(), phase="Active", observedGeneration=1)
    record_outcome(report, outcome)
    (entry,) = report["status"]["history"]
    assert entry["channels"] == ["webhook[0] accepted", "webhook[1] refused"]


def test_a_run_without_channels_reads_as_before() -> None:
    job, pods = finished_run({"outcome": "Delivered", "recipientsAccepted": 1})
    outcome = job_outcome(job, pods, NOW)
    record = records.delivery_record(report_body(), job, outcome, job_result(pods), Retention())
    assert record["spec"]["channels"] == []
    report = with_status(report_body(), phase="Active", observedGeneration=1)
    record_outcome(report, outcome)
    assert "channels" not in report["status"]["history"][0]


def test_the_signing_secret_is_mounted_and_its_reference_checked() -> None:
    report = report_body(delivery={"channels": [{"webhook": HOOK}]})
    cj = cronjob.desired_cronjob(report, Settings(), suspend=False)
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "channels"]
    assert volume["projected"]["sources"] == [
        {"secret": {"name": "hk", "items": [{"key": "k", "path": "0/key"}]}}
    ]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "channels"]
    assert mount == {"name": "channels", "mountPath": "/etc/tidings/channels", "readOnly": True}
    refs = permissions.references(report["spec"])
    assert (
        permissions.Reference("spec.delivery.channels[0].webhook.signingSecretRef", "secrets", "hk")
        in refs
    )


def test_new_destinations_outside_the_allowed_hosts_need_the_verb() -> None:
    spec = report_body(delivery={"channels": [{"webhook": HOOK}]})["spec"]
    (need,) = permissions.channel_needs(None, spec, ())
    assert need.path == "spec.delivery.channels[0].webhook.url"
    assert "hooks.example.com" in need.change
    assert permissions.channel_needs(None, spec, ("hooks.example.com",)) == []
    assert permissions.channel_needs(None, spec, (".example.com",)) == []
    assert permissions.channel_needs(spec, spec, ()) == []  # already admitted: nothing new


def test_pods_post_through_the_relay_when_it_has_a_channel_port() -> None:
    report = report_body(delivery={"channels": [{"webhook": HOOK}]})

    def env(settings: Settings) -> dict[str, str]:
        cj = cronjob.desired_cronjob(report, settings, suspend=False)
        (container,) = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value", "") for e in container["env"]}

    relayed = env(Settings(relay_host="10.0.0.7", relay_port=2525, relay_http_port=8025))
    assert relayed[CHANNEL_RELAY_ENV] == "http://10.0.0.7:8025"
    assert CHANNEL_RELAY_ENV not in env(Settings(relay_host="10.0.0.7"))  # no channel port
    assert CHANNEL_RELAY_ENV not in env(Settings(relay_http_port=8025))  # no relay


def test_the_relay_admits_only_the_reports_own_channels() -> None:
    report = report_body(delivery={"channels": [{"webhook": HOOK}]})
    run = policy.Run("team-payments", "payments-weekly", "uid", "job", "", "schedule", False)
    assert http_forward.admitted_channel(report, run, 0) == HOOK["url"]
    for index in (1, 5):
        with pytest.raises(policy.Refused, match=f"admits no channel {index}"):
            http_forward.admitted_channel(report, run, index)
    test_run = policy.Run("team-payments", "payments-weekly", "uid", "job", "", "test:j", True)
    with pytest.raises(policy.Refused, match="a test send"):
        http_forward.admitted_channel(report, test_run, 0)
