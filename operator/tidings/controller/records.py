"""ReportDelivery records, pure: what to write for a finished Job, and which records to prune.

A record's name comes from its Job (name and uid), so writing it twice is impossible: the
second create gets 409 AlreadyExists, which means "already recorded". That holds whatever
decides when a Job is counted, and across operator restarts.

Records are not owned by their report (deleting the report keeps them). They carry the
report's name and uid as labels: `tidings.dev/report` is the name when it is a valid label value
(at most 63 characters), else a prefix of it plus a hash (report_label); `tidings.dev/report-uid`
tells apart two reports that had the same name.

Retention counts from the run's end (spec.finishedAt): each record keeps the days it was
written with (the report's spec.delivery.retentionDays or the platform default), capped by the
platform maximum at prune time; and at most `per_report` records are kept per report uid, the
newest. A record whose report is gone follows the same rules.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml

from tidings import models
from tidings.contract import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RECIPIENT_LISTS,
    REPORT_UID_LABEL,
    RERUN_AT_JOB_ANNOTATION,
    RESEND_OF_JOB_ANNOTATION,
    RUN_NOW_ANNOTATION,
    SNAPSHOT_ANNOTATION,
    TEST_SEND_ANNOTATION,
    ResultLine,
)
from tidings.controller.reruns import resend_addresses
from tidings.controller.run_outcome import RunOutcome
from tidings.redaction import redact
from tidings.schedule import parse_rfc3339

REPORT_LABEL = f"{models.GROUP}/report"
COMPONENT = "delivery-record"
# Every record the operator writes: the one selector pruning lists with.
RECORD_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={COMPONENT}"
MAX_LABEL_VALUE = 63


@dataclass(frozen=True)
class Retention:
    """The platform's rules (operator settings)."""

    default_days: int = 90
    max_days: int = 365
    per_report: int = 1000


def report_label(name: str) -> str:
    """A label value for a report name: the name itself when it fits in 63 characters (report
    names are DNS subdomains, so they are valid label values), else its first 22 characters
    and a 40-hex SHA-256 prefix, so `-l tidings.dev/report=VALUE` still selects exactly one."""
    if len(name) <= MAX_LABEL_VALUE:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:40]
    return f"{name[:22].rstrip('.-')}-{digest}"


def record_name(job: Mapping[str, Any]) -> str:
    """The Job's name plus the start of its uid: one name per Job, ever (a later Job with the
    same name, e.g. after the report is re-created, has another uid)."""
    meta = job["metadata"]
    return f"{meta['name']}-{meta['uid'][:8]}"


def trigger(job: Mapping[str, Any]) -> str:
    annotations = job["metadata"].get("annotations") or {}
    if annotations.get(TEST_SEND_ANNOTATION):
        return models.Trigger.TEST
    if annotations.get(RESEND_OF_JOB_ANNOTATION):
        return models.Trigger.RESEND
    if annotations.get(RERUN_AT_JOB_ANNOTATION):
        return models.Trigger.RERUN
    return models.Trigger.RUN_NOW if RUN_NOW_ANNOTATION in annotations else models.Trigger.SCHEDULE


def intended(job: Mapping[str, Any]) -> dict[str, list[str]]:
    """Whom the run was for: to/cc/bcc of the spec its pod template carries (the report
    snapshot the renderer read), or the test address alone for a test send."""
    test_address = (job["metadata"].get("annotations") or {}).get(TEST_SEND_ANNOTATION)
    if test_address:
        return {"to": [test_address], "cc": [], "bcc": []}
    resend = resend_addresses(job)  # a resend: those of the lists it was started for
    template_meta = ((job.get("spec") or {}).get("template") or {}).get("metadata") or {}
    text = (template_meta.get("annotations") or {}).get(SNAPSHOT_ANNOTATION) or ""
    try:
        snapshot = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        snapshot = {}
    spec = snapshot.get("spec") if isinstance(snapshot, dict) else None
    lists = (spec or {}).get("recipients") if isinstance(spec, dict) else None
    lists = lists if isinstance(lists, dict) else {}
    return {
        name: [
            str(a)
            for a in lists.get(name) or ()
            if isinstance(a, str) and (resend is None or a in resend)
        ][: models.MAX_RECIPIENTS]
        for name in RECIPIENT_LISTS
    }


def retention_days(report: Mapping[str, Any], retention: Retention) -> int:
    """The report's spec.delivery.retentionDays, else the default; never over the maximum."""
    asked = ((report.get("spec") or {}).get("delivery") or {}).get("retentionDays")
    days = asked if isinstance(asked, int) and asked >= 1 else retention.default_days
    return min(days, retention.max_days)


def window_text(start: str | None, end: str | None) -> str:
    """The WINDOW column: `2024-05-06..2024-05-13` at whole UTC days, else minutes."""
    if not start or not end:
        return ""
    times = [parse_rfc3339(start), parse_rfc3339(end)]
    whole_days = all(t.hour == t.minute == t.second == 0 for t in times)
    fmt = "%Y-%m-%d" if whole_days else "%Y-%m-%dT%H:%MZ"
    return "..".join(t.strftime(fmt) for t in times)


