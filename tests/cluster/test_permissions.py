"""The permission model against the real apiserver: Tidings' ClusterRoles aggregated into the
built-in view/edit/admin, and the webhook asking for the custom verb `schedule` through a
SubjectAccessReview on behalf of the requesting user.

Each person is a client certificate (a distinct user) bound in this module's namespace to a
BUILT-IN role (view, edit, admin), so what they may do proves the aggregation, plus the
tidings-schedule ClusterRole for the one who may schedule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from tests.support.admission_cases import BASE, DROP, changed
from tests.support.admission_webhook import DENIED, serving_webhook, wait_until_enforced
from tests.support.delivery_records import record
from tests.support.rbac_users import role_binding, wait_allowed

from tidings import models
from tidings.controller import permissions, testsend
from tidings.controller.settings import Settings

pytestmark = pytest.mark.cluster

OPERATOR_DOMAINS = ("example.com",)
NAMESPACE_DOMAINS = ".partner.example.org"  # the namespace annotation: subdomains of it
MANUAL = changed({"schedule": DROP})
# Who is bound to what in the namespace; "eve" starts as an editor and is promoted by "ada".
PEOPLE = {
    "vera": ["view"],
    "eddie": ["edit"],
    "sam": ["edit", permissions.SCHEDULE_ROLE],
    "ada": ["admin"],
    "eve": ["edit"],
}


@dataclass
class Person:
    """One user's view of the namespace's ScheduledReports."""

    name: str
    api: Any  # kubernetes.client.CustomObjectsApi with this user's client certificate
    namespace: str

    def _args(self) -> tuple[str, str, str, str]:
        return (models.GROUP, models.VERSION, self.namespace, models.PLURAL)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "metadata": {"name": name},
            "spec": spec,
        }
        return self.api.create_namespaced_custom_object(*self._args(), body)

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object(*self._args(), name, patch)

    def get(self, name: str) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(*self._args(), name)

    def list(self) -> list[str]:
        listed = self.api.list_namespaced_custom_object(*self._args())
        return sorted(item["metadata"]["name"] for item in listed["items"])

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(*self._args(), name)

    def refused(self, call: str, *args: Any) -> tuple[int, str]:
        """(HTTP status, message) of a call that must fail."""
        from kubernetes.client import ApiException

        try:
            getattr(self, call)(*args)
        except ApiException as exc:
            return exc.status, json.loads(exc.body)["message"]
        pytest.fail(f"{self.name} was allowed to {call} {args[:1]}")


def needs_schedule(path: str, change: str, user: str, namespace: str) -> str:
    """The webhook's refusal for one change, as kubectl and clients show it."""
    return f"{DENIED}: " + permissions.refusal([permissions.Need(path, change)], user, namespace)


@pytest.fixture(scope="module")
def people(control_plane, kube, reports, roles) -> Iterator[dict[str, Person]]:
    from kubernetes import client

    ns = reports.namespace
    client.CoreV1Api(kube).patch_namespace(
        ns, {"metadata": {"annotations": {permissions.DOMAINS_ANNOTATION: NAMESPACE_DOMAINS}}}
    )
    rbac = client.RbacAuthorizationV1Api(kube)
    for user, role_names in PEOPLE.items():
        for role in role_names:
            rbac.create_namespaced_role_binding(ns, role_binding(f"{user}-{role}", role, user))
    for user, verb in [
        ("vera", "list"),
        ("eddie", "create"),
        ("sam", "schedule"),
        ("ada", "delete"),
    ]:
        wait_allowed(kube, user, ns, verb)
    clients = {user: control_plane.api_client(user=user) for user in PEOPLE}
    yield {
        user: Person(user, client.CustomObjectsApi(api_client), ns)
        for user, api_client in clients.items()
    }
    for api_client in clients.values():
        api_client.close()


@pytest.fixture(scope="module")
def webhook(control_plane, kube, reports, people, tmp_path_factory) -> Iterator[dict]:
    pki = tmp_path_factory.mktemp("permissions-pki")
    settings = Settings(allowed_recipient_domains=OPERATOR_DOMAINS)
    with serving_webhook(control_plane, kube, reports.namespace, pki, settings) as configuration:
        wait_until_enforced(reports)
        yield configuration


def rules_for_reports(kube, cluster_role: str, resource: str = models.PLURAL) -> set[str]:
    """The verbs a ClusterRole (as aggregated by the controller) grants on a resource."""
    from kubernetes import client

    role = client.RbacAuthorizationV1Api(kube).read_cluster_role(cluster_role)
    return {
        verb
        for rule in role.rules or []
        if models.GROUP in (rule.api_groups or []) and resource in (rule.resources or [])
        for verb in rule.verbs
    }


