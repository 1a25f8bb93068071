"""RecipientGroups against the real apiserver and the real admission webhook: the CRD (short
name, category, kubectl explain), a group checked as recipients are, the `schedule` verb for an
external member asked of the apiserver (SubjectAccessReview) for the requesting user, at most
50 addresses once a report's groups are expanded, and a report naming a group that does not
exist yet admitted (GitOps applies in any order).

People are client certificates bound to the built-in edit role (which the chart's tidings-edit
aggregates into) and, for sam, the chart's tidings-schedule ClusterRole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.admission_cases import DROP, changed
from tests.support.admission_webhook import serving_webhook, wait_until_enforced
from tests.support.rbac_users import role_binding, wait_allowed

from tidings import models
from tidings.controller import permissions, recipient_groups
from tidings.controller.settings import Settings

pytestmark = pytest.mark.cluster

DOMAINS = ("example.com",)
PEOPLE = {"eddie": ["edit"], "sam": ["edit", permissions.SCHEDULE_ROLE]}
GROUP_DENIED = f'admission webhook "{recipient_groups.GROUP_WEBHOOK_ID}" denied the request'
REPORT_DENIED = 'admission webhook "validate.scheduledreports.tidings.dev" denied the request'


class Person:
    def __init__(self, name: str, api: Any, namespace: str) -> None:
        self.name, self.api, self.namespace = name, api, namespace

    def _args(self, plural: str) -> tuple[str, str, str, str]:
        return (models.GROUP, models.VERSION, self.namespace, plural)

    def create_group(self, name: str, addresses: list[str]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.GROUP_KIND,
            "metadata": {"name": name},
            "spec": {"addresses": addresses},
        }
        return self.api.create_namespaced_custom_object(*self._args(models.GROUP_PLURAL), body)

    def patch_group(self, name: str, addresses: list[str]) -> dict[str, Any]:
        patch = {"spec": {"addresses": addresses}}
        return self.api.patch_namespaced_custom_object(
            *self._args(models.GROUP_PLURAL), name, patch
        )

    def create_report(self, name: str, recipients: dict[str, list[str]]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "metadata": {"name": name},
            "spec": changed({"schedule": DROP, "recipients": recipients}),
        }
        return self.api.create_namespaced_custom_object(*self._args(models.PLURAL), body)

    def refused(self, call: str, *args: Any) -> tuple[int, str]:
        from kubernetes.client import ApiException

        try:
            getattr(self, call)(*args)
        except ApiException as exc:
            return exc.status, json.loads(exc.body)["message"]
        pytest.fail(f"{self.name} was allowed to {call} {args[:1]}")


@pytest.fixture(scope="module")
def people(control_plane, kube, reports, roles) -> Iterator[dict[str, Person]]:
    from kubernetes import client

    ns = reports.namespace
    rbac = client.RbacAuthorizationV1Api(kube)
    for user, role_names in PEOPLE.items():
        for role in role_names:
            rbac.create_namespaced_role_binding(ns, role_binding(f"{user}-{role}", role, user))
    wait_allowed(kube, "eddie", ns, "create")
    wait_allowed(kube, "sam", ns, "schedule")
    clients = {user: control_plane.api_client(user=user) for user in PEOPLE}
    yield {user: Person(user, client.CustomObjectsApi(c), ns) for user, c in clients.items()}
    for api_client in clients.values():
        api_client.close()


@pytest.fixture(scope="module")
def webhook(control_plane, kube, reports, people, tmp_path_factory) -> Iterator[dict]:
    pki = tmp_path_factory.mktemp("groups-pki")
    settings = Settings(allowed_recipient_domains=DOMAINS)
    with serving_webhook(control_plane, kube, reports.namespace, pki, settings) as configuration:
        wait_until_enforced(reports)
        yield configuration


def test_the_crd_has_its_short_name_category_and_explain(control_plane):
    out = control_plane.kubectl("api-resources", "--categories=tidings", "-o", "name").stdout
    assert "recipientgroups.tidings.dev" in out.split()
    explained = control_plane.kubectl("explain", "rg.spec.addresses").stdout
    assert "The members: bare addresses, at most 50" in " ".join(explained.split())
    explained = control_plane.kubectl("explain", "sr.spec.recipients.to").stdout
    assert "or @name for the RecipientGroup" in " ".join(explained.split())


def test_an_external_member_needs_the_schedule_verb_on_the_group(reports, people, webhook):
    eddie, sam, ns = people["eddie"], people["sam"], reports.namespace
    eddie.create_group("team", ["ann@example.com", "bob@example.com"])
    code, message = eddie.refused(
        "create_group", "partners", ["ann@example.com", "eve@partner.org"]
    )
    assert code == 403
    change = 'adding the external member "eve@partner.org" (allowed domains: example.com)'
    need = permissions.Need("spec.addresses[1]", change)
    assert message == f"{GROUP_DENIED}: " + recipient_groups.group_refusal([need], "eddie", ns)
    assert 'needs the "schedule" verb on recipientgroups.tidings.dev' in message

    sam.create_group("partners", ["ann@example.com", "eve@partner.org"])
    # An editor may drop a member or keep the external one sam admitted; not add another.
    eddie.patch_group("partners", ["eve@partner.org", "cat@example.com"])
    code, message = eddie.refused(
        "patch_group", "partners", ["eve@partner.org", "mallory@elsewhere.net"]
    )
    assert code == 403 and 'spec.addresses[1]: adding the external member "mallory' in message
    # Naming a group in a report needs nothing more: its members were admitted on the group.
    eddie.create_report("to-partners", {"to": ["@partners"]})


def test_a_group_is_checked_as_recipients_are(people, webhook):
    eddie = people["eddie"]
    code, message = eddie.refused("create_group", "bad", ["Eve <eve@example.com>"])
    assert code == 422
    assert f"{models.GROUP_KIND} is invalid: spec.addresses[0]: must be a bare address" in message
    code, message = eddie.refused("create_group", "twice", ["a@example.com", "A@example.com"])
    assert code == 422  # the CRD's own rule, before the webhook
    assert "an address may appear only once in a group" in message


def test_a_report_may_name_a_group_that_does_not_exist_yet(people, webhook):
    created = people["eddie"].create_report("gitops", {"to": ["@later"], "cc": ["x@example.com"]})
    assert created["spec"]["recipients"]["to"] == ["@later"]
    code, message = people["eddie"].refused("create_report", "bad-name", {"to": ["@Not_A_Name"]})
    assert code == 422 and "spec.recipients.to[0]: must be @ and a RecipientGroup name" in message


def test_at_most_50_addresses_once_groups_are_expanded(people, webhook):
    eddie = people["eddie"]
    forty = [f"m{i:02d}@example.com" for i in range(40)]
    eddie.create_group("forty", forty)
    ten = [f"d{i:02d}@example.com" for i in range(10)]
    eddie.create_report("fifty", {"to": ["@forty"], "cc": ten})
    code, message = eddie.refused(
        "create_report", "fifty-one", {"to": ["@forty"], "cc": [*ten, "one-more@example.com"]}
    )
    assert code == 422
    assert f"{REPORT_DENIED}: {models.KIND} is invalid: spec.recipients: at most 50" in message
    assert "found 51" in message
    # Growing the group would take the report over: refused naming the report.
    code, message = eddie.refused("patch_group", "forty", [*forty, "m40@example.com"])
    assert code == 422
    assert f"{models.KIND} fifty names @forty" in message and "found 51" in message
    # An address both listed and in the group counts once: 41 members, 50 addresses.
    eddie.patch_group("forty", [*forty, ten[0]])
