"""A channel destination is an external recipient (issue 25), against the real apiserver with
the admission webhook and real RBAC: adding a webhook needs the `schedule` verb unless its host
is on the allowed channel hosts (TIDINGS_ALLOWED_CHANNEL_HOSTS, chart allowedChannelHosts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.admission_cases import DROP, changed
from tests.support.admission_webhook import DENIED, serving_webhook, wait_until_enforced
from tests.support.rbac_users import role_binding, wait_allowed

from tidings import models
from tidings.controller import permissions
from tidings.controller.settings import Settings

pytestmark = pytest.mark.cluster

ALLOWED = ("hooks.internal.example", ".chat.example.org")
PEOPLE = {"eddie": ["edit"], "sam": ["edit", permissions.SCHEDULE_ROLE]}


def with_hook(url: str) -> dict[str, Any]:
    hook = {"url": url, "signingSecretRef": {"name": "hook-key", "key": "key"}}
    return changed({"schedule": DROP, "delivery.channels": [{"webhook": hook}]})


class Person:
    def __init__(self, api: Any, namespace: str) -> None:
        self.api = api
        self.args = (models.GROUP, models.VERSION, namespace, models.PLURAL)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{models.GROUP}/{models.VERSION}", "kind": models.KIND}
        body.update(metadata={"name": name}, spec=spec)
        return self.api.create_namespaced_custom_object(*self.args, body)

    def patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object(*self.args, name, {"spec": spec})

    def refused(self, call: str, *args: Any) -> tuple[int, str]:
        from kubernetes.client import ApiException

        try:
            getattr(self, call)(*args)
        except ApiException as exc:
            return exc.status, json.loads(exc.body)["message"]
        pytest.fail(f"{call} {args[:1]} was allowed")


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
    yield {user: Person(client.CustomObjectsApi(c), ns) for user, c in clients.items()}
    for api_client in clients.values():
        api_client.close()


@pytest.fixture(scope="module")
def webhook(control_plane, kube, reports, people, tmp_path_factory) -> Iterator[dict]:
    pki = tmp_path_factory.mktemp("channel-permissions-pki")
    settings = Settings(allowed_channel_hosts=ALLOWED)
    with serving_webhook(control_plane, kube, reports.namespace, pki, settings) as configuration:
        wait_until_enforced(reports)
        yield configuration


def test_an_external_webhook_needs_the_schedule_verb(webhook, reports, people):
    status, message = people["eddie"].refused(
        "create", "hook-external", with_hook("https://hooks.partner.example.net/tidings")
    )
    assert status == 403
    assert message.startswith(f"{DENIED}: {models.KIND} is forbidden: ")
    assert (
        "spec.delivery.channels[0].webhook.url: adding the external destination "
        '"hooks.partner.example.net" (allowed hosts: hooks.internal.example, .chat.example.org) '
        'needs the "schedule" verb'
    ) in message
    created = people["sam"].create(
        "hook-external", with_hook("https://hooks.partner.example.net/x")
    )
    assert created["spec"]["delivery"]["channels"][0]["webhook"]["url"].endswith("/x")


def test_an_allow_listed_host_is_admitted_without_it(webhook, reports, people):
    eddie = people["eddie"]
    eddie.create("hook-internal", with_hook("https://hooks.internal.example/tidings"))
    eddie.create("hook-subdomain", with_hook("https://team.chat.example.org/hook"))
    # Not a subdomain match by suffix alone: evil-chat.example.org is another host.
    status, message = eddie.refused(
        "create", "hook-lookalike", with_hook("https://evilchat.example.org/hook")
    )
    assert status == 403 and "evilchat.example.org" in message


def test_moving_an_admitted_webhook_to_an_external_host_needs_it_too(webhook, reports, people):
    eddie = people["eddie"]
    eddie.create("hook-moved", with_hook("https://hooks.internal.example/a"))
    delivery = with_hook("https://hooks.partner.example.net/b")["delivery"]
    status, message = eddie.refused("patch", "hook-moved", {"delivery": delivery})
    assert status == 403 and "spec.delivery.channels[0].webhook.url" in message
    same = with_hook("https://hooks.internal.example/a")["delivery"]
    same["subjectTemplate"] = "[Tidings] {name} {date}"  # another change, same destination
    eddie.patch("hook-moved", {"delivery": same})


def with_chat(channel: dict[str, Any]) -> dict[str, Any]:
    return changed({"schedule": DROP, "delivery.channels": [channel]})


def teams(host: str) -> dict[str, Any]:
    return {"teams": {"host": host, "urlSecretRef": {"name": "flow", "key": "url"}}}


def slack(channel: str) -> dict[str, Any]:
    return {"slack": {"channel": channel, "tokenSecretRef": {"name": "bot", "key": "token"}}}


def test_a_teams_host_off_the_allow_list_needs_the_schedule_verb(webhook, reports, people):
    host = "prod-12.westeurope.logic.azure.com"
    status, message = people["eddie"].refused("create", "teams-external", with_chat(teams(host)))
    assert status == 403 and message.startswith(f"{DENIED}: {models.KIND} is forbidden: ")
    assert (
        f'spec.delivery.channels[0].teams.host: adding the external destination "{host}" '
        '(allowed hosts: hooks.internal.example, .chat.example.org) needs the "schedule" verb'
    ) in message
    people["sam"].create("teams-external", with_chat(teams(host)))
    people["eddie"].create("teams-internal", with_chat(teams("flows.chat.example.org")))


def test_a_slack_channel_needs_it_unless_slack_com_is_allowed(webhook, reports, people):
    status, message = people["eddie"].refused("create", "slack-ext", with_chat(slack("C0123ABCD")))
    assert status == 403
    assert (
        'spec.delivery.channels[0].slack.channel: adding the external destination "slack:C0123ABCD"'
    ) in message
    people["sam"].create("slack-ext", with_chat(slack("C0123ABCD")))
    # Another channel of the same workspace is another audience: the verb again.
    delivery = with_chat(slack("C0999ZZZZ"))["delivery"]
    status, message = people["eddie"].refused("patch", "slack-ext", {"delivery": delivery})
    assert status == 403 and "slack:C0999ZZZZ" in message
