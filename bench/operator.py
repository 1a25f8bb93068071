"""Operator scale on the real control plane: 1,000 (or 10,000) ScheduledReports spread over 100
namespaces applied at once, against the same CronJobs created directly by a plain client,
measured in the same run.

    python3 -m bench.operator [--reports 1000] [--namespaces 100] [--jobs 200] [--idle 60]
                              [--profile FILE] [--shard]

Starts its own etcd + kube-apiserver + kube-controller-manager (tidings_dev.cluster, binaries
from hack/build-k8s-binaries) in a temp dir, and `python3 -m tidings operator` as a subprocess.

- The operator runs as its own user, bound to cluster-admin. API Priority and Fairness
  FlowSchemas (one per verb, on the exempt priority level so nothing is throttled) match that
  user only, so the apiserver's `apiserver_flowcontrol_dispatched_requests_total` counts exactly
  the operator's requests, by verb.
- Times are taken from watches in this process: a report counts as done when its CronJob exists
  and it has a status phase; a Job's status latency runs from the watch seeing the Job finished
  (Complete) to the watch seeing its name in the report's status.history.
- There is no kubelet: Jobs are finished by writing their pod's status, as a kubelet would.
- The chart's MutatingAdmissionPolicy is installed, so Jobs are born with the outcome finalizer.
- The baseline (the same CronJobs POSTed by a thread pool, same manifests but without the
  managed-by label the operator watches, own namespaces) runs before and after the operator;
  the table shows the faster, the note both.
- The floor (the report, CronJob and status writes made by a plain client) runs last; the
  operator's target is a ratio to it.
- `--shard` runs the operator as one shard (TIDINGS_SHARD, TIDINGS_NAMESPACES: the report
  namespaces listed), watching each namespace on its own as a shard does (docs/operator.md).
- `--profile FILE` attaches py-spy (`py-spy record --format raw`) to the operator for the burst
  and adds the heaviest parts of its time to the note (bench.profile).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from bench import profile as spy
from bench.common import ROOT, percentile, reap, report, table
from tidings import contract, models
from tidings.controller import cronjob as cj
from tidings.controller import run_outcome
from tidings.controller.kube import MERGE_PATCH
from tidings.controller.settings_load import load_settings
from tidings.schedule import rfc3339
from tidings_dev.cluster import ControlPlane, default_bin_dir
from tidings_dev.procs import free_port

USER = "tidings-bench-operator"
VERBS = ["watch", "get", "list", "create", "patch", "update", "delete"]  # then "other"
NS_PREFIX = "bench-r"
OPERATOR_ENV = {
    "TIDINGS_RENDERER_IMAGE": "tidings-renderer:bench",
    "TIDINGS_LOG_LEVEL": os.environ.get("TIDINGS_LOG_LEVEL", "WARNING"),
}
SPEC: dict[str, Any] = {
    "title": "Payments completed changes — weekly",
    "reportType": "changes_summary",
    "source": {"inline": {"rows": [{"id": "CHG-1", "status": "completed", "title": "Deploy"}]}},
    "schedule": "0 9 * * 1",
    "timeZone": "Europe/Berlin",
    "recipients": {"to": ["payments-leads@example.com"]},
    "failurePolicy": {"disableAfter": 3, "retries": 2, "timeoutSeconds": 600},
}
DELIVERED = {
    "outcome": "Delivered",
    "failure": None,
    "recipientsAccepted": 1,
    "recipientsRejected": 0,
    "bytes": 20480,
    "renderer": "pdf",
    "error": "",
}


DEFAULT_NAMESPACES = 100
NAMESPACES = DEFAULT_NAMESPACES  # --namespaces sets it for the run


def report_name(index: int) -> str:
    return f"weekly-{index:05d}"


def namespace_of(index: int, prefix: str = NS_PREFIX) -> str:
    return f"{prefix}-{index % NAMESPACES:03d}"


def key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def manifest(index: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": report_name(index), "namespace": namespace_of(index)},
        "spec": SPEC,
    }


# ------------------------------------------------------------------------------- API plumbing


def api_client(kubeconfig: Path, pool: int = 32) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    return client.ApiClient(configuration)


def raw(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> Any:
    request = api.param_serialize(
        method,
        path,
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request)
    response.read()
    if not 200 <= response.status <= 299:
        raise RuntimeError(f"{method} {path}: {response.status} {response.data[:300]!r}")
    return json.loads(response.data) if path != "/metrics" else response.data.decode()


def operator_requests(api: client.ApiClient) -> dict[str, float]:
    """Requests the apiserver dispatched for the operator's user so far, by verb."""
    counts = dict.fromkeys([*VERBS, "other"], 0.0)
    for line in raw(api, "GET", "/metrics").splitlines():
        if line.startswith("apiserver_flowcontrol_dispatched_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            for verb in counts:
                if f'flow_schema="bench-op-{verb}"' in labels:
                    counts[verb] += float(value)
    return counts


def non_watch(counts: dict[str, float]) -> float:
    return sum(v for k, v in counts.items() if k != "watch")


def setup_cluster(api: client.ApiClient) -> None:
    """The operator's user bound to cluster-admin, and one FlowSchema per verb for it."""
    raw(api, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "metadata": {"name": USER},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    })  # fmt: skip
    for precedence, verb in enumerate([*VERBS, "other"], start=100):
        verbs = ["*"] if verb == "other" else [verb]
        raw(api, "POST", "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", {
            "metadata": {"name": f"bench-op-{verb}"},
            "spec": {
                "priorityLevelConfiguration": {"name": "exempt"},
                "matchingPrecedence": precedence,
                "rules": [{
                    "subjects": [{"kind": "User", "user": {"name": USER}}],
                    "resourceRules": [{"verbs": verbs, "apiGroups": ["*"], "resources": ["*"],
                                       "clusterScope": True, "namespaces": ["*"]}],
                    "nonResourceRules": [{"verbs": verbs, "nonResourceURLs": ["*"]}],
                }],
            },
        })  # fmt: skip
    policy, binding = cj.finalizer_policy("tidings-bench-run-outcome")
    admission = "/apis/admissionregistration.k8s.io/v1"
    raw(api, "POST", f"{admission}/mutatingadmissionpolicies", policy)
    raw(api, "POST", f"{admission}/mutatingadmissionpolicybindings", binding)
    core = client.CoreV1Api(api)
    for prefix in (NS_PREFIX, "bench-d1", "bench-d2", "bench-w"):
        for number in range(NAMESPACES):
            name = namespace_of(number, prefix)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    last = namespace_of(NAMESPACES - 1)
    wait_for("the default ServiceAccounts", lambda: _has_default_sa(core, last), 120)


