"""Pure manifests: a ScheduledReport (as a plain mapping) -> its CronJob, spec ConfigMap and
run-now Job. No I/O here, so every field of the run contract is checked by unit tests.

The pod matches the renderer run contract: the report snapshot at
/etc/tidings/report/report.yaml, the data-source secret key at /etc/tidings/source/value, the
SMTP override Secret at /etc/tidings/smtp/, a custom template at
/etc/tidings/template/template.html.j2, the platform relay in TIDINGS_SMTP_* and the Job name
(for the scheduled time) in TIDINGS_JOB_NAME.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml

from tidings import branding, models
from tidings.controller.settings import Settings, run_env
from tidings.schedule import rfc3339

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tidings"
COMPONENT_LABEL = "app.kubernetes.io/component"
REPORT_UID_LABEL = "tidings.dev/report-uid"
# Label values stop at 63 characters and report names may be 253: the name goes in an annotation.
REPORT_NAME_ANNOTATION = "tidings.dev/report"
RUN_NOW_ANNOTATION = "tidings.dev/run-now"
REACTIVATE_ANNOTATION = "tidings.dev/reactivate"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

CONTAINER = "renderer"
REPORT_KEY = "report.yaml"
# Sysexits the renderer uses for failures a retry cannot fix (run contract).
PERMANENT_EXIT_CODES = (65, 69)
# A Manual report still gets a CronJob, suspended, so run-now Jobs come from the same template
# as scheduled ones. The schedule is never used while suspended; 31 February never comes anyway.
MANUAL_PLACEHOLDER_SCHEDULE = "0 0 31 2 *"
MAX_CRONJOB_NAME = 52  # the CronJob controller appends -<minutes> and Job names stop at 63


def _short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def cronjob_name(report_name: str) -> str:
    """The report's name when it fits; otherwise a prefix plus a hash, so it stays unique."""
    if len(report_name) <= MAX_CRONJOB_NAME:
        return report_name
    prefix = report_name[: MAX_CRONJOB_NAME - 9].rstrip("-.")
    return f"{prefix}-{_short_hash(report_name)}"


def configmap_name(report_name: str) -> str:
    return f"{cronjob_name(report_name)}-report"


def run_now_job_name(cronjob: str, value: str) -> str:
    """Deterministic per annotation value, so a retried request cannot start two runs.
    The `r` keeps it from parsing as `<cronjob>-<minutes>` (a scheduled Job's name)."""
    return f"{cronjob}-r{_short_hash(value)}"


def report_labels(report: Mapping[str, Any]) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: "report-run",
        REPORT_UID_LABEL: report["metadata"]["uid"],
    }


