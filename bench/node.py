"""The product on a real node (tests/node's cluster: containerd, kubelet, scheduler, kube-proxy,
the chart with the image built by buildah), measured:

- CronJob fire time -> mail accepted by SMTP, p50/p95 over at least 10 scheduled runs, against
  the same report sent by `tidings send` on the host in the same run (the baseline: what the
  renderer alone takes, with no pod to schedule and start);
- run-now annotation -> outcome in status, p50/p95;
- the image's size, and the node's memory (RSS of its processes, with the cluster idle).

Needs Linux and root, like tests/node. `python3 -m bench.node [--fires 2 --reports 5]`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from tests.support.node_cluster import NodeCluster, running

from bench.common import percentile, report, table
from tidings import models
from tidings_dev import node as devnode

MIB = 1024 * 1024
NODE_PROCESSES = ("containerd", "kubelet", "kube-scheduler", "kube-proxy")


def report_body(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    rows = [
        {"id": i, "status": "completed", "title": f"Change {i}", "completed_at": now}
        for i in range(20)
    ]
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "title": f"Bench {name}",
            "reportType": "changes_summary",
            "source": {"inline": {"rows": rows}},
            "recipients": {"to": ["bench@example.com"]},
            **spec,
        },
    }


def apply(cluster: NodeCluster, body: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def status(cluster: NodeCluster, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        models.GROUP, models.VERSION, namespace, models.PLURAL, name
    )
    return obj.get("status") or {}


def wait(what: str, probe, timeout: float = 300):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def subject_of(message: dict[str, Any]) -> str:
    parsed = email.message_from_bytes(message["content"], policy=email.policy.default)
    return str(parsed["Subject"])


def fire_latencies(cluster: NodeCluster, namespace: str, reports: int, fires: int) -> list[float]:
    """Seconds from each scheduled minute to the DATA reply, for reports firing every minute."""
    names = [f"every-minute-{i}" for i in range(reports)]
    for name in names:
        apply(cluster, report_body(name, namespace, schedule="* * * * *"))
    start = time.time()
    latencies: list[float] = []

    def mails() -> list[dict[str, Any]]:
        return [
            m
            for m in list(cluster.smtp.messages)
            if m["received_at"] > start and "Bench every-minute" in subject_of(m)
        ]

    wait("scheduled mails", lambda: len(mails()) >= reports * fires, timeout=60 * (fires + 2))
    for message in mails():
        fired = message["received_at"] // 60 * 60  # the minute the CronJob fired for
        latencies.append(message["received_at"] - fired)
    for name in names:
        cluster.kubectl("-n", namespace, "delete", "sr", name)
    return latencies


def run_now_latencies(cluster: NodeCluster, namespace: str, runs: int) -> list[float]:
    """Seconds from setting tidings.dev/run-now to the run's outcome in status.history."""
    apply(cluster, report_body("manual", namespace))
    wait("phase", lambda: status(cluster, namespace, "manual").get("phase"))
    latencies = []
    for _ in range(runs):
        before = len(status(cluster, namespace, "manual").get("history") or [])
        started = time.time()
        cluster.kubectl(
            "-n", namespace, "annotate", "sr", "manual", "--overwrite",
            f"tidings.dev/run-now={uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        wait(
            "run-now outcome",
            lambda before=before: (
                len(status(cluster, namespace, "manual").get("history") or []) > before
            ),
        )
        latencies.append(time.time() - started)
    return latencies


def host_send_seconds(cluster: NodeCluster, runs: int) -> list[float]:
    """The baseline: the same report rendered and mailed by `tidings send` on the host."""
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.yaml"
        body = report_body("host", "bench")
        body["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
        path.write_text(yaml.safe_dump(body))
        for _ in range(runs):
            started = time.time()
            subprocess.run(
                [
                    sys.executable, "-m", "tidings", "send", str(path),
                    "--smtp-host", cluster.smtp.host, "--smtp-port", str(cluster.smtp.port),
                    "--smtp-from", "bench@tidings.test",
                ],
                check=True, capture_output=True,
            )  # fmt: skip
            seconds.append(time.time() - started)
    return seconds


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def node_memory(cluster: NodeCluster) -> list[tuple[str, float]]:
    rows = [(name, rss_mib(cluster.node.processes[name].pid)) for name in NODE_PROCESSES]
    shims = devnode.shim_pids()
    rows.append((f"containerd shims ({len(shims)})", sum(rss_mib(pid) for pid in shims)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=5, help="reports firing every minute")
    parser.add_argument("--fires", type=int, default=2, help="minutes to collect")
    parser.add_argument("--runs", type=int, default=10, help="run-now and baseline repetitions")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    reason = devnode.unavailable_reason()
    if reason:
        print(f"bench.node: {reason}", file=sys.stderr)
        return 1

    built = time.monotonic()
    images = devnode.build_images()
    build_seconds = time.monotonic() - built
    with tempfile.TemporaryDirectory() as tmp:
        up = time.monotonic()
        with running(Path(tmp), images) as cluster:
            up_seconds = time.monotonic() - up
            installed = cluster.install()
            if installed.returncode != 0:
                raise RuntimeError(installed.stderr)
            install_seconds = time.monotonic() - up - up_seconds
            cluster.kubectl("create", "namespace", "bench")
            wait("default ServiceAccount", lambda: cluster.kubectl(
                "-n", "bench", "get", "sa", "default", check=False).returncode == 0)  # fmt: skip
            baseline = host_send_seconds(cluster, args.runs)
            fired = fire_latencies(cluster, "bench", args.reports, args.fires)
            run_now = run_now_latencies(cluster, "bench", args.runs)
            memory = node_memory(cluster)
            down = time.monotonic()
        down_seconds = time.monotonic() - down

    def p(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.2f} s"

    ratio = percentile(fired, 50) / percentile(baseline, 50)
    latency = table(
        ["what", "n", "p50", "p95", "vs baseline p50"],
        [
            ["`tidings send` on the host (baseline)", len(baseline), p(baseline, 50),
             p(baseline, 95), "1.0x"],
            ["CronJob fire → mail accepted (real pods)", len(fired), p(fired, 50), p(fired, 95),
             f"{ratio:.1f}x"],
            ["run-now annotation → outcome in status", len(run_now), p(run_now, 50),
             p(run_now, 95), f"{percentile(run_now, 50) / percentile(baseline, 50):.1f}x"],
        ],
    )  # fmt: skip
    sizes = table(
        ["what", "figure"],
        [
            ["renderer image (docker-archive)", f"{images.renderer_mb} MB"],
            ["hack/build-images, this run (cached when inputs are unchanged)",
             f"{build_seconds:.1f} s"],
            ["node up (containerd, images imported, kubelet Ready)", f"{up_seconds:.1f} s"],
            ["helm install --wait (two operator pods Ready)", f"{install_seconds:.1f} s"],
            ["teardown", f"{down_seconds:.1f} s"],
            *[[f"RSS {name}", f"{mib:.0f} MiB"] for name, mib in memory],
        ],
    )  # fmt: skip
    report(
        "Real node: fire-to-mail latency, image size, node memory",
        f"{latency}\n\n{sizes}\n",
        append=not args.no_append,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