def _has_default_sa(core: client.CoreV1Api, namespace: str) -> bool:
    return any(
        sa.metadata.name == "default"
        for sa in core.list_namespaced_service_account(namespace).items
    )


def wait_for(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


class Watcher(threading.Thread):
    """Calls on_event(type, object as a dict) for every event of a list function, forever."""

    def __init__(self, list_fn: Callable, *args: Any,
                 on_event: Callable[[str, dict], None], **kwargs: Any) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.list_fn, self.args, self.on_event = list_fn, args, on_event
        self.kwargs = kwargs

    def run(self) -> None:
        while True:
            try:
                stream = watch.Watch().stream(
                    self.list_fn, *self.args, timeout_seconds=600, **self.kwargs
                )
                for event in stream:
                    self.on_event(event["type"], event["object"])
            except Exception as exc:  # the control plane stopping, a dropped connection
                print(f"watch {self.args or self.list_fn.__name__} restarts: {exc!r}"[:300],
                      file=sys.stderr)  # fmt: skip
                time.sleep(1)


class Stamps:
    """First time (monotonic) each key was seen, and a way to wait for a number of them."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()

    def mark(self, key: str) -> None:
        with self.cond:
            if key not in self.seen:
                self.seen[key] = time.monotonic()
                self.cond.notify_all()

    def wait(self, keys: set[str], timeout: float) -> float:
        """The time the last of `keys` was seen."""
        with self.cond:
            if not self.cond.wait_for(lambda: keys <= self.seen.keys(), timeout):
                missing = sorted(keys - self.seen.keys())
                raise TimeoutError(f"{len(missing)} never seen, e.g. {missing[:3]}")
            return max(self.seen[k] for k in keys)


# ------------------------------------------------------------------------------- measurements


def direct_cronjobs(api: client.ApiClient, prefix: str, count: int, threads: int) -> float:
    """Seconds to POST the CronJobs the operator would make for `count` reports."""
    settings = load_settings(OPERATOR_ENV)
    bodies = []
    for index in range(count):
        report = {**manifest(index), "metadata": {
            "name": report_name(index), "namespace": namespace_of(index, prefix),
            "uid": f"uid-{index}", "generation": 1}}  # fmt: skip
        body = cj.desired_cronjob(report, settings, suspend=False)
        body["metadata"].pop("ownerReferences")  # no owner exists: the GC would delete them
        body["metadata"]["labels"].pop(contract.MANAGED_BY_LABEL)  # not the operator's to watch
        bodies.append(body)

    def post(body: dict[str, Any]) -> None:
        raw(
            api, "POST", f"/apis/batch/v1/namespaces/{body['metadata']['namespace']}/cronjobs", body
        )

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, bodies))
    return time.monotonic() - start


def direct_writes(api: client.ApiClient, prefix: str, count: int, threads: int) -> float:
    """Seconds for a plain client to make the report and the writes the operator makes per new
    report (its CronJob and one status patch), reports in parallel: what the apiserver alone
    needs for the operator's traffic."""
    settings = load_settings(OPERATOR_ENV)

    def one(index: int) -> None:
        namespace = namespace_of(index, prefix)
        reports = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{namespace}/{models.PLURAL}"
        body = {**manifest(index), "metadata": {"name": report_name(index)}}
        created = raw(api, "POST", reports, body)
        cronjob = cj.desired_cronjob(created, settings, suspend=False)
        cronjob["metadata"]["labels"].pop(contract.MANAGED_BY_LABEL)
        raw(api, "POST", f"/apis/batch/v1/namespaces/{namespace}/cronjobs", cronjob)
        status = f"{reports}/{report_name(index)}/status"
        raw(api, "PATCH", status, {"status": {"phase": "Active"}}, MERGE_PATCH)

    start = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - start


SHARD_ENV: dict[str, str] = {}  # --shard: the operator serves the report namespaces as a shard


class Operator:
    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.health, self.metrics = free_port(), free_port()
        env = {
            **os.environ,
            **OPERATOR_ENV,
            **SHARD_ENV,
            "KUBECONFIG": str(kubeconfig),
            "TIDINGS_HEALTH_PORT": str(self.health),
            "TIDINGS_METRICS_PORT": str(self.metrics),  # served, as in production
        }
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tidings", "operator", "--standalone"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for("the operator's /healthz", self._healthy, 60)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the operator exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/healthz", timeout=2):
                return True
        except OSError:
            return False

    def reports_seen(self) -> float:
        """The sum of tidings_reports{phase}: reports whose event the operator has handled."""
        url = f"http://127.0.0.1:{self.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            lines = response.read().decode().splitlines()
        return sum(float(line.split()[-1]) for line in lines if line.startswith("tidings_reports{"))

    def peak_mib(self) -> float:
        """VmHWM: the peak RSS so far."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (/proc/<pid>/stat, in clock ticks)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float:
        """Stop it; its peak RSS over the whole run (wait4)."""
        self.proc.send_signal(signal.SIGTERM)
        return reap(self.proc, 30)


def settle(api: client.ApiClient, quiet: float = 5, timeout: float = 300) -> dict[str, float]:
    """Wait until the operator has made no request for `quiet` seconds; its counts."""
    last, since = operator_requests(api), time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        now = operator_requests(api)
        if non_watch(now) != non_watch(last):
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise TimeoutError("the operator never went quiet")


def finish_jobs(api: client.ApiClient, indexes: list[int], rate: float, threads: int,
                job_done: Stamps, recorded: Stamps) -> list[float]:  # fmt: skip
    """Create one Job per report (as the CronJob controller would), let each pod succeed at
    `rate` per second, and return each Job's status latency."""
    core = client.CoreV1Api(api)
    fired = datetime(2024, 5, 13, 7, tzinfo=UTC)
    jobs: dict[str, str] = {}  # namespace/job -> scheduled time

    def create(index: int) -> None:
        namespace, name = namespace_of(index), report_name(index)
        cronjob = raw(api, "GET", f"/apis/batch/v1/namespaces/{namespace}/cronjobs/{name}")
        scheduled = fired + timedelta(minutes=index)
        job_name = f"{name}-{int(scheduled.timestamp() // 60)}"
        body = cj.job_from_template(
            cronjob, job_name, {contract.SCHEDULED_TIMESTAMP_ANNOTATION: scheduled.isoformat()}
        )
        raw(api, "POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body)
        jobs[key(namespace, job_name)] = rfc3339(scheduled)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, indexes))

    def pod_of(job_key: str) -> dict | None:
        namespace, job_name = job_key.split("/")
        selector = f"{contract.JOB_NAME_LABEL}={job_name}"
        pods = core.list_namespaced_pod(namespace, label_selector=selector)
        return api.sanitize_for_serialization(pods.items[0]) if pods.items else None

    pods = {j: wait_for(f"the pod of {j}", lambda j=j: pod_of(j), 120) for j in jobs}
    time.sleep(3)  # let the operator finish reacting to the Jobs' creation
    start = time.monotonic()
    for i, (job_name, pod) in enumerate(pods.items()):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        finished = rfc3339(datetime.now(UTC))
        result = {**DELIVERED, "scheduledTime": jobs[job_name], "messageId": f"<{i}@bench>"}
        terminated = {"exitCode": 0, "reason": "Completed", "message": json.dumps(result),
                      "startedAt": finished, "finishedAt": finished}  # fmt: skip
        where = (pod["metadata"]["name"], pod["metadata"]["namespace"])
        core.patch_namespaced_pod_status(*where, {"status": {
            "phase": "Succeeded", "startTime": finished,
            "containerStatuses": [{"name": cj.CONTAINER, "image": "tidings-renderer:bench",
                                   "imageID": "", "ready": False, "restartCount": 0,
                                   "state": {"terminated": terminated}}],
        }})  # fmt: skip
    keys = set(jobs)
    job_done.wait(keys, 300)
    recorded.wait(keys, 300)
    return [recorded.seen[k] - job_done.seen[k] for k in keys]


