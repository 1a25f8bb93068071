"""Pure manifests: a ScheduledReport (as a plain mapping) -> its CronJob and run-now Jobs, and
the admission policy that gives every Job of ours the outcome finalizer. No I/O here, so every
field of the run contract is checked by unit tests.

The pod matches the renderer run contract: the report snapshot at
/etc/tidings/report/report.yaml (a downward-API file of the pod's own snapshot annotation, so a
Job carries exactly the spec it was scheduled with), the data-source secret key at
/etc/tidings/source/value, the SMTP override Secret at /etc/tidings/smtp/, a custom template at
/etc/tidings/template/template.html.j2, the platform relay in TIDINGS_SMTP_* and the Job name
(for the scheduled time) in TIDINGS_JOB_NAME.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tidings import branding, groups, models, sendwhen
from tidings.contract import (
    CHANNEL_RELAY_ENV,
    COMPONENT_LABEL,
    FINALIZER,
    JOB_NAME_LABEL,
    LAST_ROWS_DIGEST_ENV,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PERMANENT_EXIT_CODES,
    RELAY_TOKEN_DIR,
    RELAY_TOKEN_DIR_ENV,
    RELAY_TOKEN_EXPIRY_SECONDS,
    REPORT_NAME_ANNOTATION,
    REPORT_UID_LABEL,
    RUN_NOW_LABEL,
    SNAPSHOT_ANNOTATION,
    digest,
)
from tidings.controller import capacity
from tidings.controller.channel_secrets import channel_key_sources
from tidings.controller.settings import Settings, run_env
from tidings.schedule import rfc3339
from tidings.snapshot import report_snapshot

SNAPSHOT_PATH = f"metadata.annotations['{SNAPSHOT_ANNOTATION}']"
CONTAINER = "renderer"
REPORT_FILE = "report.yaml"
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


def run_now_job_name(report_name: str, value: str) -> str:
    """Deterministic per annotation value, so a retried request cannot start two runs.
    The `r` keeps it from parsing as `<cronjob>-<minutes>` (a scheduled Job's name)."""
    return f"{cronjob_name(report_name)}-r{_short_hash(value)}"


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
    if settings.relay_host and settings.relay_http_port:  # channels too (docs/channels.md)
        relay[CHANNEL_RELAY_ENV] = f"http://{settings.relay_host}:{settings.relay_http_port}"
    if settings.relay_host:  # mail leaves through the delivery relay (docs/relay.md)
        # Plain SMTP to the relay; the token is the AUTH PLAIN password.
        relay.update(
            {
                "TIDINGS_SMTP_HOST": settings.relay_host,
                "TIDINGS_SMTP_PORT": str(settings.relay_port),
                "TIDINGS_SMTP_TLS": "none",
                RELAY_TOKEN_DIR_ENV: RELAY_TOKEN_DIR,
            }
        )
    # Platform limits on what a report's sources may reach and read: set by the operator's
    # settings only, never by the namespace's branding ConfigMap.
    limits = {
        "TIDINGS_HTTP_DENIED_NETWORKS": settings.http_denied_networks,
        "TIDINGS_MAX_SOURCE_BYTES": settings.max_source_bytes,
        "TIDINGS_MAX_SOURCE_ROWS": settings.max_source_rows,
    }
    env.extend({"name": k, "value": v} for k, v in {**relay, **limits}.items() if v)
    env.extend(branding.pod_env(run_env(settings)))
    if settings.smtp_credentials_secret and not settings.relay_host:
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


def last_digest_env(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """For sendWhen mode changed only: the last delivered run's rowsDigest (status, copied from
    its ReportDelivery). The pod has no API access, so the operator hands it over; other modes
    get nothing, so a delivery does not rewrite their CronJob."""
    delivery = (report.get("spec") or {}).get("delivery") or {}
    if ((delivery.get("sendWhen") or {}).get("mode")) != sendwhen.CHANGED:
        return []
    last = (report.get("status") or {}).get("lastRowsDigest")
    return [{"name": LAST_ROWS_DIGEST_ENV, "value": last}] if sendwhen.is_digest(last) else []


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

    snapshot = {"path": REPORT_FILE, "fieldRef": {"fieldPath": SNAPSHOT_PATH}}
    add("report", "downwardAPI", {"items": [snapshot]})
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
    if keys := channel_key_sources(spec):
        add("channels", "projected", {"sources": keys})
    if groups.named(spec.get("recipients")):
        # Not optional: a run waits for the operator's ConfigMap rather than guess its groups.
        add("recipients", "configMap", {"name": groups.configmap_name(report["metadata"]["name"])})
    return volumes, mounts


def _pod_spec(report: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    volumes, mounts = _volumes(report)
    if settings.relay_host:  # the pod's identity for the delivery relay
        token = {
            "audience": settings.relay_audience,
            "expirationSeconds": RELAY_TOKEN_EXPIRY_SECONDS,
            "path": "token",
        }
        sources = [{"serviceAccountToken": token}]
        volumes.append({"name": "relay-token", "projected": {"sources": sources}})
        mounts.append({"name": "relay-token", "mountPath": RELAY_TOKEN_DIR, "readOnly": True})
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
                "env": _env(settings) + last_digest_env(report),
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
    manifest = {
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
                        "metadata": {
                            "labels": labels,
                            "annotations": {
                                **name_annotation,
                                SNAPSHOT_ANNOTATION: report_snapshot(report),
                            },
                        },
                        "spec": _pod_spec(report, settings),
                    },
                },
            },
        },
    }
    # With a concurrent-run cap, each run is created suspended and released by the operator.
    capacity.hold_runs(manifest["spec"]["jobTemplate"], capacity.caps_of(settings))
    return manifest


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
                    "uid": cronjob["metadata"].get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


