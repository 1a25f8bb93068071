"""Operator test harness: the operator as a real subprocess (`tidings operator`, as in a pod),
a stand-in kubelet, and small API helpers.

There is no kubelet in the test control plane. The stand-in does only what a kubelet does for
these tests: it writes a Pod's status (phase, exit code, termination message) through the
pods/status subresource. The real Job controller then decides the Job's fate (retries,
podFailurePolicy, completion), and the CronJob and garbage-collector controllers do the rest.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tidings import contract, crdgen, models
from tidings.controller import cronjob as cj
from tidings.schedule import rfc3339
from tidings_dev.cluster import ControlPlane
from tidings_dev.procs import free_port

T = TypeVar("T")
MONDAY = datetime(2025, 3, 31, 7, 0, tzinfo=UTC)  # Monday 09:00 Europe/Berlin
WAIT = 90.0  # a failsafe for eventual states, not a performance claim


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = WAIT) -> T:
    """Poll until `probe` returns something truthy; fail naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what} (last seen: {last!r})")


def install_report_crd(plane: ControlPlane, kube: client.ApiClient) -> None:
    """The ScheduledReport CRD, generated from the models when crds/ did not provide it, and
    the chart's admission policy: Jobs of reports are born with the outcome finalizer."""
    ext = client.ApiextensionsV1Api(kube)
    name = f"{models.PLURAL}.{models.GROUP}"
    try:
        ext.read_custom_resource_definition(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(yaml.safe_load(crdgen.crd_yaml()))
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", name)
    admission = client.AdmissionregistrationV1Api(kube)
    policy, binding = cj.finalizer_policy("tidings-test-run-outcome")
    for create, body in (
        (admission.create_mutating_admission_policy, policy),
        (admission.create_mutating_admission_policy_binding, binding),
    ):
        try:
            create(body)
        except ApiException as exc:
            if exc.status != 409:
                raise


class OperatorProcess:
    """`python -m tidings operator [--standalone] -n <ns> [-n <more>...]` with the admin
    kubeconfig (more_namespaces: a shard's list)."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        log_path: Path,
        env: dict[str, str],
        standalone: bool = True,
        more_namespaces: tuple[str, ...] = (),
    ) -> None:
        self.namespace = namespace
        self.more_namespaces = more_namespaces
        self.standalone = standalone
        self.log_path = log_path
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "TIDINGS_HEALTH_PORT": str(self.health_port),
            "TIDINGS_METRICS_PORT": str(self.metrics_port),
            "TIDINGS_LOG_FORMAT": "json",
            "TIDINGS_RENDERER_IMAGE": "tidings-renderer:test",
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("a")
        cmd = [sys.executable, "-m", "tidings", "operator", "-n", self.namespace]
        for more in self.more_namespaces:
            cmd += ["-n", more]
        if self.standalone:
            cmd.append("--standalone")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for("the operator's /healthz", self._healthy, timeout=60)
        if self.env.get("TIDINGS_WEBHOOK_PORT"):
            # kopf starts its webhook server after /healthz answers.
            wait_for("the webhook port", self._webhook_listening, timeout=60)

    def _webhook_listening(self) -> bool:
        try:
            socket.create_connection(
                ("127.0.0.1", int(self.env["TIDINGS_WEBHOOK_PORT"])), 2
            ).close()
        except OSError:
            return False
        return True

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"the operator exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """kill -9: no shutdown, no queued work finished."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()


class Cluster:
    """API helpers for one namespace, on plain dicts like the operator uses."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)

    # reports
    def create_report(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(
            models.GROUP, models.VERSION, self.ns, models.PLURAL, body
        )

    def create_manual_report(self, body: dict[str, Any], **failure_policy: int) -> str:
        """`body` without a schedule (run-now only) and with these failurePolicy values, once
        the operator has it Manual; its name."""
        policy = {"disableAfter": 3, "retries": 0, "timeoutSeconds": 600, **failure_policy}
        body["spec"].update(schedule="", failurePolicy=policy)
        self.create_report(body)
        name = body["metadata"]["name"]
        self.wait_status(name, "Manual", lambda s: s.get("phase") == "Manual")
        return name

    def report(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            models.GROUP, models.VERSION, self.ns, models.PLURAL, name
        )

    def patch_report(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            models.GROUP, models.VERSION, self.ns, models.PLURAL, name, body
        )

    def annotate(self, name: str, **annotations: str) -> None:
        self.patch_report(name, {"metadata": {"annotations": annotations}})

    def status(self, name: str) -> dict[str, Any]:
        return self.report(name).get("status") or {}

    def wait_status(self, name: str, what: str, check: Callable[[dict], bool]) -> dict:
        return wait_for(f"{name}: {what}", lambda: (s := self.status(name)) and check(s) and s)

    # children, as raw JSON (camelCase)
    def _raw(self, path: str, query: list | None = None) -> dict[str, Any] | None:
        request = self.api.param_serialize(
            "GET",
            path,
            query_params=query or [],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request)
        response.read()
        if response.status == 404:
            return None
        assert response.status == 200, response.data
        return json.loads(response.data)

    def cronjob(self, name: str) -> dict[str, Any] | None:
        return self._raw(f"/apis/batch/v1/namespaces/{self.ns}/cronjobs/{name}")

    def jobs(
        self, selector: str = f"{contract.MANAGED_BY_LABEL}={contract.MANAGED_BY}"
    ) -> list[dict]:
        path = f"/apis/batch/v1/namespaces/{self.ns}/jobs"
        return self._raw(path, [("labelSelector", selector)])["items"]

    def job(self, name: str) -> dict[str, Any] | None:
        return self._raw(f"/apis/batch/v1/namespaces/{self.ns}/jobs/{name}")

    def records(self, report_name: str) -> list[dict[str, Any]]:
        """The report's ReportDelivery records."""
        path = (
            f"/apis/{models.GROUP}/{models.VERSION}/namespaces/{self.ns}/{models.DELIVERY_PLURAL}"
        )
        return self._raw(path, [("labelSelector", f"tidings.dev/report={report_name}")])["items"]

    def pods(self, job_name: str) -> list[dict[str, Any]]:
        path = f"/api/v1/namespaces/{self.ns}/pods"
        return self._raw(path, [("labelSelector", f"{contract.JOB_NAME_LABEL}={job_name}")])[
            "items"
        ]

    def events(self, reason: str, name: str) -> list[client.CoreV1Event]:
        selector = f"involvedObject.name={name},reason={reason}"
        return self.core.list_namespaced_event(self.ns, field_selector=selector).items

    def create_scheduled_job(self, cronjob_name: str, scheduled: datetime) -> str:
        """A Job as the CronJob controller makes it at a fire time: `<cronjob>-<minutes>`."""
        cronjob = self.cronjob(cronjob_name)
        assert cronjob is not None, f"no CronJob {cronjob_name}"
        zone = cronjob["spec"].get("timeZone") or "UTC"
        name = f"{cronjob_name}-{int(scheduled.timestamp() // 60)}"
        from zoneinfo import ZoneInfo

        stamp = scheduled.astimezone(ZoneInfo(zone)).isoformat()
        job = cj.job_from_template(cronjob, name, {contract.SCHEDULED_TIMESTAMP_ANNOTATION: stamp})
        self.batch.create_namespaced_job(self.ns, job)
        return name


class StandInKubelet:
    """Writes Pod status exactly as a kubelet reports a finished container."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def pending_pod(self, job_name: str, attempt: int = 1) -> dict[str, Any]:
        """The job's `attempt`-th pod once the Job controller has created it (oldest first)."""

        def probe() -> dict | None:
            pods = sorted(
                self.cluster.pods(job_name), key=lambda p: p["metadata"]["creationTimestamp"]
            )
            if len(pods) >= attempt and pods[attempt - 1]["status"].get("phase") == "Pending":
                return pods[attempt - 1]
            return None

        return wait_for(f"pod #{attempt} of Job {job_name}", probe)

    def _report(self, pod: dict[str, Any], phase: str, state: dict[str, Any], **extra: Any) -> None:
        """Write the pod's status with one container in `state`, as a kubelet does."""
        container = {
            "name": cj.CONTAINER,
            "image": pod["spec"]["containers"][0]["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": state,
        }
        status = {"phase": phase, **extra, "containerStatuses": [container]}
        self.cluster.core.patch_namespaced_pod_status(
            pod["metadata"]["name"], self.cluster.ns, {"status": status}
        )

    def finish(self, pod: dict[str, Any], exit_code: int, message: str) -> None:
        now = rfc3339(datetime.now(UTC))
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "message": message,
            "startedAt": now,
            "finishedAt": now,
        }
        phase = "Succeeded" if exit_code == 0 else "Failed"
        self._report(pod, phase, {"terminated": terminated}, startTime=now)

    def unschedulable(self, pod: dict[str, Any]) -> None:
        """What the scheduler writes for a pod the full node has no room for."""
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
            "available: 1 No preemption victims found for incoming pod.",
        }
        self.cluster.core.patch_namespaced_pod_status(
            pod["metadata"]["name"],
            self.cluster.ns,
            {"status": {"phase": "Pending", "conditions": [condition]}},
        )

    def creating(self, pod: dict[str, Any]) -> None:
        """What a kubelet reports for a pod bound to a busy node: containers being created."""
        scheduled = [{"type": "PodScheduled", "status": "True"}]
        waiting = {"waiting": {"reason": "ContainerCreating"}}
        self._report(pod, "Pending", waiting, conditions=scheduled)

    def run(
        self, job_name: str, exit_code: int, result: dict[str, Any] | None, attempt: int = 1
    ) -> None:
        """Let the Job's next pod end with `exit_code`, its result line as the message."""
        pod = self.pending_pod(job_name, attempt)
        self.finish(pod, exit_code, json.dumps(result) if result else "")