def _addresses(result: ResultLine, meant: Mapping[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in RECIPIENT_LISTS:
        given = result.addresses.get(name)
        accepted = given.accepted if given else []
        refused = given.refused if given else {}
        out[name] = {
            "intended": list(meant.get(name) or ()),
            "accepted": accepted[: models.MAX_RECIPIENTS],
            "refused": [{"address": a, "reply": redact(r, ())[:1024]} for a, r in refused.items()][
                : models.MAX_RECIPIENTS
            ],
        }
    return out


def _attachments(result: ResultLine) -> list[dict[str, Any]]:
    return [
        {"name": item.name, "bytes": item.bytes, "sha256": item.sha256}
        for item in result.attachments[:4]
    ]


def _channels(result: ResultLine) -> list[dict[str, Any]]:
    """Each channel's outcome as the pod reported it, fitted to the record's bounds."""
    return [
        {
            "name": c.name[:32],
            "type": c.type[:16],
            "destination": c.destination[:253],
            "outcome": "accepted" if c.outcome == "accepted" else "refused",
            "failure": c.failure if c.failure in ("transient", "permanent") else None,
            "reply": redact(c.reply, ())[:1024],
            "attempts": max(0, c.attempts),
            "idempotencyKey": c.idempotency_key[:64],
        }
        for c in result.channels[: models.MAX_CHANNELS]
    ]


def _count(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def delivery_record(
    report: Mapping[str, Any],
    job: Mapping[str, Any],
    outcome: RunOutcome,
    result: ResultLine | None,
    retention: Retention,
) -> dict[str, Any]:
    """The ReportDelivery for a finished Job: `outcome` as run_outcome.py judged it (failure
    class, error, times), `result` the renderer's result line (addresses, attachments, rows,
    pages), None when the run wrote none."""
    result = result or ResultLine(outcome="")  # no line: no addresses, attachments, counts
    meta = report["metadata"]
    spec = report.get("spec") or {}
    job_meta = job["metadata"]
    job_status = job.get("status") or {}
    record_spec = {
        "report": {
            "name": meta["name"],
            "uid": meta["uid"],
            "title": str(spec.get("title") or "")[:200],
            "type": str(spec.get("reportType") or ""),
        },
        "jobName": job_meta["name"],
        "jobUid": job_meta["uid"],
        "trigger": str(trigger(job)),
        # What was asked, as the operator wrote it on the Job (tidings.dev/run-at, /resend).
        "rerunAt": (job_meta.get("annotations") or {}).get(RERUN_AT_JOB_ANNOTATION),
        "resendOf": (job_meta.get("annotations") or {}).get(RESEND_OF_JOB_ANNOTATION),
        "scheduledTime": outcome.scheduled_time,
        "windowStart": outcome.window_start,
        "windowEnd": outcome.window_end,
        "window": window_text(outcome.window_start, outcome.window_end),
        "startedAt": job_status.get("startTime"),
        "finishedAt": outcome.finished_at,
        "outcome": str(outcome.history_entry()["outcome"]),
        "failure": outcome.failure,
        "attempts": _count(result.attempts) or 0,
        "error": outcome.error,
        "messageId": outcome.message_id,
        "recipients": {
            "accepted": outcome.recipients_accepted,
            "refused": outcome.recipients_rejected,
            "omitted": _count(result.addresses_omitted) or 0,
            **_addresses(result, intended(job)),
        },
        "renderer": outcome.renderer,
        "bytes": outcome.bytes,
        "attachments": _attachments(result),
        "rows": _count(result.rows),
        "pages": _count(result.pages),
        "rowsDigest": outcome.rows_digest,
        "channels": _channels(result),
        "retentionDays": retention_days(report, retention),
    }
    # The model checks the shape here, so a bad record fails loudly in tests, not at the API.
    checked = models.ReportDeliverySpec.model_validate(record_spec)
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.DELIVERY_KIND,
        "metadata": {
            "name": record_name(job),
            "namespace": job_meta["namespace"],
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                COMPONENT_LABEL: COMPONENT,
                REPORT_LABEL: report_label(meta["name"]),
                REPORT_UID_LABEL: meta["uid"],
            },
        },
        "spec": checked.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def _finished(record: Mapping[str, Any]) -> datetime:
    spec = record.get("spec") or {}
    return parse_rfc3339(spec.get("finishedAt") or record["metadata"]["creationTimestamp"])


def expired(
    records: Iterable[Mapping[str, Any]], now: datetime, retention: Retention
) -> list[Mapping[str, Any]]:
    """Records to delete at `now`: past their retention (capped by the maximum), and beyond the
    newest `per_report` of their report. Oldest first."""
    by_report: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    doomed: dict[tuple[str, str], Mapping[str, Any]] = {}
    for record in records:
        meta = record["metadata"]
        days = min((record.get("spec") or {}).get("retentionDays") or 0, retention.max_days)
        days = days or retention.default_days
        if _finished(record) + timedelta(days=days) <= now:
            doomed[(meta["namespace"], meta["name"])] = record
        else:
            uid = (meta.get("labels") or {}).get(REPORT_UID_LABEL, "")
            by_report[f"{meta['namespace']}/{uid}"].append(record)
    for kept in by_report.values():
        kept.sort(key=_finished, reverse=True)
        for record in kept[retention.per_report :]:
            meta = record["metadata"]
            doomed[(meta["namespace"], meta["name"])] = record
    return sorted(doomed.values(), key=_finished)
