"""Test sends: the annotation `tidings.dev/send-test=<address>` runs the report once, to that one
address only, with "[TEST]" before the subject, touching nothing else of the report's status.

Pure parts, used by the admission webhook (what the annotation needs), the operator (when to
start a test Job and what it looks like) and status (how a test's outcome is recorded):

- Once per value, like run-now: status.testSendHandled keeps the digest of the value acted on
  (contract.handled: any admitted length compares exactly). Removing the annotation clears
  it, so the same address can be tested again by annotating it again.
- The Job is the CronJob's template with TIDINGS_TEST_RECIPIENT set; its name comes from the
  value and a counter kept in status (testSendCount), so a retried reconcile cannot start a
  second Job and a later test to the same address gets a new one.
- Its outcome is a history entry with `testRecipient` and an Event (TestSent or TestFailed);
  lastSentAt, lastAttemptAt, lastError, consecutiveFailures, the Delivered condition and the
  phase are left alone.
- At most one test Job per report at a time: a new value while one runs waits for it (Event
  TestSendWaiting); at most TIDINGS_TEST_SENDS_PER_NAMESPACE_PER_HOUR start per namespace in
  any hour (more are refused: TestSendRateLimited); a finished test Job is deleted by the TTL
  controller FINISHED_TTL seconds after it ends (once counted: the finalizer holds it till then).
- The edit role may test-send to the allowed recipient domains; any other address needs the
  `schedule` verb, as adding it to the recipients would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tidings.contract import TEST_RECIPIENT_ENV as RECIPIENT_ENV
from tidings.contract import TEST_SEND_ANNOTATION as ANNOTATION
from tidings.contract import digest
from tidings.contract import handled as is_handled
from tidings.controller.cronjob import job_from_template
from tidings.schedule import rfc3339

ANNOTATION_PATH = f"metadata.annotations[{ANNOTATION}]"
FINISHED_TTL = 300  # seconds a finished test Job is kept (after it is counted) for a look


def requested(meta: Mapping[str, Any] | None) -> str:
    """The annotation's value, stripped ("" when absent)."""
    return str(((meta or {}).get("annotations") or {}).get(ANNOTATION) or "").strip()


def changed_address(
    old_meta: Mapping[str, Any] | None, new_meta: Mapping[str, Any] | None
) -> str | None:
    """The address this create or update asks a test send for, if it sets or changes it."""
    address = requested(new_meta)
    return address if address and address != requested(old_meta) else None


def annotation_problem(address: str) -> str | None:
    """The address rule of recipients (tidings.validation.address_problem)."""
    from tidings.validation import address_problem

    return address_problem(address)


def decide(
    annotations: Mapping[str, str], status: Mapping[str, Any], valid: bool
) -> tuple[dict[str, Any], str | None, str | None]:
    """(status fields to write, the address to test-send to now or None, a refusal reason).

    A value seen before does nothing; a new one is recorded, and acted on when the spec is
    valid and the address passes the recipient rule."""
    address = str(annotations.get(ANNOTATION) or "").strip()
    handled = status.get("testSendHandled") or ""
    if not address:
        return ({"testSendHandled": None} if handled else {}), None, None
    if is_handled(address, handled):
        return {}, None, None
    fields: dict[str, Any] = {"testSendHandled": digest(address)}
    if not valid:
        return fields, None, "the spec is invalid"
    if problem := annotation_problem(address):
        return fields, None, f"{ANNOTATION_PATH} {problem}"
    fields["testSendCount"] = int(status.get("testSendCount") or 0) + 1
    return fields, address, None


def pending(report: Mapping[str, Any]) -> bool:
    """Whether the report asks for a test send not acted on yet (one waiting for another)."""
    address = requested(report.get("metadata"))
    recorded = (report.get("status") or {}).get("testSendHandled") or ""
    return bool(address) and not is_handled(address, recorded)


def job_name(cronjob: str, address: str, count: int) -> str:
    """Deterministic per (address, count); the `t` keeps it from parsing as a scheduled Job's
    `<cronjob>-<minutes>` name."""
    digest = hashlib.sha256(f"{address}\n{count}".encode()).hexdigest()[:8]
    return f"{cronjob}-t{digest}"


def test_job(cronjob: Mapping[str, Any], address: str, count: int, now: datetime) -> dict[str, Any]:
    """The test run's Job: the CronJob's template, to `address` only, reporting on the window
    that ends now."""
    job = job_from_template(
        cronjob,
        job_name(cronjob["metadata"]["name"], address, count),
        {"cronjob.kubernetes.io/instantiate": "manual", ANNOTATION: address},
        {"TIDINGS_SCHEDULED_TIME": rfc3339(now), RECIPIENT_ENV: address},
    )
    # Held by the outcome finalizer until counted; the TTL controller removes it after that.
    job["spec"]["ttlSecondsAfterFinished"] = FINISHED_TTL
    return job


def recipient_of(job: Mapping[str, Any]) -> str | None:
    """The test address of a test Job, None for any other Job."""
    return ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION) or None
