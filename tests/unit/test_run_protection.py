"""The pure parts of protecting the operator's runs: which keys mark an object as
the operator's, the CONNECT review rewrite that lets the pods handler see its pod, and the
webhook entry for exec, attach and port-forward."""

from __future__ import annotations

from tidings.controller import admission, permissions
from tidings.controller import cronjob as cj


def test_the_operators_labels_and_annotations_are_markers():
    meta = {
        "labels": {cj.MANAGED_BY_LABEL: cj.MANAGED_BY, "app": "x", cj.REPORT_UID_LABEL: "u"},
        "annotations": {cj.SNAPSHOT_ANNOTATION: "spec", "note": "n"},
    }
    assert permissions.operator_markers(meta) == [
        f"{cj.MANAGED_BY_LABEL}={cj.MANAGED_BY}",
        f"{cj.REPORT_UID_LABEL}=u",
        cj.SNAPSHOT_ANNOTATION,
    ]
    # managed-by with another value is someone else's.
    assert permissions.operator_markers({"labels": {cj.MANAGED_BY_LABEL: "Helm"}}) == []
    assert permissions.operator_markers(None) == []


def test_a_connect_review_gets_the_pod_it_is_for():
    review = {
        "request": {
            "operation": "CONNECT",
            "name": "weekly-123-abcde",
            "namespace": "team-a",
            "object": {"kind": "PodExecOptions", "command": ["sh"]},
        }
    }
    rewritten = admission.connect_target(review)
    assert rewritten["request"]["object"]["metadata"] == {
        "name": "weekly-123-abcde",
        "namespace": "team-a",
    }
    assert rewritten["request"]["object"]["command"] == ["sh"]
    assert "metadata" not in review["request"]["object"]  # the original is left as it was
    other = {"request": {"operation": "CREATE", "object": {"metadata": {"name": "x"}}}}
    assert admission.connect_target(other) is other


def test_the_connect_webhook_entry_fails_closed_but_spares_kube_system_and_the_operator():
    config = admission.webhook_configuration(
        "x", {"service": {"name": "svc", "namespace": "tidings"}}, operator_namespace="tidings"
    )
    reports, connect, groups = config["webhooks"]
    assert groups["rules"][0]["resources"] == ["recipientgroups"]
    assert reports["name"] == admission.WEBHOOK_ID
    assert connect["name"] == admission.CONNECT_WEBHOOK_ID
    assert connect["clientConfig"]["service"]["path"] == f"/{admission.CONNECT_WEBHOOK_ID}"
    (rule,) = connect["rules"]
    assert rule["operations"] == ["CONNECT"]
    assert rule["resources"] == ["pods/exec", "pods/attach", "pods/portforward"]
    assert connect["failurePolicy"] == "Fail"
    (exempt,) = connect["namespaceSelector"]["matchExpressions"]
    assert exempt["operator"] == "NotIn" and exempt["values"] == ["kube-system", "tidings"]
    scoped = admission.webhook_configuration("x", {"url": "https://h"}, namespace="team")
    assert scoped["webhooks"][1]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "team"}
    }
    assert (
        len(admission.webhook_configuration("x", {"url": "h"}, protect_runs=False)["webhooks"]) == 2
    )


def test_the_refusal_names_the_pod_and_why():
    message = permissions.connect_refusal("exec", "p", "team-a", ["a=b", "c", "d"])
    assert message.startswith('pods/exec is forbidden: pod "p" in namespace "team-a"')
    assert "(a=b, c)" in message
