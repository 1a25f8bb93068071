"""Pure: chosen windows. `tidings.dev/run-at` re-runs a past window, `tidings.dev/resend` mails
a recorded run's window again to the recipients it did not reach.

Both are annotations on the report, acted on once per value like run-now (status keeps the
digest: runAtHandled, resendHandled; contract.handled). The Job is the one run-now starts (the
CronJob's jobTemplate, owned by the report, the outcome finalizer) with TIDINGS_SCHEDULED_TIME
set to the chosen fire time, so a namespace editor gains nothing she could not do with
run-now: the same pod, the same admitted recipients, only another window of her own data.
A resend narrows further: TIDINGS_RESEND_RECIPIENTS lists the addresses the record did not
reach that the report still admits, and the relay checks each against the admitted spec all
the same (docs/relay.md).

Values: `TIME [NOTE]` and `RECORD [NOTE]`; the first word is the request, anything after a space
tells a repeat apart (`kubectl tidings` adds one, so each command runs once).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tidings import groups, models
from tidings.contract import (
    RECIPIENT_LISTS,
    RERUN_AT_JOB_ANNOTATION,
    RESEND_ANNOTATION,
    RESEND_OF_JOB_ANNOTATION,
    RESEND_RECIPIENTS_ENV,
    RESEND_TO_JOB_ANNOTATION,
    RUN_AT_ANNOTATION,
    RUN_NOW_LABEL,
    SCHEDULED_TIME_ENV,
    digest,
    handled,
)
from tidings.controller.cronjob import cronjob_name, job_from_template, owned_by_report
from tidings.schedule import parse_rfc3339, rfc3339

RUN_AT_PATH = f"metadata.annotations[{RUN_AT_ANNOTATION}]"
RESEND_PATH = f"metadata.annotations[{RESEND_ANNOTATION}]"
RULE = "an RFC 3339 time with a zone (e.g. 2024-05-13T08:00:00Z), not in the future"


def requested(report: Mapping[str, Any], annotation: str) -> str:
    """The annotation's value, stripped ("" when absent)."""
    annotations = (report.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(annotation) or "").strip()


def pending(report: Mapping[str, Any], annotation: str, status_field: str) -> str | None:
    """The value not acted on yet, or None."""
    value = requested(report, annotation)
    recorded = str((report.get("status") or {}).get(status_field) or "")
    return value if value and not handled(value, recorded) else None


def first_word(value: str) -> str:
    return value.split(maxsplit=1)[0] if value.split() else ""


def parse_run_at(value: str, now: datetime) -> datetime:
    """The fire time a run-at value asks for; ValueError naming the field and the rule."""
    text = first_word(value)
    try:
        moment = parse_rfc3339(text)
    except ValueError:
        raise ValueError(f"{RUN_AT_PATH}: {text!r} is not {RULE}") from None
    if moment > now:
        raise ValueError(
            f"{RUN_AT_PATH}: {rfc3339(moment)} is in the future (now {rfc3339(now)}); "
            f"it must be {RULE}"
        )
    return moment


_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def is_object_name(name: str) -> bool:
    """A DNS subdomain, as object names are: never a path of its own in an API URL."""
    return len(name) <= 253 and _OBJECT_NAME.fullmatch(name) is not None


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def job_name(report_name: str, kind: str, value: str) -> str:
    """Deterministic per value (a retried reconcile cannot start two runs); `a` for run-at and
    `s` for resend keep it from parsing as `<cronjob>-<minutes>` and from run-now's `r`."""
    return f"{cronjob_name(report_name)}-{kind}{_short_hash(value)}"


def rerun_job(
    report: Mapping[str, Any], cronjob: Mapping[str, Any], value: str, at: datetime
) -> dict[str, Any]:
    """The run-at Job: run-now's, computing its window as if fired at `at`. Its run-now mark is
    the digest of this value, so the relay keys it apart from every other run (a re-run of a
    window is mailed again: that is what was asked)."""
    job = job_from_template(
        cronjob,
        job_name(report["metadata"]["name"], "a", value),
        {
            "cronjob.kubernetes.io/instantiate": "manual",
            RUN_NOW_LABEL: digest(value),
            RERUN_AT_JOB_ANNOTATION: rfc3339(at),
        },
        {SCHEDULED_TIME_ENV: rfc3339(at)},
    )
    job["metadata"]["labels"][RUN_NOW_LABEL] = "true"
    return owned_by_report(job, report)