def test_roles_aggregate_into_the_built_in_ones(kube, people):
    read = {"get", "list", "watch"}
    write = {"create", "update", "patch"}
    assert rules_for_reports(kube, "view") == read
    # edit gets tidings-edit directly and tidings-view through view; never delete or schedule.
    assert rules_for_reports(kube, "edit") == read | write
    assert rules_for_reports(kube, "admin") == read | write | {
        "delete",
        "deletecollection",
        "schedule",
    }


def test_delivery_records_are_read_by_view_and_edit_and_deleted_only_by_admin(
    kube, reports, people
):
    """Records are evidence. Nobody may change one (RBAC for edit, the CRD's rule
    for everyone else); only namespace admins (and the operator) delete them."""
    from kubernetes import client

    read = {"get", "list", "watch"}
    assert rules_for_reports(kube, "view", models.DELIVERY_PLURAL) == read
    assert rules_for_reports(kube, "edit", models.DELIVERY_PLURAL) == read
    assert rules_for_reports(kube, "admin", models.DELIVERY_PLURAL) == read | {
        "delete",
        "deletecollection",
    }
    ns = reports.namespace
    args = (models.GROUP, models.VERSION, ns, models.DELIVERY_PLURAL)
    body = record(ns, "evidence-1", datetime(2026, 9, 1, tzinfo=UTC))
    name = body["metadata"]["name"]
    client.CustomObjectsApi(kube).create_namespaced_custom_object(*args, body)

    def refused(person: Person, call: str, *rest: Any) -> tuple[int, str]:
        from kubernetes.client import ApiException

        try:
            getattr(person.api, f"{call}_namespaced_custom_object")(*args, *rest)
        except ApiException as exc:
            return exc.status, json.loads(exc.body)["message"]
        pytest.fail(f"{person.name} was allowed to {call} {name}")

    for person in (people["vera"], people["eddie"]):
        listed = person.api.list_namespaced_custom_object(
            *args, label_selector="tidings.dev/report=payments-weekly"
        )
        assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    eddie = people["eddie"]
    code, message = refused(eddie, "patch", name, {"spec": {"outcome": "Failed"}})
    assert code == 403 and 'User "eddie" cannot patch resource "reportdeliveries"' in message
    code, message = refused(eddie, "delete", name)
    assert code == 403 and 'User "eddie" cannot delete resource "reportdeliveries"' in message
    code, message = refused(eddie, "create", {**body, "metadata": {"name": "forged"}})
    assert code == 403 and 'cannot create resource "reportdeliveries"' in message
    ada = people["ada"]
    # Not even an admin may change one (a cluster admin meets the CRD's rule: test_records_cluster).
    code, message = refused(ada, "patch", name, {"spec": {"messageId": "<other@x>"}})
    assert code == 403 and 'User "ada" cannot patch resource "reportdeliveries"' in message
    ada.api.delete_namespaced_custom_object(*args, name)


def test_viewer_reads_reports_and_their_delivery_log_but_cannot_create(reports, people, webhook):
    reports.create("read-me", BASE)
    entry = {"jobName": "read-me-1", "outcome": "Delivered", "recipientsAccepted": 2}
    reports.patch_status("read-me", {"history": [entry]})
    vera = people["vera"]
    assert "read-me" in vera.list()
    assert vera.get("read-me")["spec"]["schedule"] == BASE["schedule"]
    status = vera.api.get_namespaced_custom_object_status(*vera._args(), "read-me")["status"]
    assert status["history"][0]["jobName"] == "read-me-1"

    code, message = vera.refused("create", "vera-report", MANUAL)
    assert code == 403
    assert 'User "vera" cannot create resource "scheduledreports"' in message
    code, message = vera.refused("patch", "read-me", {"metadata": {"annotations": {"x": "1"}}})
    assert code == 403 and 'cannot patch resource "scheduledreports"' in message


def test_editor_creates_a_manual_report_and_runs_it_now(people, webhook):
    eddie = people["eddie"]
    spec = changed({"schedule": DROP, "recipients.cc": ["ops@team.partner.example.org"]})
    created = eddie.create("eddie-manual", spec)
    assert created["spec"]["schedule"] == ""  # the CRD defaults it
    eddie.patch("eddie-manual", {"metadata": {"annotations": {"tidings.dev/run-now": "r1"}}})
    assert eddie.get("eddie-manual")["metadata"]["annotations"]["tidings.dev/run-now"] == "r1"
    # Other edits of the report need nothing more.
    eddie.patch("eddie-manual", {"spec": {"title": "Renamed by eddie"}})
    assert eddie.get("eddie-manual")["spec"]["title"] == "Renamed by eddie"


