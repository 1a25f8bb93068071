"""The 09:00 burst on a real node (tests/node's cluster: containerd, kubelet, scheduler,
kube-proxy, the chart with the image built by buildah): N reports whose CronJobs fire in the
same minute, measured:

- all delivered or not (a mail accepted by the SMTP sink per report, and Delivered in its
  status history), and how many runs the operator counted failed;
- fire time -> first and last mail accepted;
- the most report pods Running at once, and how many had to wait for room (Unschedulable);
- the node's peak memory (RSS of containerd, kubelet, scheduler, kube-proxy and the shims,
  sampled every 0.5 s).

Baseline, in the same run: the same N reports sent by `tidings send` one after another in one
process on the host (what the renderer alone takes, no pods), start -> last mail.

Needs Linux and root, like tests/node; the node is one per machine, so run it under
`flock /tmp/tidings-node.lock`. `python3 -m bench.burst --reports 20 50 [--cap 8]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from tests.support.node_cluster import NodeCluster, running

from bench.common import report, table
from bench.node import NODE_PROCESSES, apply, report_body, rss_mib, subject_of, wait
from tidings import models
from tidings_dev import node as devnode

NAMESPACE = "burst"
LEAD_SECONDS = 40  # reports applied and their CronJobs made before the fire minute


@dataclass
class Peaks:
    """Sampled while the burst runs."""

    running: int = 0
    unsuspended: int = 0  # report Jobs neither suspended nor finished: what the cap bounds
    unschedulable: set[str] = field(default_factory=set)
    memory_mib: float = 0.0


def node_rss(cluster: NodeCluster) -> float:
    pids = [cluster.node.processes[name].pid for name in NODE_PROCESSES]
    return sum(rss_mib(pid) for pid in [*pids, *devnode.shim_pids()])


def sample(cluster: NodeCluster, peaks: Peaks, stop: threading.Event) -> None:
    core, batch = client.CoreV1Api(cluster.api), client.BatchV1Api(cluster.api)
    while not stop.is_set():
        try:
            pods = core.list_namespaced_pod(NAMESPACE).items
            jobs = batch.list_namespaced_job(NAMESPACE).items
        except Exception:  # a sample lost is a sample lost
            pods, jobs = [], []
        going = [
            j
            for j in jobs
            if not j.spec.suspend
            and not any(
                c.type in ("Complete", "Failed") and c.status == "True"
                for c in j.status.conditions or ()
            )
        ]
        peaks.unsuspended = max(peaks.unsuspended, len(going))
        peaks.running = max(peaks.running, sum(p.status.phase == "Running" for p in pods))
        for pod in pods:
            for condition in pod.status.conditions or ():
                if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
                    peaks.unschedulable.add(pod.metadata.name)
        with contextlib.suppress(OSError, KeyError):  # a process gone between samples
            peaks.memory_mib = max(peaks.memory_mib, node_rss(cluster))
        stop.wait(0.5)


def history(cluster: NodeCluster, name: str) -> list[dict[str, Any]]:
    obj = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        models.GROUP, models.VERSION, NAMESPACE, models.PLURAL, name
    )
    return list((obj.get("status") or {}).get("history") or [])


def burst(cluster: NodeCluster, reports: int, timeout: float) -> dict[str, Any]:
    """N reports firing at the same minute; what happened, measured from the fire time."""
    now = datetime.now(UTC)
    fire = (now + timedelta(seconds=LEAD_SECONDS + 60)).replace(second=0, microsecond=0)
    schedule = f"{fire.minute} {fire.hour} * * *"
    prefix = f"burst{reports}-"
    names = [f"{prefix}{i}" for i in range(reports)]
    for name in names:
        apply(cluster, report_body(name, NAMESPACE, schedule=schedule, timeZone="UTC"))
    fired = fire.timestamp()

    def mails() -> list[dict[str, Any]]:
        return [
            m
            for m in list(cluster.smtp.messages)
            if m["received_at"] > fired - 5 and f"Bench {prefix}" in subject_of(m)
        ]

    peaks = Peaks()
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(cluster, peaks, stop), daemon=True)
    wait("the fire minute", lambda: time.time() >= fired - 2, timeout=LEAD_SECONDS + 90)
    sampler.start()
    try:
        with contextlib.suppress(TimeoutError):  # reported as not all delivered
            wait("every mail", lambda: len(mails()) >= reports, timeout=timeout)

        def counted() -> list[list[dict[str, Any]]] | None:
            found = [history(cluster, n) for n in names]
            return found if all(found) else None

        try:
            histories = wait("every run counted", counted, timeout=120)
        except TimeoutError:
            histories = [history(cluster, n) for n in names]
    finally:
        stop.set()
        sampler.join()
    got = mails()
    outcomes = [h[-1]["outcome"] for h in histories if h]
    seconds = sorted(m["received_at"] - fired for m in got)
    events = client.CoreV1Api(cluster.api).list_namespaced_event(
        NAMESPACE, field_selector="reason=RunNotStarted"
    )
    for name in names:
        cluster.kubectl("-n", NAMESPACE, "delete", "sr", name, "--wait=false")
    return {
        "mails": len({subject_of(m) for m in got}),
        "delivered": outcomes.count("Delivered"),
        "failed": outcomes.count("Failed"),
        "not_started": len(events.items),
        "first": seconds[0] if seconds else float("nan"),
        "last": seconds[-1] if seconds else float("nan"),
        "peaks": peaks,
    }


BASELINE = """
import sys, time
from tidings.cli import main
host, port, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
for path in paths:
    code = main(["send", path, "--smtp-host", host, "--smtp-port", port,
                 "--smtp-from", "bench@tidings.test"])
    if code:
        sys.exit(code)