@dataclass(frozen=True)
class Resend:
    """What a resend mails: the record's window (its scheduled time), to these addresses."""

    record: str
    scheduled: str
    addresses: list[str]


def _normal(address: str) -> str:
    local, at, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else address.strip()


def plan_resend(
    report: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    record_name: str,
    found_groups: Mapping[str, Sequence[str]] | None = None,
) -> Resend:
    """The resend of `record`: the addresses it was for and did not reach (intended minus
    accepted, in each of to/cc/bcc), kept only when the report admits them now. An `@name`
    stands for the members of `found_groups[name]` (the RecipientGroup as it is now: the record
    keeps the entry as written), on the record's side and the report's. ValueError naming the
    annotation and the rule when there is nothing to resend."""
    if not is_object_name(record_name):
        raise ValueError(
            f"{RESEND_PATH}: {record_name[:80]!r} is not a ReportDelivery name (a DNS subdomain: "
            "lowercase letters, digits, '-' and '.', at most 253 characters)"
        )
    where = f"{RESEND_PATH}: ReportDelivery {record_name}"
    if record is None:
        raise ValueError(f"{where} does not exist in this namespace")
    spec = record.get("spec") or {}
    meta = report["metadata"]
    if (spec.get("report") or {}).get("uid") != meta["uid"]:
        raise ValueError(f"{where} is a run of another report, not of {meta['name']}")
    if spec.get("trigger") == models.Trigger.TEST:
        raise ValueError(f"{where} is a test send; only a report's own runs can be resent")
    if not spec.get("scheduledTime"):
        raise ValueError(f"{where} has no scheduledTime, so its window is unknown")
    lists = spec.get("recipients") or {}
    if int(lists.get("omitted") or 0):
        raise ValueError(
            f"{where} left {lists['omitted']} address(es) out of its result, so who it did not "
            "reach is unknown; use kubectl tidings run NAME --at TIME to mail the window to all"
        )
    # normalized -> as the spec spells it now: the renderer matches the Job's snapshot exactly.
    members = found_groups or {}
    now = groups.expand((report.get("spec") or {}).get("recipients"), members)
    admitted = {_normal(a): a for a in now.addresses}
    missing: list[str] = []
    for field in RECIPIENT_LISTS:
        given = lists.get(field) or {}
        reached = {_normal(a) for a in given.get("accepted") or ()}
        intended = groups.expand({field: list(given.get("intended") or ())}, members)
        for address in intended.lists[field]:
            key = _normal(address)
            if key not in reached and key in admitted and admitted[key] not in missing:
                missing.append(admitted[key])
    if not missing:
        raise ValueError(
            f"{where}: every recipient it was for got it, or is no longer on the report; "
            "nothing to resend"
        )
    return Resend(record_name, str(spec["scheduledTime"]), missing[: models.MAX_RECIPIENTS])


def resend_job(
    report: Mapping[str, Any], cronjob: Mapping[str, Any], value: str, resend: Resend
) -> dict[str, Any]:
    """The resend Job: the window of the record (its scheduled time), to `resend.addresses`
    only. The relay keys it by the record (`resend:<record>`), so a second resend of one record
    reaches only whom the first did not."""
    to = ",".join(resend.addresses)
    job = job_from_template(
        cronjob,
        job_name(report["metadata"]["name"], "s", value),
        {
            "cronjob.kubernetes.io/instantiate": "manual",
            RESEND_OF_JOB_ANNOTATION: resend.record,
            RESEND_TO_JOB_ANNOTATION: to,
        },
        {SCHEDULED_TIME_ENV: rfc3339(parse_rfc3339(resend.scheduled)), RESEND_RECIPIENTS_ENV: to},
    )
    return owned_by_report(job, report)


def resend_addresses(job: Mapping[str, Any]) -> list[str] | None:
    """The addresses a resend Job is for, None for any other Job."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    if not annotations.get(RESEND_OF_JOB_ANNOTATION):
        return None
    return [a for a in str(annotations.get(RESEND_TO_JOB_ANNOTATION) or "").split(",") if a]