class PodRunner(StandInKubelet):
    """A stand-in kubelet that really runs the pod's command, the way a kubelet would: with
    its env (downward-API fields resolved), its ConfigMap and Secret volumes written to a temp
    dir, and the run contract's TIDINGS_* path overrides pointing there."""

    # mount path in the pod -> the run contract's override for where it lives here
    OVERRIDES: ClassVar[dict[str, str]] = {
        "/etc/tidings/source": "TIDINGS_SOURCE_SECRET_DIR",
        "/etc/tidings/smtp": "TIDINGS_SMTP_SECRET_DIR",
        "/etc/tidings/template": "TIDINGS_TEMPLATE_DIR",
        "/etc/tidings/branding": "TIDINGS_BRANDING_DIR",
        "/etc/tidings/channels": "TIDINGS_CHANNEL_SECRET_DIR",
        "/etc/tidings/recipients": "TIDINGS_RECIPIENTS_DIR",
    }

    def __init__(
        self, cluster: Cluster, root: Path, node_env: dict[str, str] | None = None
    ) -> None:
        super().__init__(cluster)
        self.root = root
        self.node_env = node_env or {}  # what the node's image gives, e.g. SSL_CERT_FILE

    def _materialize(self, volume: dict[str, Any], target: Path, pod: dict[str, Any]) -> None:
        target.mkdir(parents=True, exist_ok=True)
        if "downwardAPI" in volume:
            # The pod's own annotations (the report snapshot), as the kubelet writes them.
            for item in volume["downwardAPI"]["items"]:
                field = item["fieldRef"]["fieldPath"]
                key = field.removeprefix("metadata.annotations['").removesuffix("']")
                (target / item["path"]).write_text(pod["metadata"]["annotations"][key])
            return
        if "configMap" in volume:
            source = volume["configMap"]
            try:
                found = self.cluster.core.read_namespaced_config_map(
                    source["name"], self.cluster.ns
                )
            except ApiException as error:
                if error.status == 404 and source.get("optional"):
                    return  # an optional ConfigMap that is not there: an empty directory
                raise
            data = {k: v.encode() for k, v in (found.data or {}).items()}
            binary = found.binary_data or {}
            data.update({k: base64.b64decode(v) for k, v in binary.items()})
        elif "secret" in volume:
            source = volume["secret"]
            found = self.cluster.core.read_namespaced_secret(source["secretName"], self.cluster.ns)
            data = {k: base64.b64decode(v) for k, v in (found.data or {}).items()}
        elif "projected" in volume:  # its Secret sources, each key at its path
            for part in volume["projected"]["sources"]:
                if "secret" in part:
                    name = part["secret"]["name"]
                    found = self.cluster.core.read_namespaced_secret(name, self.cluster.ns)
                    for item in part["secret"]["items"]:
                        path = target / item["path"]
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(base64.b64decode((found.data or {})[item["key"]]))
            return
        else:
            return  # emptyDir: the empty directory is all there is
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            (target / item["path"]).write_bytes(data[item["key"]])

    def execute(self, job_name: str) -> int:
        """Run the Job's next pod for real; returns its exit code after reporting it."""
        pod = self.pending_pod(job_name)
        spec = pod["spec"]
        (container,) = spec["containers"]
        workdir = self.root / pod["metadata"]["name"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounted: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            target = workdir / mount["name"]
            self._materialize(volumes[mount["name"]], target, pod)
            mounted[mount["mountPath"]] = target
        # The child imports the same tidings as this test (a worktree's, not an installed one).
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path)}
        env.update(self.node_env)
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            else:
                field = var["valueFrom"]["fieldRef"]["fieldPath"]
                label = field.removeprefix("metadata.labels['").removesuffix("']")
                env[var["name"]] = pod["metadata"]["labels"][label]
        env["TIDINGS_REPORT_FILE"] = str(mounted["/etc/tidings/report"] / "report.yaml")
        env.update({v: str(mounted[p]) for p, v in self.OVERRIDES.items() if p in mounted})
        env["HOME"] = str(mounted["/tmp"])
        env["XDG_CACHE_HOME"] = str(mounted["/tmp"] / ".cache")
        termination_log = workdir / "termination-log"
        env["TIDINGS_RESULT_PATH"] = str(termination_log)
        done = subprocess.run(
            container["command"], env=env, capture_output=True, text=True, timeout=300
        )
        message = termination_log.read_text() if termination_log.exists() else ""
        if not message.strip() and done.returncode != 0:  # FallbackToLogsOnError
            message = "\n".join((done.stdout + done.stderr).splitlines()[-80:])[-4096:]
        self.finish(pod, done.returncode, message[:4096])
        return done.returncode


