"""No truncation mismatch: whatever admission accepts, the side that stores or
compares it downstream holds whole, so a value is acted on exactly once and a copy says what
the original said. Every annotation the operator reads (run-now, reactivate, send-test) and
every maxLength string of the spec is tried at its admission maximum and one past it.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from typing import Any

import annotated_types
import kopf
import pytest
from pydantic import BaseModel
from tests.support.admission_cases import changed

from tidings import contract, models
from tidings.controller import admission, records, run_outcome, testsend
from tidings.controller import cronjob as cj
from tidings.controller import status as st
from tidings.schedule import next_fire_time
from tidings.validation import validate_spec

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
# The apiserver refuses an object whose annotations (keys and values) pass 256 KiB in all.
ANNOTATIONS_LIMIT = 256 * 1024
STATUS_FIELDS = models.ScheduledReportStatus.model_fields


def limit(model: type[BaseModel], field: str) -> int:
    """The maxLength of a model field, as the CRD schema has it."""
    return next(
        m.max_length
        for m in model.model_fields[field].metadata
        if isinstance(m, annotated_types.MaxLen)
    )


def admitted(annotations: dict[str, str], spec: dict[str, Any] | None = None) -> bool:
    """The webhook's verdict on a create with these annotations (the rules; 422 if refused)."""
    body = {
        "metadata": {"name": "weekly", "namespace": "team", "annotations": annotations},
        "spec": spec or changed({}),
    }
    try:
        admission.validate_report(body=body, old=None, operation="CREATE", warnings=[])
    except kopf.AdmissionError:
        return False
    return True


def stores(model: type[BaseModel], fields: dict[str, Any]) -> None:
    """The written fields fit the schema the apiserver enforces (pydantic raises otherwise)."""
    model.model_validate(fields)


def address(length: int) -> str:
    """A valid address of exactly `length` characters (64 before the @, labels of <= 63)."""
    local = "a" * 64
    labels, left = [], length - len(local) - 1 - len(".com")
    while left > 0:
        size = min(63, left - 1 if left > 63 else left)
        labels.append("b" * size)
        left -= size + 1
    return f"{local}@{'.'.join(labels)}.com"


# ------------------------------------------------------------------------- run-now, reactivate


RUN_NOW_LENGTHS = [1, 253, 254, ANNOTATIONS_LIMIT - 1024]


@pytest.mark.parametrize("length", RUN_NOW_LENGTHS)
def test_run_now_of_any_admitted_length_is_acted_on_once(length: int) -> None:
    value = "v" * length
    assert admitted({contract.RUN_NOW_ANNOTATION: value})
    report = {"metadata": {"annotations": {contract.RUN_NOW_ANNOTATION: value}}, "status": {}}
    assert st.pending_run_now(report) == value
    report["status"] = {"runNowHandled": cj.digest(value)}
    stores(models.ScheduledReportStatus, report["status"])
    assert st.pending_run_now(report) is None
    # A different value that only differs past any cut is a new request.
    other = value + "w"
    report["metadata"]["annotations"][contract.RUN_NOW_ANNOTATION] = other
    assert st.pending_run_now(report) == other


def test_run_now_equal_to_the_stored_digest_is_still_a_new_request() -> None:
    first = "r1"
    report = {
        "metadata": {"annotations": {contract.RUN_NOW_ANNOTATION: cj.digest(first)}},
        "status": {"runNowHandled": cj.digest(first)},
    }
    assert admitted(report["metadata"]["annotations"])
    assert st.pending_run_now(report) == cj.digest(first)


def disabled(value: str, handled: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "weekly",
            "generation": 2,
            "annotations": {contract.REACTIVATE_ANNOTATION: value},
        },
        "spec": changed({}),
        "status": {
            "phase": models.Phase.DISABLED,
            "observedGeneration": 2,
            "reactivateHandled": handled,
        },
    }


@pytest.mark.parametrize("length", RUN_NOW_LENGTHS)
def test_reactivate_of_any_admitted_length_is_acted_on_once(length: int) -> None:
    value = "v" * length
    assert admitted({contract.REACTIVATE_ANNOTATION: value})
    first = st.reconcile(disabled(value, ""), (), NOW, next_fire_time)
    written = first.change.status["reactivateHandled"]
    stores(models.ScheduledReportStatus, {"reactivateHandled": written})
    again = st.reconcile(disabled(value, written), (), NOW, next_fire_time)
    assert "reactivateHandled" not in again.change.status
    assert again.change.status["phase"] == models.Phase.DISABLED
    longer = st.reconcile(disabled(value + "w", written), (), NOW, next_fire_time)
    assert longer.change.status["phase"] != models.Phase.DISABLED


# ---------------------------------------------------------------------------------- send-test