@dataclass
class Restart:
    seconds: float
    cpu: float
    rss: float
    requests: str


def restart_once(api: client.ApiClient, kubeconfig: Path, log: Path, reports: int) -> Restart:
    """Start a fresh operator on the reports, CronJobs and Jobs the run left. Returns the time
    until it is idle (every report seen in its metrics, then under 0.05 s of CPU for 3 s), its
    CPU time, peak RSS and the requests it made (a restart should read, never write)."""
    before = operator_requests(api)
    start = time.monotonic()
    operator = Operator(kubeconfig, log.with_suffix(".restart.log"))
    try:
        samples = [(start, operator.cpu_seconds())]

        def idle() -> bool:
            samples.append((time.monotonic(), operator.cpu_seconds()))
            window = [cpu for at, cpu in samples if at >= samples[-1][0] - 3]
            flat = samples[-1][0] - start > 3 and window[-1] - window[0] < 0.05
            # Scraped only when quiet: the page has a few series per report.
            return flat and operator.reports_seen() >= reports

        wait_for("the restarted operator to go idle", idle, 900)
        seconds = samples[-1][0] - start - 3
        after = settle(api)
        cpu = operator.cpu_seconds()
    finally:
        rss = operator.stop()
    made = {k: after[k] - before[k] for k in after if k != "watch" and after[k] != before[k]}
    requests = ", ".join(f"{k} {v:.0f}" for k, v in made.items()) or "no requests"
    return Restart(seconds, cpu, rss, requests)