"""


def baseline(cluster: NodeCluster, reports: int) -> float:
    """Seconds from starting one process to the last of its N sequential sends accepted."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(reports):
            body = report_body(f"host-{i}", "bench")
            body["metadata"]["uid"] = f"00000000-0000-0000-0000-{i:012d}"
            path = Path(tmp) / f"report-{i}.yaml"
            path.write_text(yaml.safe_dump(body))
            paths.append(str(path))
        started = time.time()
        subprocess.run(
            [sys.executable, "-c", BASELINE, cluster.smtp.host, str(cluster.smtp.port), *paths],
            check=True, capture_output=True,
        )  # fmt: skip
        return time.time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, nargs="+", default=[20, 50], help="burst sizes")
    parser.add_argument("--cap", type=int, default=0, help="operator.maxConcurrentRuns.cluster")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for mail")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    reason = devnode.unavailable_reason()
    if reason:
        print(f"bench.burst: {reason}", file=sys.stderr)
        return 1
    images = devnode.build_images()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), images) as cluster:
        extra = [f"operator.maxConcurrentRuns.cluster={args.cap}"] if args.cap else []
        installed = cluster.install(*extra)
        if installed.returncode != 0:
            raise RuntimeError(installed.stderr)
        cluster.kubectl("create", "namespace", NAMESPACE)
        wait("default ServiceAccount", lambda: cluster.kubectl(
            "-n", NAMESPACE, "get", "sa", "default", check=False).returncode == 0)  # fmt: skip
        idle = node_rss(cluster)
        for n in args.reports:
            base = baseline(cluster, n)
            got = burst(cluster, n, args.timeout)
            peaks: Peaks = got["peaks"]
            all_ok = got["mails"] == n and got["delivered"] == n
            rows.append(
                [
                    n,
                    args.cap or "off",
                    f"{'yes' if all_ok else 'NO'} ({got['mails']} mails, {got['delivered']} "
                    "Delivered)",
                    f"{got['failed']} (RunNotStarted: {got['not_started']})",
                    f"{got['first']:.1f} s / {got['last']:.1f} s",
                    f"{base:.1f} s",
                    f"{got['last'] / base:.1f}x",
                    f"{peaks.running} ({peaks.unsuspended} Jobs)",
                    len(peaks.unschedulable),
                    f"{peaks.memory_mib:.0f} MiB (idle {idle:.0f})",
                ]
            )
            print(json.dumps(rows[-1]), flush=True)
    body = table(
        ["N", "cap", "all delivered", "counted failed", "fire → first / last mail",
         "baseline: N x `tidings send`, one process", "last mail vs baseline",
         "pods Running at once, peak (Jobs going)", "pods that waited Unschedulable",
         "node RSS peak"],
        rows,
    )  # fmt: skip
    note = (
        "N reports whose CronJobs fire in the same minute, on the real node (2 cores); the "
        "renderer pods request 100m CPU and 256Mi each. Baseline: the same N reports rendered "
        "and mailed by `tidings send` one after another in one process on the host."
    )
    report("Real node: the 09:00 burst", f"{note}\n\n{body}\n", append=not args.no_append)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