def result_line(delivered: bool, **fields: Any) -> dict[str, Any]:
    """A renderer result line (run contract), Delivered or a failure."""
    base: dict[str, Any] = {
        "outcome": "Delivered" if delivered else "Failed",
        "failure": None if delivered else "transient",
        "scheduledTime": None,
        "windowStart": "2025-03-24T08:00:00Z",
        "windowEnd": "2025-03-31T07:00:00Z",
        "recipientsAccepted": 1 if delivered else 0,
        "recipientsRejected": 0,
        "bytes": 20480 if delivered else 0,
        "renderer": "pdf" if delivered else None,
        "error": "" if delivered else "SMTP 451 try again later",
        "messageId": "<run@tidings.test>" if delivered else "",
    }
    return {**base, **fields}


# ------------------------------------------------------- runs finishing while nobody watches


def finished(cluster: Cluster, job: str) -> dict:
    def probe() -> dict | None:
        found = cluster.job(job)
        conditions = (found or {}).get("status", {}).get("conditions", [])
        done = any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions
        )
        return found if done else None

    return wait_for(f"Job {job} to finish", probe)


def history(status: dict) -> dict[str, dict]:
    return {h["jobName"]: h for h in status.get("history", [])}


HOLD_SPEC = {"failurePolicy": {"disableAfter": 25, "retries": 0, "timeoutSeconds": 600}}


