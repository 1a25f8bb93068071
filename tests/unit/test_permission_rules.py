"""What needs the `schedule` verb (controller.permissions): the decisions the webhook acts on."""

from __future__ import annotations

import pytest
from tests.support.admission_cases import BASE, DROP, changed

from tidings.controller.permissions import (
    Need,
    access_review,
    added_recipients,
    domain_allowed,
    parse_domains,
    refusal,
    schedule_needs,
)

MANUAL = changed({"schedule": DROP})
DOMAINS = ("example.com",)


def paths(needs: list[Need]) -> list[str]:
    return [need.path for need in needs]


# -- schedules


def test_creating_a_scheduled_report_needs_the_verb():
    assert schedule_needs(None, BASE, DOMAINS) == [Need("spec.schedule", "setting a schedule")]


@pytest.mark.parametrize("schedule", [DROP, "", "   "])
def test_creating_a_manual_only_report_needs_nothing(schedule):
    assert schedule_needs(None, changed({"schedule": schedule}), DOMAINS) == []


def test_setting_a_schedule_on_a_manual_report_needs_the_verb():
    assert paths(schedule_needs(MANUAL, BASE, DOMAINS)) == ["spec.schedule"]


def test_changing_a_schedule_needs_the_verb_but_respacing_it_does_not():
    needs = schedule_needs(BASE, changed({"schedule": "0 10 * * 1"}), DOMAINS)
    assert needs == [Need("spec.schedule", "changing the schedule")]
    assert schedule_needs(BASE, changed({"schedule": " 0  9 * * 1"}), DOMAINS) == []


def test_removing_a_schedule_or_suspending_needs_nothing():
    assert schedule_needs(BASE, MANUAL, DOMAINS) == []
    assert schedule_needs(BASE, changed({"suspend": True}), DOMAINS) == []
    assert schedule_needs(changed({"suspend": True}), BASE, DOMAINS) == []


def test_moving_a_scheduled_report_to_another_time_zone_needs_the_verb():
    needs = schedule_needs(BASE, changed({"timeZone": "America/New_York"}), DOMAINS)
    assert needs == [Need("spec.timeZone", "moving the schedule to another time zone")]
    # The default zone written out is no move.
    utc = changed({"timeZone": DROP})
    assert schedule_needs(utc, changed({"timeZone": "UTC"}), DOMAINS) == []
    # A manual-only report has no send time to move.
    assert schedule_needs(MANUAL, changed({"schedule": DROP, "timeZone": "Asia/Tokyo"}), ()) == []


def test_other_edits_of_a_scheduled_report_need_nothing():
    edited = changed({"title": "Renamed", "filters.window.last": "14d"})
    assert schedule_needs(BASE, edited, DOMAINS) == []


# -- recipients


@pytest.mark.parametrize(
    ("address", "domains", "allowed"),
    [
        ("a@example.com", ("example.com",), True),
        ("a@EXAMPLE.com", ("example.com",), True),
        ("a@mail.example.com", ("example.com",), False),  # exact unless written with a dot
        ("a@mail.example.com", (".example.com",), True),
        ("a@deep.mail.example.com", (".example.com",), True),
        ("a@example.com", (".example.com",), False),  # .example.com: subdomains only
        ("a@notexample.com", (".example.com",), False),
        ("a@example.com.evil.io", ("example.com",), False),
        ("a@gmail.com", ("example.com", "corp.example.org"), False),
        ("a@corp.example.org", ("example.com", "corp.example.org"), True),
        ("a@example.com", (), False),
    ],
)
def test_domain_rule(address, domains, allowed):
    assert domain_allowed(address, domains) is allowed


def test_parse_domains_lowercases_and_reports_entries_that_are_not_domains():
    assert parse_domains(" Example.com, .corp.example.org ,,") == (
        ("example.com", ".corp.example.org"),
        [],
    )
    assert parse_domains("example.com, @gmail.com, *.example.org") == (
        ("example.com",),
        ["@gmail.com", "*.example.org"],
    )
    assert parse_domains("") == ((), [])


def test_external_recipient_on_create_needs_the_verb_naming_the_field():
    spec = changed({"schedule": DROP, "recipients.cc": ["lead@example.com", "a@gmail.com"]})
    (need,) = schedule_needs(None, spec, DOMAINS)
    assert need.path == "spec.recipients.cc[1]"
    assert (
        need.change == 'adding the external recipient "a@gmail.com" (allowed domains: example.com)'
    )


def test_every_external_recipient_is_listed_with_the_schedule():
    spec = changed(
        {"recipients": {"to": ["a@gmail.com"], "bcc": ["b@partner.io", "c@example.com"]}}
    )
    assert paths(schedule_needs(None, spec, DOMAINS)) == [
        "spec.schedule",
        "spec.recipients.to[0]",
        "spec.recipients.bcc[0]",
    ]