# ------------------------------------------------------------------------------------- driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=DEFAULT_NAMESPACES)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--job-rate", type=float, default=10, help="pods finished per second")
    parser.add_argument("--idle", type=float, default=60, help="seconds of idle to count")
    parser.add_argument("--threads", type=int, default=16, help="concurrent client requests")
    parser.add_argument("--log", type=Path, help="keep the operator's log here")
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--profile", type=Path, help="py-spy the operator's burst into FILE")
    parser.add_argument(
        "--shard",
        action="store_true",
        help="run the operator as a shard (TIDINGS_SHARD) of the report namespaces, as listed",
    )
    args = parser.parse_args()
    global NAMESPACES
    NAMESPACES = args.namespaces
    if args.shard:
        names = sorted({namespace_of(i) for i in range(NAMESPACES)})
        SHARD_ENV.update(TIDINGS_SHARD="bench", TIDINGS_NAMESPACES=",".join(names))
    if not (default_bin_dir() / "kube-apiserver").is_file():
        print(f"no kube-apiserver in {default_bin_dir()}: run hack/build-k8s-binaries first")
        return 2
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as tmp:
        plane = ControlPlane(state_dir=Path(tmp) / "cp", die_with_parent=True)
        plane.start()
        try:
            body = measure(plane, args, Path(tmp))
        finally:
            plane.stop()
    report("Operator scale", body, append=not args.no_append)
    return 0


