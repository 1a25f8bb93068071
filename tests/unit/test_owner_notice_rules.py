"""spec.owners: the schedule verb for external owners (controller.permissions), when a counted
run tells them and what the mail says (controller.owner_notices), and what the relay admits
for the operator's notice (relay.policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.support.admission_cases import BASE, DROP, changed

from tidings.controller import owner_notices as on
from tidings.controller.permissions import schedule_needs
from tidings.controller.run_outcome import RunOutcome
from tidings.relay import policy

DOMAINS = ("example.com",)
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
MANUAL = changed({"schedule": DROP})


def _report(owners: list[str], **status: object) -> dict:
    return {
        "metadata": {"name": "weekly", "namespace": "team-payments", "uid": "u-1"},
        "spec": {**changed({"owners": owners}), "failurePolicy": {"disableAfter": 3}},
        "status": {"consecutiveFailures": 2, "lastError": "boom", **status},
    }


def _outcome(**fields: object) -> RunOutcome:
    base: dict = {"job_name": "weekly-1", "delivered": False, "failure": "permanent"}
    base["finished_at"] = "2026-12-02T09:00:00Z"
    base["error"] = "SMTP 550 no such user"
    return RunOutcome(**{**base, **fields})


# -- admission


def test_an_external_owner_needs_the_verb_naming_the_field() -> None:
    (need,) = schedule_needs(None, changed({"schedule": DROP, "owners": ["a@gmail.com"]}), DOMAINS)
    assert need.path == "spec.owners[0]"
    assert need.change == 'adding the external owner "a@gmail.com" (allowed domains: example.com)'
    assert (
        schedule_needs(None, changed({"schedule": DROP, "owners": ["o@example.com"]}), DOMAINS)
        == []
    )


def test_an_owner_already_admitted_as_owner_or_recipient_is_nobody_new() -> None:
    old = changed({"schedule": DROP, "recipients": {"to": ["Audit@Partner.io"]}})
    new = changed({"schedule": DROP, "recipients": {"to": ["audit@partner.io"]}})
    new["owners"] = ["audit@partner.io"]
    assert schedule_needs(old, new, DOMAINS) == []
    assert schedule_needs(new, {**new, "title": "x"}, DOMAINS) == []
    assert schedule_needs(None, BASE, ()) == schedule_needs(None, BASE, ())  # no domains: internal


# -- when


def test_which_runs_call_for_a_notice() -> None:
    report = _report(["o@example.com"])
    assert on.decide(report, _outcome(), None).kind == on.PERMANENT
    assert on.decide(report, _outcome(failure="transient"), None) is None
    assert on.decide(report, _outcome(failure="transient"), "Disabled").kind == on.DISABLED
    refused = _outcome(delivered=True, failure=None, recipients_rejected=1)
    assert on.decide(report, refused, None).kind == on.REFUSED
    assert on.decide(report, _outcome(test_recipient="t@example.com"), "Disabled") is None
    assert on.decide(_report([]), _outcome(), "Disabled") is None


def test_the_rate_limit_counts_from_status_and_spares_the_disabled_notice() -> None:
    notice = on.decide(_report(["o@example.com"]), _outcome(), None)
    assert notice is not None
    recent = {"ownerNoticeSentAt": "2026-12-02T08:00:00Z"}
    assert "rate-limited" in (on.rate_limited(notice, recent, NOW, 6 * 3600) or "")
    assert on.rate_limited(notice, recent, NOW + timedelta(hours=4, minutes=59), 6 * 3600)
    assert on.rate_limited(notice, recent, NOW + timedelta(hours=5), 6 * 3600) is None  # 6 h on
    assert on.rate_limited(notice, recent, NOW, 3600) is None
    assert on.rate_limited(notice, {}, NOW, 6 * 3600) is None
    disabled = on.decide(_report(["o@example.com"]), _outcome(), "Disabled")
    assert disabled is not None
    assert on.rate_limited(disabled, recent, NOW, 6 * 3600) is None


def test_the_disabled_mail_says_what_failed_and_how_to_reactivate() -> None:
    notice = on.decide(
        _report(["o@example.com", "d@example.com"], consecutiveFailures=3), _outcome(), "Disabled"
    )
    assert notice is not None
    mail = on.message(notice, "tidings@platform.test", NOW)
    assert mail["Subject"] == "[Tidings] report team-payments/weekly is Disabled"
    assert mail["To"] == "o@example.com, d@example.com"
    body = mail.get_content()
    assert "Disabled after 3 consecutive failed runs" in body
    assert "Last error: SMTP 550 no such user" in body
    assert "kubectl tidings reactivate weekly -n team-payments" in body
    assert notice.login == "owner-notice:team-payments/weekly/weekly-1:Disabled"
    permanent = on.message(on.decide(_report(["o@example.com"]), _outcome(), None), "f@x.io", NOW)
    assert "reactivate" not in permanent.get_content().split("How to fix:")[1].split("--")[0]


# -- the relay


def test_the_relay_admits_only_the_owners_for_the_operators_login() -> None:
    assert policy.notice_target("owner-notice:team-payments/weekly/weekly-1:Disabled") == (
        "team-payments",
        "weekly",
        "weekly-1:Disabled",
    )
    for bad in ("weekly", "owner-notice:team-payments/weekly", "owner-notice:A/b/c", ""):
        with pytest.raises(policy.Refused, match="owner-notice:<namespace>/<report>"):
            policy.notice_target(bad)
    report = _report(["Owner@Example.com"])
    run = policy.notice_run(report, "weekly-1:Disabled")
    allowed = policy.admitted(report, run)
    assert allowed == {"Owner@example.com": "spec.owners[0]"}
    assert policy.refusal("Owner@EXAMPLE.com", allowed, run) is None
    assert "not in spec.owners" in (policy.refusal("ciso@example.com", allowed, run) or "")
    assert run.key == "u-1||notice:weekly-1:Disabled"


def test_the_operator_is_told_apart_only_by_an_authenticated_review() -> None:
    user = {"username": "system:serviceaccount:tidings-system:tidings"}
    assert policy.service_account_of({"authenticated": True, "user": user}) == (
        "tidings-system:tidings"
    )
    assert policy.service_account_of({"authenticated": False, "user": user}) is None
    assert policy.service_account_of({"authenticated": True, "user": {"username": "admin"}}) is None


def test_a_notice_is_owed_from_the_count_until_its_outcome_is_written() -> None:
    notice = on.decide(_report(["o@example.com"]), _outcome(), "Disabled")
    assert notice is not None
    history = [{"jobName": "weekly-1", "outcome": "Failed"}, {"jobName": "weekly-0"}]
    marked = on.mark_pending(history, notice)
    assert marked[0]["ownerNotice"] == "Disabled: pending" and "ownerNotice" not in marked[1]
    report = _report(["o@example.com"], history=marked, consecutiveFailures=3)
    (again,) = on.owed(report)
    assert (again.kind, again.job, again.failures, again.login) == (
        "Disabled",
        "weekly-1",
        3,
        notice.login,
    )
    marked[0]["ownerNotice"] = on.sent_note(notice)
    assert on.owed(report) == []
    assert on.owed(_report([], history=on.mark_pending(history, notice))) == []  # no owners
