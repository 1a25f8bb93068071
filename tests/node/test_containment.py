"""Pods on the test node reach the node's subnet and the host's address on it, and nothing else:
no default route, no masquerade for pods, no forwarding on the host."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.support.node_cluster import NodeCluster

from tidings_dev import cluster as devcluster
from tidings_dev import node as devnode
from tidings_dev import procs


def _route_table(cluster: NodeCluster, namespace: str) -> str:
    """/proc/net/route as seen from inside a pod running the renderer image."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "routes", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "routes",
                    "image": cluster.images.renderer,
                    "imagePullPolicy": "Never",
                    "command": ["cat", "/proc/net/route"],
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        phase = cluster.kubectl(
            "-n", namespace, "get", "pod", "routes", "-o", "jsonpath={.status.phase}"
        ).stdout
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.5)
    assert phase == "Succeeded", phase
    return cluster.kubectl("-n", namespace, "logs", "routes").stdout


def _hex_ip(value: str) -> str:
    raw = bytes.fromhex(value)[::-1]
    return ".".join(str(b) for b in raw)


def test_a_pod_has_only_the_subnet_and_service_routes(node_cluster: NodeCluster) -> None:
    node_cluster.kubectl("create", "namespace", "containment")
    try:
        table = _route_table(node_cluster, "containment")
    finally:
        node_cluster.kubectl("delete", "namespace", "containment", "--wait=false")
    routes = {
        (_hex_ip(fields[1]), _hex_ip(fields[7]), _hex_ip(fields[2]))
        for fields in (line.split() for line in table.splitlines()[1:])
        if fields
    }
    # (destination, mask, gateway): the pod subnet on-link, Services via the host. No 0.0.0.0.
    assert routes == {
        ("198.18.0.0", "255.255.255.0", "0.0.0.0"),
        ("198.18.1.0", "255.255.255.0", devnode.NODE_IP),
    }


def test_the_host_forwards_nothing_and_masquerades_no_pod(node_cluster: NodeCluster) -> None:
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"
    nat = procs.run("iptables", "-t", "nat", "-S").stdout.splitlines()
    # POSTROUTING only hands over to kube-proxy, whose one MASQUERADE applies to packets it
    # marked; it marks only in its per-Service chains (traffic to a ClusterIP, which stays on
    # the bridge). Nothing rewrites a pod's traffic to anywhere else, and nothing SNATs.
    postrouting = [line for line in nat if line.startswith("-A POSTROUTING")]
    assert postrouting == [
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'
    ], postrouting
    masquerades = [line for line in nat if "-j MASQUERADE" in line]
    assert all(line.startswith("-A KUBE-POSTROUTING") for line in masquerades), masquerades
    marks = [line for line in nat if "-j KUBE-MARK-MASQ" in line]
    assert all(line.startswith(("-A KUBE-SVC-", "-A KUBE-SEP-")) for line in marks), marks
    assert not [line for line in nat if "-j SNAT" in line]


def test_service_addresses_stay_on_the_bridge(node_cluster: NodeCluster) -> None:
    route = procs.run("ip", "route", "get", "198.18.1.200").stdout
    assert f"dev {devnode.BRIDGE}" in route, route
    assert devcluster.SERVICE_CIDR == "198.18.1.0/24"