def measure(plane: ControlPlane, args: argparse.Namespace, tmp: Path) -> str:
    admin = api_client(plane.kubeconfig)
    setup_cluster(admin)
    n = args.reports
    names = {key(namespace_of(i), report_name(i)) for i in range(n)}
    direct = [direct_cronjobs(admin, "bench-d1", n, args.threads)]

    cronjobs, statuses, job_done, recorded = Stamps(), Stamps(), Stamps(), Stamps()

    def ours(obj: dict) -> bool:
        return obj["metadata"]["namespace"].startswith(NS_PREFIX + "-")

    def on_cronjob(kind: str, obj: dict) -> None:
        if ours(obj):
            cronjobs.mark(key(obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def on_report(kind: str, obj: dict) -> None:
        if not ours(obj):
            return
        namespace = obj["metadata"]["namespace"]
        status = obj.get("status") or {}
        if status.get("phase"):
            statuses.mark(key(namespace, obj["metadata"]["name"]))
        for entry in status.get("history") or ():
            recorded.mark(key(namespace, entry["jobName"]))

    def on_job(kind: str, obj: dict) -> None:
        if run_outcome.job_finished(obj):
            job_done.mark(key(obj["metadata"]["namespace"], obj["metadata"]["name"]))

    custom = client.CustomObjectsApi(admin)
    # Only the operator's objects, as plain dicts: typed deserialisation in this process
    # competes with the operator for the same 2 cores.
    managed = f"{contract.MANAGED_BY_LABEL}={contract.MANAGED_BY}"
    Watcher(custom.list_cluster_custom_object, "batch", "v1", "cronjobs",
            on_event=on_cronjob, label_selector=managed).start()  # fmt: skip
    Watcher(custom.list_cluster_custom_object, "batch", "v1", "jobs",
            on_event=on_job, label_selector=managed).start()  # fmt: skip
    Watcher(custom.list_cluster_custom_object, models.GROUP, models.VERSION,
            models.PLURAL, on_event=on_report).start()  # fmt: skip

    operator_kubeconfig = plane.kubeconfig_for(USER)
    operator = Operator(operator_kubeconfig, args.log or tmp / "operator.log")
    try:
        before = settle(admin)
        cpu_before = operator.cpu_seconds()

        def apply(index: int) -> None:
            namespace = namespace_of(index)
            path = f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{namespace}/{models.PLURAL}"
            raw(admin, "POST", path, manifest(index))

        sampler = spy.attach(operator.proc.pid, args.profile) if args.profile else None
        start = time.monotonic()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(apply, range(n)))
        applied = time.monotonic() - start
        done = max(cronjobs.wait(names, 1800), statuses.wait(names, 1800)) - start
        after = settle(admin)
        profile = spy.detach(sampler, args.profile) if sampler else ""
        rss_at_n = operator.peak_mib()
        cpu = operator.cpu_seconds() - cpu_before
        per_report = {k: (after[k] - before[k]) / n for k in after}

        latencies = finish_jobs(admin, list(range(args.jobs)), args.job_rate, args.threads,
                                job_done, recorded)  # fmt: skip
        quiet = settle(admin)
        time.sleep(args.idle)
        idle = operator_requests(admin)
    finally:
        peak = operator.stop()
    restart = restart_once(admin, operator_kubeconfig, args.log or tmp / "operator.log", n)
    direct.append(direct_cronjobs(admin, "bench-d2", n, args.threads))
    writes = direct_writes(admin, "bench-w", n, args.threads)
    baseline = min(direct)
    idle_other = non_watch(idle) - non_watch(quiet)
    idle_watch = idle["watch"] - quiet["watch"]
    by_verb = ", ".join(f"{k} {v:.2f}" for k, v in per_report.items() if v and k != "watch")
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    rows = [
        (f"{n:,} reports in {NAMESPACES} namespaces applied at once, until each has its "
         f"CronJob and a status{' (one shard listing them)' if args.shard else ''}",
         f"{done:.1f} s (applied in {applied:.1f} s; operator CPU {cpu:.1f} s)",
         f"{done / writes:.2f}x floor, {done / baseline:.1f}x baseline",
         "≤ 1.5x floor", "met" if done <= 1.5 * writes else "missed"),
        (f"baseline: {n:,} CronJobs POSTed directly ({args.threads} threads)",
         f"{baseline:.1f} s (runs: {', '.join(f'{d:.1f}' for d in direct)} s)", "1.0x", "", ""),
        (f"floor: the {n * 3:,} writes made by a plain client", f"{writes:.1f} s",
         f"{writes / baseline:.1f}x baseline", "", "report, CronJob, status patch"),
        (f"operator peak RSS after {n:,} reports", f"{rss_at_n:.0f} MiB", "", "≤ 200 MiB",
         "met" if rss_at_n <= 200 else "missed"),
        ("operator peak RSS over the whole run", f"{peak:.0f} MiB", "", "≤ 200 MiB",
         "met" if peak <= 200 else "missed"),
        ("operator API requests per report (non-watch)", f"{non_watch(per_report):.2f}",
         f"{non_watch(per_report):.1f}x baseline (1 POST)", "", by_verb),
        (f"status latency, Job Complete -> report status ({len(latencies)} Jobs, "
         f"{args.job_rate:g}/s)", f"p50 {p50:.2f} s, p95 {p95:.2f} s", "", "p95 < 2 s",
         "met" if p95 < 2 else "missed"),
        (f"operator restarted with {n:,} reports: start to idle",
         f"{restart.seconds:.1f} s (CPU {restart.cpu:.1f} s)", "", "",
         f"peak RSS {restart.rss:.0f} MiB; requests: {restart.requests}"),
        (f"operator requests in {args.idle:g} s idle (non-watch / watch)",
         f"{idle_other:.0f} / {idle_watch:.0f}", "", "0 non-watch",
         "met" if idle_other == 0 else "missed"),
    ]  # fmt: skip
    body = table(["measurement", "value", "ratio", "target", "result"], rows)
    return body + (f"\n\nWhere the operator's burst went (py-spy):\n\n{profile}" if profile else "")


if __name__ == "__main__":
    sys.exit(main())
