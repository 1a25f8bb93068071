"""Recipient groups, pure parts: expansion (tidings.groups), the @name rule and a group's own
rules (validation), what needs `schedule` (controller.recipient_groups, permissions), the
ConfigMap a run reads, the renderer's reading of it, and the relay's admission from the live
group objects (a forged ConfigMap admits nobody)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.report_bodies import BASE_SPEC

from tidings import groups, models
from tidings.controller import cronjob as cj
from tidings.controller import permissions, recipient_groups
from tidings.controller.settings import Settings
from tidings.relay.policy import Run, admitted, refusal
from tidings.renderer import recipients as renderer_recipients
from tidings.renderer.result import InputError
from tidings.validation import validate_group_spec, validate_spec


def group(name: str, *addresses: str) -> dict[str, Any]:
    """A RecipientGroup as the API returns it."""
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.GROUP_KIND,
        "metadata": {"name": name, "namespace": "team", "uid": f"uid-{name}"},
        "spec": {"addresses": list(addresses)},
    }


def report(**lists: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": "weekly", "namespace": "team", "uid": "report-uid"},
        "spec": {**BASE_SPEC, "recipients": lists},
    }


RUN = Run("team", "weekly", "report-uid", "weekly-29000000", "", "schedule", test=False)


def test_expansion_replaces_groups_keeps_order_and_sends_each_address_once() -> None:
    found = {"ops": ["a@example.com", "B@example.com"], "leads": ["b@example.com", "c@x.org"]}
    out = groups.expand(
        {"to": ["@ops", "z@example.com"], "cc": ["@leads", "a@EXAMPLE.com"], "bcc": ["@gone"]},
        found,
    )
    assert out.lists == {
        "to": ["a@example.com", "B@example.com", "z@example.com"],
        "cc": ["c@x.org"],
        "bcc": [],
    }
    assert out.missing == ["gone"]
    assert groups.named({"to": ["@ops"], "cc": ["@ops", "x@y.z"], "bcc": ["@b"]}) == ["ops", "b"]


def test_a_group_name_in_the_recipients_is_checked_as_a_name_not_an_address() -> None:
    spec = {**BASE_SPEC, "recipients": {"to": ["@ops", "@Bad_Name", "@-x"]}}
    problems = {p.path: p.message for p in validate_spec(spec).errors}
    assert "spec.recipients.to[0]" not in problems
    assert "RecipientGroup name" in problems["spec.recipients.to[1]"]
    assert "spec.recipients.to[2]" in problems


def test_a_group_is_checked_as_recipients_are() -> None:
    assert validate_group_spec({"addresses": ["a@example.com"]}).ok
    result = validate_group_spec(
        {"addresses": ["a@example.com", "A@example.com", "Eve <e@x.org>", "x@y.z\r\nBcc: q@r.s"]}
    )
    problems = {p.path: p.message for p in result.errors}
    assert "duplicates spec.addresses[0]" in problems["spec.addresses[1]"]
    assert "bare address" in problems["spec.addresses[2]"]
    assert "header injection" in problems["spec.addresses[3]"]
    assert not validate_group_spec({"addresses": []}).ok
    too_many = [f"u{i}@example.com" for i in range(models.MAX_RECIPIENTS + 1)]
    (problem,) = validate_group_spec({"addresses": too_many}).errors
    assert problem.path == "spec.addresses"
    unknown = validate_group_spec({"addresses": ["a@b.co"], "members": []}).errors
    assert [p.path for p in unknown] == ["spec.members"]


def test_a_group_entry_needs_no_schedule_verb_but_an_external_member_does() -> None:
    domains = ("example.com",)
    spec = {**BASE_SPEC, "schedule": "", "recipients": {"to": ["@ops"]}}
    assert permissions.schedule_needs(None, spec, domains) == []
    needs = recipient_groups.member_needs(
        {"addresses": ["a@example.com"]},
        {"addresses": ["a@example.com", "b@example.com", "eve@outside.org"]},
        domains,
    )
    assert [(n.path, "eve@outside.org" in n.change) for n in needs] == [("spec.addresses[2]", True)]
    assert recipient_groups.member_needs(None, {"addresses": ["eve@outside.org"]}, ()) == []
    review = recipient_groups.group_access_review({"username": "ed"}, "team", "ops")
    assert review["spec"]["resourceAttributes"] == {
        "group": models.GROUP,
        "resource": "recipientgroups",
        "verb": "schedule",
        "namespace": "team",
        "name": "ops",
    }
    text = recipient_groups.group_refusal(needs, "ed", "team")
    assert 'needs the "schedule" verb on recipientgroups.tidings.dev' in text
    assert "spec.addresses[2]" in text


def test_a_group_that_would_take_a_report_over_50_is_named_with_the_report() -> None:
    many = [f"u{i}@example.com" for i in range(30)]
    more = [f"v{i}@example.com" for i in range(30)]
    reports = [report(to=["@ops", "@leads"]), {**report(to=["x@example.com"]), "metadata": {}}]
    problems = recipient_groups.overfull(reports, "ops", many, {"leads": more})
    assert problems == [
        "spec.addresses: ScheduledReport weekly names @ops: at most 50 recipients across to, "
        "cc and bcc once recipient groups are expanded, found 60"
    ]
    assert recipient_groups.overfull(reports, "ops", many[:10], {"leads": more}) == []


def test_the_configmap_is_owned_by_the_report_and_lists_missing_groups() -> None:
    body = report(to=["@ops"], cc=["@gone"])
    cm = recipient_groups.configmap(body, {"ops": ["a@example.com"]})
    assert cm["metadata"]["name"] == "tidings-recipients-weekly"
    (owner,) = cm["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (models.KIND, "report-uid", True)
    assert json.loads(cm["data"][groups.CONFIGMAP_KEY]) == {
        "groups": {"ops": ["a@example.com"]},
        "missing": ["gone"],
    }
    assert not recipient_groups.stale(cm, cm)
    assert recipient_groups.stale(None, cm)
    assert len(groups.configmap_name("r" * 253)) == 253


def test_the_run_pod_mounts_the_configmap_only_when_the_report_names_a_group() -> None:
    settings = Settings()

    def volumes(body: dict[str, Any]) -> dict[str, Any]:
        spec = cj.desired_cronjob(body, settings, suspend=False)["spec"]["jobTemplate"]["spec"]
        return {v["name"]: v for v in spec["template"]["spec"]["volumes"]}

    assert "recipients" not in volumes(report(to=["a@example.com"]))
    volume = volumes(report(to=["@ops"]))["recipients"]
    assert volume["configMap"] == {"name": "tidings-recipients-weekly"}  # not optional


def sr(**lists: list[str]) -> models.ScheduledReport:
    return models.ScheduledReport.model_validate(report(**lists))


def test_the_renderer_expands_from_the_mounted_configmap(tmp_path: Path) -> None:
    (tmp_path / groups.CONFIGMAP_KEY).write_text(
        groups.payload(["ops"], {"ops": ["a@example.com", "b@example.com"]})
    )
    out = renderer_recipients.resolve(sr(to=["@ops"], bcc=["c@example.com"]), tmp_path)
    assert out.spec.recipients.to == ["a@example.com", "b@example.com"]
    assert out.spec.recipients.bcc == ["c@example.com"]
    plain = sr(to=["a@example.com"])
    assert renderer_recipients.resolve(plain, tmp_path / "absent") is plain


def test_a_missing_group_ends_the_run_as_permanent_naming_it(tmp_path: Path) -> None:
    (tmp_path / groups.CONFIGMAP_KEY).write_text(groups.payload(["ops", "gone"], {"ops": []}))
    with pytest.raises(InputError) as raised:
        renderer_recipients.resolve(sr(to=["@ops"], cc=["@gone"]), tmp_path)
    assert raised.value.exit_code == 65
    assert "@gone does not exist in namespace team" in str(raised.value)
    with pytest.raises(InputError, match="not mounted"):
        renderer_recipients.resolve(sr(to=["@ops"]), tmp_path / "absent")


def test_the_relay_admits_the_live_members_and_refuses_what_a_forged_configmap_adds() -> None:
    body = report(to=["@ops", "d@example.com"], bcc=["@gone"])
    live = {"ops": group("ops", "a@example.com", "b@Example.com"), "gone": None}
    allowed = admitted(body, RUN, live)
    assert allowed == {
        "a@example.com": "spec.recipients.to (@ops)",
        "b@example.com": "spec.recipients.to (@ops)",
        "d@example.com": "spec.recipients.to",
    }
    # The pod read a forged ConfigMap adding eve to @ops: the relay never looked at it.
    forged = groups.payload(["ops"], {"ops": ["a@example.com", "eve@outside.org"]})
    assert "eve@outside.org" in forged
    reason = refusal("eve@outside.org", allowed, RUN)
    assert reason is not None and "not a recipient in the admitted spec" in reason
    assert (
        reason == "<eve@outside.org> is not a recipient in the admitted spec of report team/weekly"
    )
    assert refusal("b@EXAMPLE.COM", allowed, RUN) is None  # the domain is case-insensitive
    # Without the live group (not found, or not read), @ops admits nobody.
    assert admitted(body, RUN, {}) == {"d@example.com": "spec.recipients.to"}


def test_the_committed_group_crd_matches_the_models() -> None:
    from tidings import crdgen

    root = Path(__file__).resolve().parents[2]
    for where in ("crds", "charts/tidings/crds"):
        committed = (root / where / "recipientgroups.tidings.dev.yaml").read_text()
        assert committed == crdgen.crd_yaml(models.GROUP_KIND), (
            f"{where} is stale: run `tidings crd --kind RecipientGroup "
            "-o crds/recipientgroups.tidings.dev.yaml` and copy it to the chart"
        )
    crd = crdgen.crd(models.GROUP_KIND)
    names = crd["spec"]["names"]
    assert (names["kind"], names["shortNames"], names["categories"]) == (
        "RecipientGroup",
        ["rg"],
        ["tidings"],
    )
    assert "# RecipientGroup API reference" in crdgen.api_reference()


def test_a_local_send_expands_groups_from_a_file_or_says_how(tmp_path: Path) -> None:
    listed = {"apiVersion": "v1", "kind": "List", "items": [group("ops", "a@example.com")]}
    path = tmp_path / "groups.yaml"
    path.write_text(json.dumps(listed))
    out = renderer_recipients.from_file(sr(to=["@ops"], cc=["c@example.com"]), path)
    assert (out.spec.recipients.to, out.spec.recipients.cc) == (
        ["a@example.com"],
        ["c@example.com"],
    )
    with pytest.raises(InputError, match=r"names recipient group @ops: pass --groups FILE"):
        renderer_recipients.from_file(sr(to=["@ops"]), None)
    with pytest.raises(InputError, match="@other does not exist"):
        renderer_recipients.from_file(sr(to=["@other"]), path)
