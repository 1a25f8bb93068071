"""The CronJob and run-now Job built for a report match the renderer run contract."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml
from tests.support.report_bodies import report_body

from tidings import contract
from tidings.controller import cronjob
from tidings.controller.settings import Settings
from tidings.schedule import scheduled_time_from_job_name

SETTINGS = Settings(smtp_host="relay.mail.svc", smtp_from="reports@example.com")


def _pod(cj: dict) -> dict:
    return cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _env(cj: dict) -> dict:
    env = _pod(cj)["containers"][0]["env"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


def test_schedule_zone_policy_and_owner() -> None:
    report = report_body()
    cj = cronjob.desired_cronjob(report, SETTINGS, suspend=False)
    spec = cj["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == (
        "0 9 * * 1",
        "Europe/Berlin",
        False,
    )
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == SETTINGS.starting_deadline_seconds
    job = spec["jobTemplate"]["spec"]
    # Retries (failurePolicy.retries: 2) happen inside the one pod; a second pod would repeat
    # them and could mail the window again, even after a disruption (no Ignore rule).
    assert job["backoffLimit"] == 0
    assert job["activeDeadlineSeconds"] == 600
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob"
    assert rule["onExitCodes"] == {
        "containerName": "renderer",
        "operator": "In",
        "values": [65, 69],
    }
    (owner,) = cj["metadata"]["ownerReferences"]
    assert owner["kind"] == "ScheduledReport" and owner["controller"] is True
    assert owner["uid"] == report["metadata"]["uid"]
    # Jobs and pods carry the report's uid label, so they can be found without the CronJob.
    uid_label = {contract.REPORT_UID_LABEL: report["metadata"]["uid"]}
    assert uid_label.items() <= spec["jobTemplate"]["metadata"]["labels"].items()
    assert (
        uid_label.items() <= spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_defaults_apply_when_failure_policy_is_absent() -> None:
    report = report_body()
    del report["spec"]["failurePolicy"]
    job = cronjob.desired_cronjob(report, SETTINGS, suspend=False)["spec"]["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (0, 600)


def test_manual_report_gets_a_suspended_placeholder() -> None:
    cj = cronjob.desired_cronjob(report_body(schedule=""), SETTINGS, suspend=False)
    assert cj["spec"]["schedule"] == cronjob.MANUAL_PLACEHOLDER_SCHEDULE
    assert cj["spec"]["suspend"] is True


def test_pod_is_locked_down() -> None:
    pod = _pod(cronjob.desired_cronjob(report_body(), SETTINGS, suspend=False))
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == SETTINGS.run_as_user > 0
    (container,) = pod["containers"]
    assert container["image"] == SETTINGS.renderer_image
    assert container["command"] == ["tidings", "run"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePath"] == "/dev/termination-log"


def test_run_contract_env_and_mounts_for_sql_smtp_and_template() -> None:
    report = report_body(
        source={"sql": {"connectionSecretRef": {"name": "changes-db", "key": "url"}, "query": "x"}},
        delivery={"smtpSecretRef": {"name": "team-smtp"}},
        templateRef={"name": "layouts", "key": "weekly.j2"},
    )
    cj = cronjob.desired_cronjob(report, SETTINGS, suspend=False)
    pod = _pod(cj)
    env = _env(cj)
    assert env["TIDINGS_SMTP_HOST"] == "relay.mail.svc"
    assert env["TIDINGS_SMTP_PORT"] == "25"
    assert env["TIDINGS_SMTP_FROM"] == "reports@example.com"
    assert env["TIDINGS_SMTP_TLS"] == "none"
    assert env["TIDINGS_JOB_NAME"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}
    }
    assert env["HOME"] == "/tmp"
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {
        "report": "/etc/tidings/report",
        "tmp": "/tmp",
        "source": "/etc/tidings/source",
        "smtp": "/etc/tidings/smtp",
        "template": "/etc/tidings/template",
        "branding": "/etc/tidings/branding",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["report"]["downwardAPI"] == {
        "items": [
            {
                "path": "report.yaml",
                "fieldRef": {"fieldPath": "metadata.annotations['tidings.dev/report-snapshot']"},
            }
        ]
    }
    assert volumes["source"]["secret"] == {
        "secretName": "changes-db",
        "items": [{"key": "url", "path": "value"}],
    }
    assert volumes["smtp"]["secret"] == {"secretName": "team-smtp"}
    assert volumes["template"]["configMap"]["items"] == [
        {"key": "weekly.j2", "path": "template.html.j2"}
    ]


def test_http_auth_secret_is_the_source_secret_and_inline_has_none() -> None:
    http = {"http": {"url": "https://x.test/a", "authSecretRef": {"name": "tok", "key": "h"}}}
    pod = _pod(cronjob.desired_cronjob(report_body(source=http), SETTINGS, suspend=False))
    assert {v["name"]: v for v in pod["volumes"]}["source"]["secret"]["secretName"] == "tok"
    inline = _pod(cronjob.desired_cronjob(report_body(), SETTINGS, suspend=False))
    assert {v["name"] for v in inline["volumes"]} == {"report", "tmp", "branding"}


def test_unset_relay_settings_are_not_passed() -> None:
    cj = cronjob.desired_cronjob(report_body(), Settings(), suspend=False)
    assert "TIDINGS_SMTP_HOST" not in _env(cj)


def test_relay_credentials_come_by_reference_from_the_pods_namespace() -> None:
    settings = Settings(smtp_host="relay.mail.svc", smtp_credentials_secret="relay-login")
    env = _env(cronjob.desired_cronjob(report_body(), settings, suspend=False))
    for key in ("username", "password"):
        ref = env[f"TIDINGS_SMTP_{key.upper()}"]["secretKeyRef"]
        assert ref == {"name": "relay-login", "key": key, "optional": True}
    assert "TIDINGS_SMTP_PASSWORD" not in _env(
        cronjob.desired_cronjob(report_body(), SETTINGS, False)
    )


def test_pod_template_carries_the_report_snapshot() -> None:
    report = report_body()
    cj = cronjob.desired_cronjob(report, SETTINGS, suspend=False)
    template = cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
    snapshot = yaml.safe_load(template[contract.SNAPSHOT_ANNOTATION])
    assert snapshot["kind"] == "ScheduledReport"
    assert snapshot["metadata"]["uid"] == report["metadata"]["uid"]
    assert snapshot["metadata"]["namespace"] == "team-payments"
    assert snapshot["spec"] == report["spec"]


def test_long_names_are_shortened_uniquely() -> None:
    a, b = "a" * 60 + "-one", "a" * 60 + "-two"
    assert len(cronjob.cronjob_name(a)) <= cronjob.MAX_CRONJOB_NAME
    assert cronjob.cronjob_name(a) != cronjob.cronjob_name(b)
    assert cronjob.cronjob_name("short") == "short"
    # <cronjob>-<minutes> and the run-now name must both fit a 63-character label value.
    assert len(cronjob.run_now_job_name(a, "v")) <= 63


def test_run_now_job_is_deterministic_per_value() -> None:
    cj = cronjob.desired_cronjob(report_body(), SETTINGS, suspend=True)
    report = report_body()
    now = datetime(2025, 3, 3, 8, 15, tzinfo=UTC)
    first = cronjob.run_now_job(report, cj, "2025-03-03a", now)
    again = cronjob.run_now_job(report, cj, "2025-03-03a", now)
    other = cronjob.run_now_job(report, cj, "2025-03-03b", now)
    assert first["metadata"]["name"] == again["metadata"]["name"] != other["metadata"]["name"]
    assert scheduled_time_from_job_name(first["metadata"]["name"]) is None
    env = {e["name"]: e.get("value") for e in _pod(cj)["containers"][0]["env"]}
    assert "TIDINGS_SCHEDULED_TIME" not in env  # the template itself is untouched
    job_env = first["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "TIDINGS_SCHEDULED_TIME", "value": "2025-03-03T08:15:00Z"} in job_env
    # Owned by the report, not the CronJob: its controller would post UnexpectedJob.
    assert first["metadata"]["ownerReferences"] == [cronjob.owner_reference(report)]
    assert first["metadata"]["finalizers"] == [contract.FINALIZER]
    labels = first["metadata"]["labels"]
    assert cj["spec"]["jobTemplate"]["metadata"]["labels"].items() <= labels.items()
    assert labels[contract.RUN_NOW_LABEL] == "true"
    # The value is kept as a digest: any length fits an annotation.
    long_value = "x" * 300
    job = cronjob.run_now_job(report, cj, long_value, now)
    assert job["metadata"]["annotations"][contract.RUN_NOW_LABEL] == contract.digest(long_value)


def test_drift_ignores_defaults_but_sees_edits() -> None:
    desired = cronjob.desired_cronjob(report_body(), SETTINGS, suspend=False)
    served = yaml.safe_load(yaml.safe_dump(desired))
    served["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    served["metadata"]["resourceVersion"] = "42"
    assert not cronjob.drifted(desired, served)
    served["spec"]["suspend"] = True
    assert cronjob.drifted(desired, served)
    served["spec"]["suspend"] = False
    _pod(served)["containers"][0]["securityContext"].pop("readOnlyRootFilesystem")
    assert cronjob.drifted(desired, served)