def test_editor_is_refused_a_schedule_naming_the_field_and_the_role(reports, people, webhook):
    eddie, ns = people["eddie"], reports.namespace
    code, message = eddie.refused("create", "eddie-weekly", BASE)
    assert code == 403
    assert message == needs_schedule("spec.schedule", "setting a schedule", "eddie", ns)

    eddie.create("eddie-later", MANUAL)
    code, message = eddie.refused("patch", "eddie-later", {"spec": {"schedule": "0 9 * * 1"}})
    assert code == 403
    assert message == needs_schedule("spec.schedule", "setting a schedule", "eddie", ns)
    assert eddie.get("eddie-later")["spec"]["schedule"] == ""


def test_editor_cannot_change_or_move_a_schedule_but_may_remove_it(reports, people, webhook):
    eddie, ns = people["eddie"], reports.namespace
    reports.create("scheduled-by-admin", BASE)
    code, message = eddie.refused(
        "patch", "scheduled-by-admin", {"spec": {"schedule": "0 6 * * *"}}
    )
    assert code == 403
    assert message == needs_schedule("spec.schedule", "changing the schedule", "eddie", ns)
    code, message = eddie.refused(
        "patch", "scheduled-by-admin", {"spec": {"timeZone": "America/New_York"}}
    )
    assert code == 403
    change = "moving the schedule to another time zone"
    assert message == needs_schedule("spec.timeZone", change, "eddie", ns)
    eddie.patch("scheduled-by-admin", {"spec": {"suspend": True}})
    eddie.patch("scheduled-by-admin", {"spec": {"schedule": None}})
    assert eddie.get("scheduled-by-admin")["spec"]["schedule"] == ""


def test_editor_is_refused_an_external_recipient(reports, people, webhook):
    eddie, ns = people["eddie"], reports.namespace
    spec = changed({"schedule": DROP, "recipients.to": ["ciso@example.com", "a@gmail.com"]})
    code, message = eddie.refused("create", "eddie-external", spec)
    assert code == 403
    shown = f"{OPERATOR_DOMAINS[0]}, {NAMESPACE_DOMAINS}"
    change = f'adding the external recipient "a@gmail.com" (allowed domains: {shown})'
    assert message == needs_schedule("spec.recipients.to[1]", change, "eddie", ns)
    # The namespace's own domain covers its subdomains only, not itself.
    spec = changed({"schedule": DROP, "recipients.bcc": ["x@partner.example.org"]})
    code, message = eddie.refused("create", "eddie-parent-domain", spec)
    assert code == 403 and "spec.recipients.bcc[0]: adding the external recipient" in message


def test_an_external_owner_needs_the_verb_like_a_recipient(reports, people, webhook):
    eddie, ns = people["eddie"], reports.namespace
    spec = changed({"schedule": DROP, "owners": ["lead@example.com", "a@gmail.com"]})
    code, message = eddie.refused("create", "eddie-owner", spec)
    shown = f"{OPERATOR_DOMAINS[0]}, {NAMESPACE_DOMAINS}"
    change = f'adding the external owner "a@gmail.com" (allowed domains: {shown})'
    assert code == 403
    assert message == needs_schedule("spec.owners[1]", change, "eddie", ns)
    eddie.create("eddie-owner", changed({"schedule": DROP, "owners": ["lead@example.com"]}))
    people["sam"].create("sam-owner", changed({"schedule": DROP, "owners": ["a@gmail.com"]}))
    assert eddie.get("sam-owner")["spec"]["owners"] == ["a@gmail.com"]


def test_editor_keeps_editing_a_report_with_existing_external_recipients(reports, people, webhook):
    """Someone with `schedule` added a partner; an editor may still change other fields."""
    eddie = people["eddie"]
    reports.create("has-partner", changed({"schedule": DROP, "recipients.cc": ["a@gmail.com"]}))
    eddie.patch(
        "has-partner",
        {"spec": {"title": "Retitled", "recipients": {"bcc": ["a@gmail.com"], "cc": None}}},
    )
    stored = eddie.get("has-partner")["spec"]
    assert stored["title"] == "Retitled" and stored["recipients"]["bcc"] == ["a@gmail.com"]
    code, message = eddie.refused(
        "patch",
        "has-partner",
        {"spec": {"recipients": {"to": ["ciso@example.com", "b@gmail.com"]}}},
    )
    assert (
        code == 403
        and 'spec.recipients.to[1]: adding the external recipient "b@gmail.com"' in message
    )


