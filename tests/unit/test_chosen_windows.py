"""Chosen windows, pure: parsing `run --at` and the run-at annotation, what a resend is for,
the Jobs both start (names, env, ownership), their records' trigger, and what the relay admits
and keys for a resend (the end-to-end runs: tests/operator/test_chosen_windows_cluster.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support.report_bodies import report_body

from tidings import contract, kubectl_plugin, models
from tidings.controller import cronjob, records, reruns, run_ownership
from tidings.controller.settings import Settings
from tidings.kubectl_plugin.windows import at_problem
from tidings.relay import policy
from tidings.schedule import rfc3339

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
LONG_NAME = "quarterly-compliance-readiness-report-for-the-payments-platform-team-x"


def test_run_at_takes_an_rfc3339_time_with_a_zone_not_in_the_future() -> None:
    assert reruns.parse_run_at("2024-05-13T08:00:00Z", NOW) == datetime(2024, 5, 13, 8, tzinfo=UTC)
    assert reruns.parse_run_at("2024-05-13T10:00:00+02:00 again", NOW) == datetime(
        2024, 5, 13, 8, tzinfo=UTC
    )  # the note after a space tells repeats apart
    assert reruns.parse_run_at(rfc3339(NOW), NOW) == NOW  # now itself is not the future
    for bad, rule in (
        ("2024-05-13T08:00:00", "is not an RFC 3339 time with a zone"),
        ("13/05/2024", "is not an RFC 3339 time"),
        ("", "is not an RFC 3339 time"),
        (rfc3339(NOW + timedelta(seconds=1)), "is in the future (now 2026-12-02T09:30:00Z)"),
    ):
        with pytest.raises(ValueError) as caught:
            reruns.parse_run_at(bad, NOW)
        assert str(caught.value).startswith(f"{reruns.RUN_AT_PATH}: "), bad
        assert rule in str(caught.value), bad


def test_the_plugin_names_its_flag_and_refuses_a_note() -> None:
    assert at_problem("2024-05-13T08:00:00Z", NOW) is None
    problem = at_problem("2030-01-01T00:00:00Z", NOW)
    assert problem is not None and problem.startswith("--at: 2030-01-01T00:00:00Z is in the future")
    assert (at_problem("2024-05-13T08:00:00Z x", NOW) or "").startswith("--at: ")
    args = kubectl_plugin.build_parser().parse_args(
        ["run", "r", "--at", "2024-05-13T08:00:00Z", "-n", "team", "--wait"]
    )
    assert (args.at, args.namespace, args.wait) == ("2024-05-13T08:00:00Z", "team", True)
    commands = kubectl_plugin.build_parser()._subparsers._group_actions[0].choices
    for name in commands:  # --help: every subcommand with an example
        lines = [line.split()[:3] for line in kubectl_plugin.EXAMPLES.splitlines()]
        assert ["kubectl", "tidings", name] in lines, name
    args = kubectl_plugin.build_parser().parse_args(["-n", "team", "resend", "rec-1", "--wait"])
    assert (args.delivery, args.namespace) == ("rec-1", "team")


def test_main_refuses_a_future_time_before_reaching_a_cluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "r", "--at", "2030-01-01T00:00:00Z", "--kubeconfig", "/nonexistent"]
    assert kubectl_plugin.main(argv, now=NOW) == 2
    assert "--at: 2030-01-01T00:00:00Z is in the future" in capsys.readouterr().err


def _report(name: str = LONG_NAME, **annotations: str) -> dict[str, Any]:
    body = report_body(name, recipients={"to": ["ciso@example.com"], "cc": ["Audit@Example.com"]})
    body["metadata"]["annotations"] = annotations
    body["status"] = {}
    return body


def test_pending_values_act_once_by_digest() -> None:
    value = "2024-05-13T08:00:00Z 17"
    report = _report(**{contract.RUN_AT_ANNOTATION: value})
    assert reruns.pending(report, contract.RUN_AT_ANNOTATION, "runAtHandled") == value
    report["status"]["runAtHandled"] = contract.digest(value)
    assert reruns.pending(report, contract.RUN_AT_ANNOTATION, "runAtHandled") is None


def _record(**recipients: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "rec-1"},
        "spec": {
            "report": {"name": LONG_NAME, "uid": _report()["metadata"]["uid"]},
            "trigger": "Schedule",
            "scheduledTime": "2026-11-30T08:00:00Z",
            "recipients": {"accepted": 1, "refused": 1, "omitted": 0, **recipients},
        },
    }


def test_a_resend_is_for_whom_the_run_did_not_reach_and_the_report_still_admits() -> None:
    record = _record(
        to={"intended": ["ciso@example.com", "gone@example.com"], "accepted": []},
        cc={"intended": ["Audit@example.com", "audit@example.com"], "accepted": []},
        bcc={"intended": [], "accepted": []},
    )
    plan = reruns.plan_resend(_report(), record, "rec-1")
    # gone@ is no longer on the report; domains compare case-insensitively, local parts not.
    assert plan.addresses == ["ciso@example.com", "Audit@Example.com"]  # as the spec has it now
    assert plan.scheduled == "2026-11-30T08:00:00Z"
    reached = _record(to={"intended": ["ciso@example.com"], "accepted": ["ciso@example.com"]})
    with pytest.raises(ValueError, match="nothing to resend"):
        reruns.plan_resend(_report(), reached, "rec-1")
    for change, rule in (
        ({"report": {"name": "x", "uid": "other"}}, "a run of another report"),
        ({"trigger": "Test"}, "is a test send"),
        ({"scheduledTime": None}, "has no scheduledTime"),
    ):
        bad = _record(to={"intended": ["ciso@example.com"], "accepted": []})
        bad["spec"].update(change)
        with pytest.raises(ValueError, match=rule) as caught:
            reruns.plan_resend(_report(), bad, "rec-1")
        assert str(caught.value).startswith(f"{reruns.RESEND_PATH}: ReportDelivery rec-1")
    with pytest.raises(ValueError, match="does not exist"):
        reruns.plan_resend(_report(), None, "rec-1")
    for bad in ("../../secrets/x", "", "Rec-1", "x" * 254):
        with pytest.raises(ValueError, match="is not a ReportDelivery name"):
            reruns.plan_resend(_report(), None, bad)
    cut = _record(to={"intended": ["ciso@example.com"], "accepted": []})
    cut["spec"]["recipients"]["omitted"] = 3
    with pytest.raises(ValueError, match="who it did not reach is unknown"):
        reruns.plan_resend(_report(), cut, "rec-1")


def _stored(job: dict[str, Any], uid: str) -> dict[str, Any]:
    job["metadata"]["uid"] = uid
    return job


def test_the_jobs_fit_a_name_carry_the_window_and_pass_the_ownership_check() -> None:
    report = _report()
    template = cronjob.desired_cronjob(report, Settings(), suspend=True)
    template["metadata"].update(uid="cron-uid", generation=1, annotations={})
    template["metadata"]["annotations"][contract.WRITTEN_GENERATION] = "1"
    at = datetime(2024, 5, 13, 8, tzinfo=UTC)
    rerun = _stored(reruns.rerun_job(report, template, "2024-05-13T08:00:00Z 1", at), "j1")
    plan = reruns.Resend("rec-1", "2026-11-30T08:00:00Z", ["Audit@Example.com"])
    resend = _stored(reruns.resend_job(report, template, "rec-1 2", plan), "j2")
    for job in (rerun, resend):
        assert len(job["metadata"]["name"]) <= 63
        assert contract.FINALIZER in job["metadata"]["finalizers"]
        assert run_ownership.foreign_reason(job, report, template, "cron-uid") is None
    env = {e["name"]: e["value"] for e in resend["spec"]["template"]["spec"]["containers"][0]["env"]
           if "value" in e}  # fmt: skip
    assert env[contract.RESEND_RECIPIENTS_ENV] == "Audit@Example.com"
    assert env[contract.SCHEDULED_TIME_ENV] == "2026-11-30T08:00:00Z"
    # A resend Job whose env lists more than its annotation is not the operator's.
    forged = _stored(reruns.resend_job(report, template, "rec-1 3", plan), "j3")
    forged["spec"]["template"]["spec"]["containers"][0]["env"][-1]["value"] += ",ciso@example.com"
    assert run_ownership.foreign_reason(forged, report, template, "cron-uid") is not None

    assert records.trigger(rerun) == models.Trigger.RERUN
    assert records.trigger(resend) == models.Trigger.RESEND
    # Whom it was for: the snapshot's lists, narrowed to the resend's addresses.
    assert records.intended(resend) == {"to": [], "cc": ["Audit@Example.com"], "bcc": []}
    assert records.intended(rerun)["to"] == ["ciso@example.com"]

    # The relay: a resend is keyed by its record and admits at most its addresses.
    run = policy.run_of(resend, report)
    assert run.trigger == "resend:rec-1" and run.scheduled == "2026-11-30T08:00:00Z"
    assert policy.admitted(report, run) == {"Audit@example.com": "spec.recipients.cc"}
    run = policy.run_of(rerun, report)
    assert run.trigger == f"run-now:{contract.digest('2024-05-13T08:00:00Z 1')}"
    assert run.scheduled == "2024-05-13T08:00:00Z"
    assert set(policy.admitted(report, run)) == {"ciso@example.com", "Audit@example.com"}


def test_a_resend_of_a_group_reaches_the_members_the_run_missed_as_the_group_is_now() -> None:
    report = _report()
    report["spec"]["recipients"] = {"to": ["@finance", "ciso@example.com"]}
    # The record keeps "@finance" as written; accepted holds the expanded addresses.
    record = _record(
        to={
            "intended": ["@finance", "ciso@example.com"],
            "accepted": ["ciso@example.com", "a@example.com"],
        },
    )
    found = {"finance": ["a@example.com", "b@example.com"]}
    plan = reruns.plan_resend(report, record, "rec-1", found)
    assert plan.addresses == ["b@example.com"]  # a@ got it; never "@finance" itself
    # A group that no longer exists admits nobody: only the literal address is left to miss.
    with pytest.raises(ValueError, match="nothing to resend"):
        reruns.plan_resend(report, record, "rec-1", {})
