"""The validating webhook in front of a real apiserver.

kopf runs in-process (KopfRunner) with only the admission handler, serving HTTPS on loopback
with a certificate from a CA generated here; a ValidatingWebhookConfiguration scoped to this
module's namespace points the apiserver at it with `clientConfig.url` and the CA bundle.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from tests.support.admission_cases import BASE, INVALID, VALID, changed, example_specs
from tests.support.admission_webhook import (
    DENIED,
    WEBHOOK_ONLY,
    serving_webhook,
    wait_until_enforced,
)

from tidings import models
from tidings.controller import admission, recipient_groups

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def webhook(control_plane, kube, reports, tmp_path_factory) -> Iterator[dict]:
    # A report the webhook would refuse, stored before the webhook exists: a report admitted
    # under older rules, as after an upgrade.
    reports.create("legacy", WEBHOOK_ONLY.spec)
    pki = tmp_path_factory.mktemp("webhook-pki")
    with serving_webhook(control_plane, kube, reports.namespace, pki) as configuration:
        wait_until_enforced(reports)
        yield configuration


def test_configuration_uses_loopback_url_and_fails_closed(webhook):
    # reports; exec into run pods (test_trust_boundary); recipient groups
    hook, connect, groups = webhook["webhooks"]
    assert connect["name"] == admission.CONNECT_WEBHOOK_ID
    assert groups["clientConfig"]["url"].endswith(f"/{recipient_groups.GROUP_WEBHOOK_ID}")
    assert hook["clientConfig"]["url"].startswith("https://127.0.0.1:")
    assert hook["clientConfig"]["url"].endswith(f"/{admission.WEBHOOK_ID}")
    assert hook["failurePolicy"] == "Fail"
    assert hook["rules"][0]["resources"] == ["scheduledreports"]  # not the status subresource


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_report_is_rejected_naming_the_field(webhook, reports, case):
    status, message = reports.rejection(case.id, case.spec)
    assert status == case.code, message
    assert case.path in message, message
    if not case.schema:
        # Only the webhook knows this rule: its verdict, with validate_spec's wording.
        assert message.startswith(f"{DENIED}: {models.KIND} is invalid: "), message
        assert case.rule in message, message


def test_enough_distinct_rules_are_rejected_with_422():
    rejected_422 = {(c.path, c.rule) for c in INVALID if c.code == 422}
    assert len(rejected_422) >= 40
    assert len([c for c in INVALID if not c.schema]) >= 30


@pytest.mark.parametrize("case", VALID + example_specs(), ids=lambda c: c.id)
def test_valid_report_is_accepted(webhook, reports, case):
    warnings = reports.create(case.id, case.spec)
    assert reports.get(case.id)["spec"]["title"] == case.spec["title"]
    if case.warning:
        assert any(case.warning in w for w in warnings), warnings
    else:
        assert warnings == []


def test_all_problems_listed_in_one_rejection(webhook, reports):
    spec = changed(
        {
            "schedule": "0 9 * * 7",
            "timeZone": "Europe/Berln",
            "recipients.to": ["ciso@example.com", "CISO <ciso@example.com>"],
            "delivery.subjectTemplate": "{name} {env}",
        }
    )
    status, message = reports.rejection("many-problems", spec)
    assert status == 422
    problems = message.split(f"{models.KIND} is invalid: ", 1)[1].split("; ")
    assert [p.split(":", 1)[0] for p in problems] == [
        "spec.schedule",
        "spec.timeZone",
        "spec.recipients.to[1]",
        "spec.delivery.subjectTemplate",
    ]


def test_updates_are_validated_too(webhook, reports):
    reports.create("to-be-broken", BASE)
    from kubernetes.client import ApiException

    with pytest.raises(ApiException) as exc:
        reports.api.patch_namespaced_custom_object(
            models.GROUP,
            models.VERSION,
            reports.namespace,
            models.PLURAL,
            "to-be-broken",
            {"spec": {"timeZone": "Mars/Olympus_Mons"}},
        )
    assert exc.value.status == 422 and "spec.timeZone" in exc.value.body
    assert reports.get("to-be-broken")["spec"]["timeZone"] == BASE["timeZone"]


def test_metadata_and_status_writes_pass_for_a_report_admitted_under_older_rules(webhook, reports):
    """Annotating (run-now, reactivate), finalizers and status writes must not be blocked by a
    spec the operator will mark Invalid anyway; a spec change is checked as usual."""
    from kubernetes.client import ApiException

    api, ns = reports.api, reports.namespace
    args = (models.GROUP, models.VERSION, ns, models.PLURAL, "legacy")
    api.patch_namespaced_custom_object(
        *args, {"metadata": {"annotations": {"tidings.dev/run-now": "1"}}}
    )
    api.patch_namespaced_custom_object_status(*args, {"status": {"phase": "Invalid"}})
    stored = reports.get("legacy")
    assert stored["metadata"]["annotations"]["tidings.dev/run-now"] == "1"
    assert stored["status"]["phase"] == "Invalid"
    with pytest.raises(ApiException) as exc:
        api.patch_namespaced_custom_object(*args, {"spec": {"title": "Still broken"}})
    assert exc.value.status == 422 and "spec.schedule" in exc.value.body


def test_kubectl_apply_shows_the_rejection_and_the_warning(control_plane, webhook, reports):
    def manifest(name: str, spec: dict) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": f"{models.GROUP}/{models.VERSION}",
                "kind": models.KIND,
                "metadata": {"name": name, "namespace": reports.namespace},
                "spec": spec,
            },
            allow_unicode=True,
        )

    bad = control_plane.kubectl(
        "apply", "-f", "-", input=manifest("typo", changed({"schedule": "0 9 * * 7"})), check=False
    )
    assert bad.returncode != 0
    assert f"{DENIED}: {models.KIND} is invalid: spec.schedule: day-of-week field" in bad.stderr

    warned = control_plane.kubectl(
        "apply",
        "-f",
        "-",
        input=manifest("no-date", changed({"delivery.subjectTemplate": "Weekly {name}"})),
    )
    assert "scheduledreport.tidings.dev/no-date created" in warned.stdout
    assert (
        "Warning: spec.delivery.subjectTemplate: has no {date} or {window} placeholder"
        in warned.stderr
    )
