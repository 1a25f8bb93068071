"""The chart as shards (docs/operator.md, "Sharding"): each release one shard with its own
namespaces and ClusterKopfPeering; the cluster-scoped parts every shard shares installed by one
release only, so two releases' cluster-scoped objects never collide."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.chart_tools import CHART, container_env, find, helm, render

from tidings.controller.settings_load import load_settings

CLUSTER_KINDS = {
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterKopfPeering",
    "ValidatingWebhookConfiguration",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
SHARED = {"tidings-view", "tidings-edit", "tidings-schedule", "tidings-admin"}


def shard(release: str, name: str, namespaces: list[str], first: bool) -> list[dict[str, Any]]:
    values = (
        f"operator.shard.name={name}",
        "operator.watchNamespaces={" + ",".join(namespaces) + "}",
        f"clusterResources.install={str(first).lower()}",
    )
    objects = render(release, "tidings-system", set_values=values)
    return [o for o in objects if o["kind"] != "CustomResourceDefinition"]


def cluster_scoped(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in CLUSTER_KINDS}


def test_two_shard_releases_share_no_cluster_scoped_object() -> None:
    first = shard("tidings-a", "a", ["team-a", "team-b"], first=True)
    second = shard("tidings-b", "b", ["team-c"], first=False)
    assert not cluster_scoped(first) & cluster_scoped(second)
    # The shared parts come from the first release alone.
    for name in SHARED:
        find(first, "ClusterRole", name)
        assert ("ClusterRole", name) not in cluster_scoped(second)
    find(first, "MutatingAdmissionPolicy")
    assert not [o for o in second if o["kind"].startswith("MutatingAdmissionPolicy")]


def test_a_shard_serves_its_list_and_peers_through_its_own_object() -> None:
    objects = shard("tidings-b", "b", ["team-c", "team-d"], first=False)
    peering = find(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "tidings-b"
    assert not [o for o in objects if o["kind"] == "KopfPeering"]  # not one per namespace
    env = container_env(objects)
    literal = {k: v for k, v in env.items() if isinstance(v, str)}
    settings = load_settings({**literal, "TIDINGS_OPERATOR_NAMESPACE": "tidings-system"})
    assert (settings.shard, settings.peering_name) == ("b", "tidings-b")
    assert settings.namespaces == ("team-c", "team-d")
    # Its rights: bound in its namespaces only, and the cluster-scoped peering object.
    bindings = {o["metadata"]["namespace"] for o in objects if o["kind"] == "RoleBinding"}
    assert {"team-c", "team-d"} <= bindings <= {"team-c", "team-d", "tidings-system"}
    cluster_rules = find(objects, "ClusterRole", "tidings-b-operator-cluster")["rules"]
    assert any("clusterkopfpeerings" in r["resources"] for r in cluster_rules)
    namespaced_rules = find(objects, "ClusterRole", "tidings-b-operator")["rules"]
    assert not any("kopfpeerings" in r["resources"] for r in namespaced_rules)
    # Admission for its namespaces only: the other shards' webhooks answer for theirs.
    webhook = find(objects, "ValidatingWebhookConfiguration")
    for hook in webhook["webhooks"]:
        (expression,) = hook["namespaceSelector"]["matchExpressions"]
        assert (expression["operator"], expression["values"]) == ("In", ["team-c", "team-d"])
    protect = find(objects, "ValidatingAdmissionPolicyBinding")
    (expression,) = protect["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert (expression["operator"], expression["values"]) == ("In", ["team-c", "team-d"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("operator.shard.name=a",), "operator.shard.name needs operator.watchNamespaces"),
        (("clusterResources.install=false",), "clusterResources.install=false is for a further"),
        (("operator.shard.name=A", "operator.watchNamespaces={x}"), "at '/operator/shard/name'"),
    ],
)  # fmt: skip
def test_bad_shard_values_are_refused_naming_the_value(
    values: tuple[str, ...], message: str
) -> None:
    args = [a for v in values for a in ("--set", v)]
    done = helm("template", "t", str(CHART), *args)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_an_unsharded_release_is_unchanged() -> None:
    objects = [
        o for o in render("rel", "tidings-system") if o["kind"] != "CustomResourceDefinition"
    ]
    assert find(objects, "ClusterKopfPeering")["metadata"]["name"] == "tidings"
    assert container_env(objects)["TIDINGS_SHARD"] == ""
    for name in SHARED:
        find(objects, "ClusterRole", name)