def owner_reference(report: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "name": report["metadata"]["name"],
        "uid": report["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    meta = report["metadata"]
    return {
        "name": name,
        "namespace": meta["namespace"],
        "labels": report_labels(report),
        "annotations": {REPORT_NAME_ANNOTATION: meta["name"]},
        "ownerReferences": [owner_reference(report)],
    }


def spec_configmap(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report snapshot the renderer reads; owned by the report like the CronJob."""
    meta = report["metadata"]
    snapshot = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "generation": meta.get("generation"),
        },
        "spec": dict(report.get("spec") or {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(report, configmap_name(meta["name"])),
        "data": {REPORT_KEY: yaml.safe_dump(snapshot, sort_keys=False, allow_unicode=True)},
    }


def _secret_key_ref(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    source = spec.get("source") or {}
    sql = source.get("sql") or {}
    http = source.get("http") or {}
    return sql.get("connectionSecretRef") or http.get("authSecretRef")


def _env(settings: Settings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {
            "name": "TIDINGS_JOB_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}},
        },
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
    ]
    relay = {
        "TIDINGS_SMTP_HOST": settings.smtp_host,
        "TIDINGS_SMTP_PORT": str(settings.smtp_port),
        "TIDINGS_SMTP_FROM": settings.smtp_from,
        "TIDINGS_SMTP_TLS": settings.smtp_tls,
        "TIDINGS_SMTP_TIMEOUT": str(settings.smtp_timeout),
    }
    env.extend({"name": k, "value": v} for k, v in relay.items() if v)
    env.extend(branding.pod_env(run_env(settings)))
    if settings.smtp_credentials_secret:
        # By reference, never by value: the CronJob is readable by namespace viewers. Optional,
        # so a namespace without the Secret still sends through the relay without a login.
        env.extend(
            {
                "name": f"TIDINGS_SMTP_{key.upper()}",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": settings.smtp_credentials_secret,
                        "key": key,
                        "optional": True,
                    }
                },
            }
            for key in ("username", "password")
        )
    return env


def _volumes(report: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts): the snapshot and /tmp always; secrets and template when referenced."""
    spec = report.get("spec") or {}
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]

    def add(name: str, kind: str, source: dict[str, Any]) -> None:
        volumes.append({"name": name, kind: source})
        mounts.append({"name": name, "mountPath": f"/etc/tidings/{name}", "readOnly": True})

    def one_key(key: str, path: str) -> list[dict[str, str]]:
        return [{"key": key, "path": path}]

    report_cm = configmap_name(report["metadata"]["name"])
    add("report", "configMap", {"name": report_cm, "items": one_key(REPORT_KEY, REPORT_KEY)})
    source_ref = _secret_key_ref(spec)
    if source_ref:
        items = one_key(source_ref["key"], "value")
        add("source", "secret", {"secretName": source_ref["name"], "items": items})
    smtp_ref = (spec.get("delivery") or {}).get("smtpSecretRef")
    if smtp_ref:
        add("smtp", "secret", {"secretName": smtp_ref["name"]})
    volume, mount = branding.pod_volume()
    volumes.append(volume)
    mounts.append(mount)
    template_ref = spec.get("templateRef")
    if template_ref:
        items = one_key(template_ref["key"], "template.html.j2")
        add("template", "configMap", {"name": template_ref["name"], "items": items})
    return volumes, mounts


def _pod_spec(report: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    volumes, mounts = _volumes(report)
    uid = settings.run_as_user
    return {
        "restartPolicy": "Never",  # one pod per run: retries happen inside it (renderer)
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER,
                "image": settings.renderer_image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": ["tidings", "run"],
                "env": _env(settings),
                "resources": {
                    "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
                    "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "terminationMessagePath": "/dev/termination-log",
                # A crash before the result line is written still leaves its last log lines.
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
    }


def desired_cronjob(report: Mapping[str, Any], settings: Settings, suspend: bool) -> dict[str, Any]:
    """The CronJob for a report. `suspend` comes from the phase (Paused, Disabled, Invalid,
    Manual). Only called for specs that passed validation, so schedule and zone are sound."""
    spec = report.get("spec") or {}
    policy = spec.get("failurePolicy") or {}
    defaults = models.FailurePolicy()
    schedule = (spec.get("schedule") or "").strip()
    labels = report_labels(report)
    name_annotation = {REPORT_NAME_ANNOTATION: report["metadata"]["name"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _metadata(report, cronjob_name(report["metadata"]["name"])),
        "spec": {
            "schedule": schedule or MANUAL_PLACEHOLDER_SCHEDULE,
            "timeZone": spec.get("timeZone") or "UTC",
            "suspend": suspend or not schedule,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": settings.starting_deadline_seconds,
            "successfulJobsHistoryLimit": settings.successful_jobs_history,
            "failedJobsHistoryLimit": settings.failed_jobs_history,
            "jobTemplate": {
                "metadata": {"labels": labels, "annotations": name_annotation},
                "spec": {
                    # Retries live in one place, the renderer (failurePolicy.retries, with the
                    # one-resend rule for an unknown SMTP outcome). A second pod would start
                    # them all again and could mail the window again, so there is none, not
                    # even after a disruption (an Ignore rule would start one).
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": policy.get("timeoutSeconds", defaults.timeout_seconds),
                    "podFailurePolicy": {
                        "rules": [
                            {
                                "action": "FailJob",
                                "onExitCodes": {
                                    "containerName": CONTAINER,
                                    "operator": "In",
                                    "values": list(PERMANENT_EXIT_CODES),
                                },
                            },
                        ]
                    },
                    "template": {
                        "metadata": {"labels": labels, "annotations": name_annotation},
                        "spec": _pod_spec(report, settings),
                    },
                },
            },
        },
    }


def job_from_template(
    cronjob: Mapping[str, Any],
    name: str,
    annotations: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Job as the CronJob controller (or `kubectl create job --from=cronjob/...`) makes it:
    the jobTemplate, owned by the CronJob, plus annotations and extra container env."""
    template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
    meta = template.get("metadata") or {}
    spec = template["spec"]
    extra = [{"name": k, "value": v} for k, v in (env or {}).items()]
    for container in spec["template"]["spec"]["containers"]:
        container.setdefault("env", []).extend(extra)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": cronjob["metadata"]["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "annotations": {**(meta.get("annotations") or {}), **annotations},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": cronjob["metadata"]["name"],
                    "uid": cronjob["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def run_now_job(cronjob: Mapping[str, Any], value: str, now: datetime) -> dict[str, Any]:
    """One run outside the schedule, reporting on the window that ends now."""
    return job_from_template(
        cronjob,
        run_now_job_name(cronjob["metadata"]["name"], value),
        {"cronjob.kubernetes.io/instantiate": "manual", RUN_NOW_ANNOTATION: value[:253]},
        {"TIDINGS_SCHEDULED_TIME": rfc3339(now)},
    )


def drifted(desired: Any, actual: Any) -> bool:
    """True when `actual` lacks or changes something `desired` sets. Fields the apiserver
    defaults (or a human adds) are not drift; a changed or removed field is."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return True
        return any(drifted(v, actual.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return True
        return any(drifted(d, a) for d, a in zip(desired, actual, strict=True))
    return desired != actual