def run_now_job(
    report: Mapping[str, Any], cronjob: Mapping[str, Any], value: str, now: datetime
) -> dict[str, Any]:
    """One run outside the schedule, reporting on the window that ends now."""
    job = job_from_template(
        cronjob,
        run_now_job_name(report["metadata"]["name"], value),
        {"cronjob.kubernetes.io/instantiate": "manual", RUN_NOW_LABEL: digest(value)},
        {"TIDINGS_SCHEDULED_TIME": rfc3339(now)},
    )
    job["metadata"]["labels"][RUN_NOW_LABEL] = "true"
    return owned_by_report(job, report)


def owned_by_report(job: dict[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """A Job the operator starts itself (run-now, test send): owned by the report, not the
    CronJob, whose controller would warn about a Job it did not start (UnexpectedJob) and count
    it in its own history; born with the outcome finalizer."""
    job["metadata"]["ownerReferences"] = [owner_reference(report)]
    job["metadata"]["finalizers"] = [FINALIZER]
    return job


_ADD_FINALIZER = f'Object{{metadata: Object.metadata{{finalizers: ["{FINALIZER}"]}}}}'


def finalizer_policy(name: str) -> list[dict[str, Any]]:
    """A MutatingAdmissionPolicy (and its binding) that adds FINALIZER to every Job of ours as
    it is created, inside the apiserver: the CronJob controller copies only labels and
    annotations from the jobTemplate, so a finalizer there would never reach the Job. With it,
    a Job that starts, ends and is cleaned up while the operator is away is still held."""
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                # Never block a run: without the policy the operator adds the finalizer itself.
                "failurePolicy": "Ignore",
                "reinvocationPolicy": "Never",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["batch"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["jobs"],
                        }
                    ],
                    "objectSelector": {
                        "matchLabels": {MANAGED_BY_LABEL: MANAGED_BY},
                        "matchExpressions": [{"key": REPORT_UID_LABEL, "operator": "Exists"}],
                    },
                },
                "mutations": [
                    {
                        "patchType": "ApplyConfiguration",
                        "applyConfiguration": {"expression": _ADD_FINALIZER},
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name},
        },
    ]


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
