"""The chart's run-protection policy, rendered: whom it trusts, where it is bound,
the keys it looks for, and the toggle that removes it with the webhook's CONNECT rule. Its
behaviour on the real control plane is tests/cluster/test_trust_boundary.py."""

from __future__ import annotations

from tests.support.chart_tools import find, render

from tidings.controller import admission, permissions, recipient_groups
from tidings.controller import cronjob as cj


def test_the_policy_trusts_the_releases_service_account_and_the_built_in_controllers() -> None:
    objects = render("rel", "tidings-system")
    policy = find(objects, "ValidatingAdmissionPolicy")
    trusted = next(v for v in policy["spec"]["variables"] if v["name"] == "trusted")
    for user in (
        "system:serviceaccount:tidings-system:rel-tidings",
        "system:serviceaccount:kube-system:cronjob-controller",
        "system:serviceaccount:kube-system:job-controller",
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "system:serviceaccount:kube-system:namespace-controller",
    ):
        assert f"'{user}'" in trusted["expression"]
    assert "startsWith('system:node:')" in trusted["expression"]
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert {r for rule in rules for r in rule["resources"]} == {
        "jobs",
        "cronjobs",
        "pods",
        "pods/ephemeralcontainers",
    }
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in rules)


def test_the_policy_looks_for_the_operators_keys_old_and_new() -> None:
    policy = find(render("rel", "tidings-system"), "ValidatingAdmissionPolicy")
    text = "\n".join(v["expression"] for v in policy["spec"]["variables"])
    assert f"'{cj.MANAGED_BY_LABEL}'" in text and f"'{cj.MANAGED_BY}'" in text
    assert f"startsWith('{permissions.OPERATOR_PREFIX}')" in text
    for where in ("object.spec.template.metadata", "object.spec.jobTemplate.spec.template"):
        assert where in text and where.replace("object", "oldObject") in text


def test_the_binding_spares_the_operators_namespace_or_keeps_to_the_watched_ones() -> None:
    binding = find(render("rel", "tidings-system"), "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["validationActions"] == ["Deny"]
    (rule,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert (rule["operator"], rule["values"]) == ("NotIn", ["tidings-system"])
    watched = render("rel", "tidings-system", set_values=("operator.watchNamespaces={a,b}",))
    binding = find(watched, "ValidatingAdmissionPolicyBinding")
    (rule,) = binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert (rule["operator"], rule["values"]) == ("In", ["a", "b"])


def test_the_toggle_removes_the_policy_and_the_connect_rule() -> None:
    objects = render("rel", "tidings-system", set_values=("operator.runProtectionPolicy=false",))
    assert not [o for o in objects if o["kind"].startswith("ValidatingAdmissionPolicy")]
    config = find(objects, "ValidatingWebhookConfiguration")
    assert [w["name"] for w in config["webhooks"]] == [
        admission.WEBHOOK_ID,
        recipient_groups.GROUP_WEBHOOK_ID,
    ]
