"""Pure: whether a Job carrying a report's labels is a run the operator can show is its own.

Labels, annotations and owner references are anyone's to write (a namespace editor can create
Jobs and Pods), so a Job counts only when:
- its controlling owner is the report's CronJob (the uid the operator knows) or the report
  itself (run-now and test-send Jobs the operator creates), and
- its pod template, recomputed from the Job as stored, equals the template of the report's
  CronJob as the operator wrote it: the CronJob's jobTemplate now, or one the operator saw it
  write earlier (a spec change while the run was going). Both are compared as the apiserver
  stored them, so both carry the same defaults; only what the Job controller adds to a Job's
  template (its four tracking labels) and the env the operator appends to run-now and test Jobs
  is taken off before comparing.
Pods count only when they carry the Job's name and report-uid labels and the Job's uid is their
controlling owner: a hand-made pod with the job-name label supplies no result line.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tidings.contract import (
    JOB_NAME_LABEL,
    REPORT_UID_LABEL,
    RESEND_OF_JOB_ANNOTATION,
    RESEND_RECIPIENTS_ENV,
    RESEND_TO_JOB_ANNOTATION,
    SCHEDULED_TIME_ENV,
    TEST_RECIPIENT_ENV,
    TEST_SEND_ANNOTATION,
    WRITTEN_GENERATION,
    digest,
)

# What the Job API adds to every Job's template (pkg/registry/batch/job/strategy.go).
JOB_CONTROLLER_LABELS = (
    "batch.kubernetes.io/controller-uid",
    JOB_NAME_LABEL,
    "controller-uid",
    "job-name",
)


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controlling owner, or None."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return next((ref.get("uid") for ref in refs if ref.get("controller")), None)


def _appended_env(job: Mapping[str, Any]) -> dict[str, str]:
    """The env the operator appends to the template for a Job it creates itself."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    extra = {SCHEDULED_TIME_ENV: ""}
    if annotations.get(TEST_SEND_ANNOTATION):
        extra[TEST_RECIPIENT_ENV] = annotations[TEST_SEND_ANNOTATION]
    if annotations.get(RESEND_OF_JOB_ANNOTATION):  # a resend: whom, as its annotation says
        extra[RESEND_RECIPIENTS_ENV] = annotations.get(RESEND_TO_JOB_ANNOTATION) or ""
    return extra


def job_template(job: Mapping[str, Any], created_by_operator: bool) -> dict[str, Any]:
    """The Job's pod template as the operator (or the CronJob controller) gave it: without the
    Job API's tracking labels and, for a Job the operator created, without the env it appended
    at the end (TIDINGS_SCHEDULED_TIME, and the test address, which must equal the Job's
    send-test annotation)."""
    template = copy.deepcopy(((job.get("spec") or {}).get("template")) or {})
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        for key in JOB_CONTROLLER_LABELS:
            labels.pop(key, None)
    if created_by_operator:
        extra = _appended_env(job)
        for container in (template.get("spec") or {}).get("containers") or ():
            env = container.get("env") or []
            while env and env[-1].get("name") in extra:
                expected = extra.pop(env[-1]["name"])
                if expected and env[-1].get("value") != expected:
                    break  # a test address other than the annotated one: left in, no match
                env.pop()
    return template


def template_digest(template: Mapping[str, Any]) -> str:
    """One digest per template, whatever the key order."""
    return digest(json.dumps(template, sort_keys=True, separators=(",", ":")))


def cronjob_template(cronjob: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template of a CronJob's jobTemplate ({} when it has none)."""
    job_spec = ((cronjob.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
    return dict(job_spec.get("template") or {})


def foreign_reason(
    job: Mapping[str, Any],
    report: Mapping[str, Any],
    cronjob: Mapping[str, Any] | None,
    cronjob_uid: str | None,
    known: Collection[str] = (),
) -> str | None:
    """Why the Job is not a run of this report's the operator can vouch for; None if it is.

    `cronjob` is the report's CronJob as read now, `cronjob_uid` the uid the operator knows for
    it, `known` digests of templates the operator saw that CronJob have before."""
    meta = job.get("metadata") or {}
    report_uid = report["metadata"]["uid"]
    if (meta.get("labels") or {}).get(REPORT_UID_LABEL) != report_uid:
        return "its report-uid label names another report"
    owner = controller_uid(job)
    if cronjob is not None and cronjob_uid and cronjob["metadata"].get("uid") != cronjob_uid:
        cronjob = None  # not the CronJob the operator created for this report
    by_operator = owner == report_uid
    if not by_operator and (cronjob is None or owner != cronjob["metadata"].get("uid")):
        return "it is owned neither by the report nor by the report's CronJob"
    trusted = set(known)
    if cronjob is not None and controller_uid(cronjob) == report_uid:
        cron_meta = cronjob["metadata"]
        stamped = (cron_meta.get("annotations") or {}).get(WRITTEN_GENERATION)
        if stamped == str(cron_meta.get("generation")):  # as the operator wrote it
            trusted.add(template_digest(cronjob_template(cronjob)))
    if not trusted:
        return "the report's CronJob, as the operator wrote it, is not there to compare with"
    if template_digest(job_template(job, by_operator)) not in trusted:
        return "its pod template is not the one the operator wrote for the report"
    return None


def own_pods(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Job's pods: its name and report-uid labels, and the Job as controlling owner."""
    meta = job.get("metadata") or {}
    report_uid = (meta.get("labels") or {}).get(REPORT_UID_LABEL)
    return [
        pod
        for pod in pods
        if controller_uid(pod) == meta.get("uid")
        and ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL) == meta["name"]
        and ((pod.get("metadata") or {}).get("labels") or {}).get(REPORT_UID_LABEL) == report_uid
    ]


def pod_selector(job: Mapping[str, Any]) -> str:
    meta = job["metadata"]
    uid = (meta.get("labels") or {}).get(REPORT_UID_LABEL, "")
    return f"{JOB_NAME_LABEL}={meta['name']},{REPORT_UID_LABEL}={uid}"