def test_test_sends_need_schedule_only_for_external_addresses(reports, people, webhook):
    """tidings.dev/send-test: an editor may test-send to the allowed domains; another address
    needs `schedule`, as adding it to the recipients would; a malformed one is a 422."""
    eddie, sam, ns = people["eddie"], people["sam"], reports.namespace
    eddie.create("eddie-tested", MANUAL)

    def annotate(person: Person, value: str) -> dict:
        return person.patch(
            "eddie-tested", {"metadata": {"annotations": {testsend.ANNOTATION: value}}}
        )

    assert annotate(eddie, "me@example.com")["metadata"]["annotations"][testsend.ANNOTATION]
    annotate(eddie, "me@team.partner.example.org")  # the namespace's own domains count too
    code, message = eddie.refused(
        "patch",
        "eddie-tested",
        {"metadata": {"annotations": {testsend.ANNOTATION: "me@gmail.com"}}},
    )
    assert code == 403
    shown = f"{OPERATOR_DOMAINS[0]}, {NAMESPACE_DOMAINS}"
    change = f'a test send to the external address "me@gmail.com" (allowed domains: {shown})'
    assert message == needs_schedule(testsend.ANNOTATION_PATH, change, "eddie", ns)
    code, message = eddie.refused(
        "patch",
        "eddie-tested",
        {"metadata": {"annotations": {testsend.ANNOTATION: "Me <me@example.com>"}}},
    )
    assert code == 422
    assert (
        f"{models.KIND} is invalid: {testsend.ANNOTATION_PATH}: must be a bare address" in message
    )
    annotate(sam, "me@gmail.com")  # with `schedule`
    assert (
        eddie.get("eddie-tested")["metadata"]["annotations"][testsend.ANNOTATION] == "me@gmail.com"
    )


def test_rule_violations_are_reported_before_permissions(people, webhook):
    code, message = people["eddie"].refused(
        "create", "eddie-typo", changed({"schedule": "0 9 * * 7"})
    )
    assert code == 422
    assert f"{models.KIND} is invalid: spec.schedule: day-of-week field" in message


def test_user_with_schedule_sets_schedules_and_external_recipients(people, webhook):
    sam = people["sam"]
    spec = changed({"recipients.to": ["ciso@example.com", "auditor@gmail.com"]})
    sam.create("sam-weekly", spec)
    sam.patch("sam-weekly", {"spec": {"schedule": "30 7 * * 1-5", "timeZone": "Asia/Tokyo"}})
    stored = sam.get("sam-weekly")["spec"]
    assert stored["schedule"] == "30 7 * * 1-5" and stored["timeZone"] == "Asia/Tokyo"
    assert stored["recipients"]["to"][1] == "auditor@gmail.com"


def test_only_namespace_admins_delete(reports, people, webhook):
    reports.create("to-delete", MANUAL)
    for user in ("vera", "eddie", "sam"):
        code, message = people[user].refused("delete", "to-delete")
        assert code == 403 and f'User "{user}" cannot delete resource' in message
    people["ada"].delete("to-delete")
    assert "to-delete" not in people["ada"].list()


def test_namespace_admin_can_grant_schedule(kube, reports, people, webhook):
    """admin holds `schedule` through aggregation, so RBAC lets a namespace admin bind
    tidings-schedule (no escalation); the editor may then schedule."""
    from kubernetes import client

    eve, ns = people["eve"], reports.namespace
    assert eve.refused("create", "eve-weekly", BASE)[0] == 403
    binding = role_binding("eve-schedule", permissions.SCHEDULE_ROLE, "eve")
    ada_client = people["ada"].api.api_client
    client.RbacAuthorizationV1Api(ada_client).create_namespaced_role_binding(ns, binding)
    wait_allowed(kube, "eve", ns, permissions.SCHEDULE_VERB)
    eve.create("eve-weekly", BASE)
    assert eve.get("eve-weekly")["spec"]["schedule"] == BASE["schedule"]


def test_kubectl_shows_the_refusal(control_plane, reports, people, webhook):
    manifest = yaml.safe_dump(
        {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "metadata": {"name": "kubectl-weekly", "namespace": reports.namespace},
            "spec": BASE,
        },
        allow_unicode=True,
    )
    kubeconfig = control_plane.kubeconfig_for("eddie")
    result = control_plane.kubectl(
        "apply", "-f", "-", kubeconfig=kubeconfig, input=manifest, check=False
    )
    assert result.returncode != 0
    expected = needs_schedule("spec.schedule", "setting a schedule", "eddie", reports.namespace)
    assert expected in result.stderr
    # What docs/permissions.md suggests for checking who may schedule.
    for user, answer in [("sam", "yes"), ("eddie", "no")]:
        resource = f"{models.PLURAL}.{models.GROUP}"
        can_i = control_plane.kubectl(
            "auth",
            "can-i",
            "schedule",
            resource,
            "-n",
            reports.namespace,
            "--as",
            user,
            check=False,
        )
        assert can_i.stdout.strip() == answer, can_i.stderr