def start_runs(cluster: Cluster, kubelet: StandInKubelet, name: str, count: int) -> list[str]:
    """`count` scheduled Jobs of the report's CronJob, each with its pod waiting to run."""
    jobs = [cluster.create_scheduled_job(name, MONDAY + timedelta(weeks=w)) for w in range(count)]
    for job in jobs:
        kubelet.pending_pod(job)
        assert contract.FINALIZER in cluster.job(job)["metadata"]["finalizers"]  # born held
    return jobs


def finish_runs(cluster: Cluster, kubelet: StandInKubelet, jobs: list[str]) -> None:
    """The first half delivers, the second half fails (in scheduled order)."""
    half = len(jobs) // 2
    for number, job in enumerate(jobs):
        delivered = number < half
        kubelet.run(job, 0 if delivered else 75, result_line(delivered, error=f"down {number}"))
    for job in jobs:
        finished(cluster, job)


def wait_for_cleanup(cluster: Cluster, jobs: list[str]) -> None:
    """The CronJob controller deletes all but 3 successful and 3 failed finished Jobs; ours
    are held by the finalizer until counted, so they wait with a deletionTimestamp."""
    wait_for(
        "the CronJob controller to delete all but 6 Jobs",
        lambda: (
            sum(bool(cluster.job(j)["metadata"].get("deletionTimestamp")) for j in jobs)
            == len(jobs) - 6
        ),
        timeout=180,
    )