def test_external_recipients_already_on_the_report_do_not_block_other_edits():
    """An editor may retitle a report someone with the verb sent to a partner, or move that
    address between to, cc and bcc (in any letter case): nobody new receives it."""
    old = changed({"recipients": {"to": ["ciso@example.com"], "cc": ["Audit@Partner.io"]}})
    new = changed(
        {
            "title": "New title",
            "recipients": {"to": ["ciso@example.com"], "bcc": ["audit@partner.io"]},
        }
    )
    assert added_recipients(old, new) == []
    assert schedule_needs(old, new, DOMAINS) == []
    more = changed(
        {"recipients": {"to": ["ciso@example.com", "x@partner.io"], "cc": ["Audit@Partner.io"]}}
    )
    assert paths(schedule_needs(old, more, DOMAINS)) == ["spec.recipients.to[1]"]


def test_without_allowed_domains_every_recipient_counts_as_internal():
    spec = changed({"schedule": DROP, "recipients": {"to": ["a@gmail.com"]}})
    assert schedule_needs(None, spec, ()) == []


# -- the review and the refusal


def test_access_review_carries_the_requesting_user_and_the_report():
    userinfo = {
        "username": "alice",
        "uid": "1234",
        "groups": ["team-a", "system:authenticated"],
        "extra": {"scopes": ["reports"]},
    }
    review = access_review(userinfo, "team-a", "weekly")
    assert review["apiVersion"] == "authorization.k8s.io/v1"
    assert review["kind"] == "SubjectAccessReview"
    assert review["spec"] == {
        "user": "alice",
        "uid": "1234",
        "groups": ["team-a", "system:authenticated"],
        "extra": {"scopes": ["reports"]},
        "resourceAttributes": {
            "group": "tidings.dev",
            "resource": "scheduledreports",
            "verb": "schedule",
            "namespace": "team-a",
            "name": "weekly",
        },
    }


def test_access_review_without_a_name_asks_for_any_report():
    review = access_review({"username": "bob", "groups": []}, "team-b", None)
    assert "name" not in review["spec"]["resourceAttributes"]
    assert "uid" not in review["spec"] and "extra" not in review["spec"]


def test_refusal_names_each_field_the_verb_and_the_role():
    needs = [
        Need("spec.schedule", "setting a schedule"),
        Need(
            "spec.recipients.to[1]",
            'adding the external recipient "a@gmail.com" (allowed domains: example.com)',
        ),
    ]
    message = refusal(needs, "alice", "team-a")
    needed = (
        'needs the "schedule" verb on scheduledreports.tidings.dev in namespace "team-a", which '
        'user "alice" lacks (a namespace admin can bind the tidings-schedule ClusterRole)'
    )
    assert message == (
        f"ScheduledReport is forbidden: spec.schedule: setting a schedule {needed}; "
        f'spec.recipients.to[1]: adding the external recipient "a@gmail.com" (allowed domains: '
        f"example.com) {needed}"
    )


def test_operator_wide_domains_come_from_the_environment_and_must_be_domains():
    from tidings.controller.settings import SettingsError
    from tidings.controller.settings_load import load_settings

    env = {"TIDINGS_ALLOWED_RECIPIENT_DOMAINS": "example.com, .corp.example.org"}
    assert load_settings(env).allowed_recipient_domains == ("example.com", ".corp.example.org")
    with pytest.raises(SettingsError) as refused:
        load_settings({"TIDINGS_ALLOWED_RECIPIENT_DOMAINS": "example.com,@gmail.com"})
    assert str(refused.value) == (
        "TIDINGS_ALLOWED_RECIPIENT_DOMAINS: '@gmail.com' is not a domain "
        "(example.com, or .example.com for its subdomains)"
    )


# -- the ClusterRoles and their documentation agree


def test_docs_roles_table_matches_the_cluster_roles():
    import re

    import yaml

    from tidings_dev.cluster import REPO_ROOT

    chart_file = REPO_ROOT / "charts" / "tidings" / "templates" / "user-clusterroles.yaml"
    roles = {}
    for role in filter(None, yaml.safe_load_all(chart_file.read_text())):
        verbs = [
            verb
            for rule in role["rules"]
            if "scheduledreports" in rule["resources"]
            for verb in rule["verbs"]
        ]
        aggregates = [
            key.rsplit("aggregate-to-", 1)[1]
            for key in role["metadata"]["labels"]
            if key.startswith("rbac.authorization.k8s.io/aggregate-to-")
        ]
        roles[role["metadata"]["name"]] = (
            ", ".join(verbs),
            ", ".join(f"`{a}`" for a in aggregates),
        )

    text = (REPO_ROOT / "docs" / "permissions.md").read_text()
    documented = {
        name: (verbs, aggregates)
        for name, verbs, aggregates in re.findall(
            r"^\| `(tidings-[a-z]+)` \| ([^|]+) \| ([^|]+) \|", text, re.MULTILINE
        )
    }
    assert {k: (v.strip(), a.strip()) for k, (v, a) in documented.items()} == roles
    assert set(roles) == {"tidings-view", "tidings-edit", "tidings-schedule", "tidings-admin"}