SEND_TEST_MAX = limit(models.HistoryEntry, "test_recipient")  # 254: RFC 5321's path limit


@pytest.mark.parametrize(
    "length", [SEND_TEST_MAX - 1, SEND_TEST_MAX], ids=["253", "254-admission-maximum"]
)
def test_send_test_at_the_admission_maximum_is_acted_on_once(length: int) -> None:
    value = address(length)
    assert len(value) == length
    assert admitted({testsend.ANNOTATION: value})
    fields, to, refusal = testsend.decide({testsend.ANNOTATION: value}, {}, valid=True)
    assert (to, refusal) == (value, None)
    stores(models.ScheduledReportStatus, fields)
    stores(models.HistoryEntry, {"jobName": "j", "outcome": "Delivered", "testRecipient": value})
    again = testsend.decide({testsend.ANNOTATION: value}, fields, valid=True)
    assert again == ({}, None, None), "the same address started a second test send"


def test_send_test_one_past_the_maximum_is_refused_at_admission() -> None:
    assert not admitted({testsend.ANNOTATION: address(SEND_TEST_MAX + 1)})


# ------------------------------------------------------------------------ spec string fields


def string_limits(model: type[BaseModel], path: str = "spec") -> dict[str, int]:
    """Every string field of the spec with a maxLength, list items as `path[]`."""
    found: dict[str, int] = {}
    for name, info in model.model_fields.items():
        key = f"{path}.{info.alias or name}"
        annotation = info.annotation
        nested = [a for a in (annotation, *typing.get_args(annotation)) if _is_model(a)]
        if nested:
            found |= string_limits(nested[0], key)
            continue
        if typing.get_origin(annotation) is list:
            (item,) = typing.get_args(annotation)
            if _is_model(item):
                found |= string_limits(item, f"{key}[]")
            elif (size := _max_len(typing.get_args(item)[1:])) is not None:
                found[f"{key}[]"] = size
            continue
        is_text = str in (annotation, *typing.get_args(annotation))
        if is_text and (size := _max_len(info.metadata)) is not None:
            found[key] = size
    return found


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _max_len(metadata: Any) -> int | None:
    for item in metadata:
        for meta in (item, *getattr(item, "metadata", ())):
            if isinstance(meta, annotated_types.MaxLen):
                return meta.max_length
    return None


# Spec strings the operator copies into a stored object with its own limit: (where, limit).
# Every other one is read where it is (the run's snapshot carries the spec whole).
COPIED = {
    "spec.title": ("ReportDelivery spec.report.title", limit(models.DeliveredReport, "title")),
    **{
        f"spec.recipients.{kind}[]": ("ReportDelivery recipients.*.accepted", models.MAX_ADDRESS)
        for kind in ("to", "cc", "bcc")
    },
}


def test_every_copied_spec_string_fits_where_it_is_copied() -> None:
    limits = string_limits(models.ScheduledReportSpec)
    assert {"spec.title", "spec.source.http.url", "spec.recipients.to[]"} <= set(limits)
    for path, (where, held) in COPIED.items():
        assert held >= limits[path], f"{path} (up to {limits[path]}) is cut in {where} ({held})"


def test_title_at_its_maximum_is_recorded_whole_and_one_past_it_is_refused() -> None:
    size = string_limits(models.ScheduledReportSpec)["spec.title"]
    assert validate_spec(changed({"title": "t" * size})).ok
    problem = validate_spec(changed({"title": "t" * (size + 1)}))
    assert not problem.ok and "spec.title" in problem.summary()
    report = {
        "metadata": {"name": "weekly", "uid": "u"},
        "spec": changed({"title": "t" * size}),
    }
    record = records.delivery_record(
        report,
        {"metadata": {"name": "weekly-1", "uid": "j", "namespace": "team"}, "status": {}},
        run_outcome.RunOutcome(
            job_name="weekly-1", delivered=True, failure=None, finished_at="2026-03-02T08:00:00Z"
        ),
        {},
        records.Retention(),
    )
    assert record["spec"]["report"]["title"] == "t" * size


def test_a_recipient_at_its_maximum_is_admitted_and_one_past_it_is_refused() -> None:
    size = string_limits(models.ScheduledReportSpec)["spec.recipients.to[]"]
    assert validate_spec(changed({"recipients.to": [address(size)]})).ok
    assert not validate_spec(changed({"recipients.to": [address(size + 1)]})).ok
    models.AddressList.model_validate({"accepted": [address(size)]})


def test_report_names_of_any_length_fit_records_and_cronjobs() -> None:
    name = "n" * 253  # the apiserver's longest object name
    assert len(records.report_label(name)) <= 63
    assert len(cj.cronjob_name(name)) <= cj.MAX_CRONJOB_NAME
    assert limit(models.DeliveredReport, "name") >= len(name)