def assert_counted_once(cluster: Cluster, name: str, jobs: list[str]) -> None:
    half = len(jobs) // 2
    status = cluster.wait_status(name, "every run recorded", lambda s: set(jobs) <= set(history(s)))
    assert len(status["history"]) == len(jobs)
    assert status["consecutiveFailures"] == half  # the failures finished after the successes
    outcomes = [h["outcome"] for h in status["history"]]
    assert outcomes.count("Delivered") == outcomes.count("Failed") == half

    def let_go() -> bool:
        kept = [j for j in cluster.jobs() if j["metadata"]["name"] in jobs]
        return len(kept) == 6 and all(
            contract.COUNTED_ANNOTATION in j["metadata"]["annotations"]
            and contract.FINALIZER not in (j["metadata"].get("finalizers") or ())
            for j in kept
        )

    wait_for("every Job let go: the cleaned-up ones deleted, 3 + 3 kept and marked", let_go)
    wait_for(
        "one Event per run",
        lambda: (
            len(cluster.events("Delivered", name)) == half
            and len(cluster.events("RunFailed", name)) == half
        ),
    )


def restart_and_see_jobs(operator: OperatorProcess, jobs: list[str]) -> None:
    """Restart the operator and wait until it has handled each finished Job again."""
    offset = operator.log_path.stat().st_size
    operator.stop()
    operator.start()
    wait_for(
        "the restarted operator to handle the Jobs again",
        lambda: all(
            f'"name": "{job}"' in line and "job_event" in line
            for job in jobs
            for line in [_line_for(operator, offset, job)]
        ),
    )


def _line_for(operator: OperatorProcess, offset: int, name: str) -> str:
    """The first log line after `offset` that is about object `name` (JSON logs)."""
    with operator.log_path.open() as log:
        log.seek(offset)
        return next((line for line in log if f'"name": "{name}"' in line), "")


def ready_deployment(
    kube: client.ApiClient,
    namespace: str,
    name: str,
    labels: dict[str, str],
    image: str,
    env: list[dict[str, str]] | None = None,
) -> str:
    """A one-replica Deployment whose pod (made by the real controllers) is marked Running and
    Ready as a kubelet would, so the Deployment counts it Ready; the pod's name."""
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "main", "image": image, "env": env or []}]},
                },
            },
        },
    )
    selector = ",".join(f"{k}={v}" for k, v in labels.items())

    def pod() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector=selector)
        return pods.items[0] if pods.items else None

    found = wait_for(f"the pod of Deployment {name}", pod)
    now = rfc3339(datetime.now(UTC))
    core.patch_namespaced_pod_status(
        found.metadata.name,
        namespace,
        {
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                ],
                "containerStatuses": [
                    {"name": "main", "image": image, "imageID": "", "ready": True,
                     "restartCount": 0, "started": True, "state": {"running": {"startedAt": now}}}
                ],
            }
        },
    )  # fmt: skip

    def ready() -> bool:
        status = apps.read_namespaced_deployment(name, namespace).status
        return (status.ready_replicas or 0) >= 1

    wait_for(f"Deployment {name} to count its Ready replica", ready)
    return str(found.metadata.name)
