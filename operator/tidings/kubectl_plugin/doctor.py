"""`kubectl tidings doctor`: one line per check of the installation, and what to do on failure."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import tidings
from tidings import display, models
from tidings.contract import RELAY_PROBE_COMPONENT
from tidings.kubectl_plugin.api import Api, _reason
from tidings.schedule import parse_rfc3339

OK, FAIL, SKIP = "ok", "FAIL", "skip"
DOCTOR_PROBE = "tidings-doctor-probe"
# The renderer check: a pod of the operator's image renders this report to /tmp and leaves the
# last stderr lines (render's "wrote ...", or why it fell back to text) as its termination
# message, which the plugin reads without needing pods/log.
RENDER_SCRIPT = """\
import contextlib, io, os, sys
open('/tmp/doctor.yaml', 'w').write(os.environ['TIDINGS_DOCTOR_REPORT'])
from tidings.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err):
    code = main(['render', '/tmp/doctor.yaml', '-o', '/tmp/doctor.pdf'])
text = err.getvalue().strip()
print(text, file=sys.stderr)
with contextlib.suppress(OSError), open('/dev/termination-log', 'w') as log:
    log.write(text[-3000:])
sys.exit(code)
"""


def sample_report(name: str, now: datetime) -> dict[str, Any]:
    """A small manual report with inline rows inside its own window: valid, admitted with edit
    rights, and its subject lacks {date} so the webhook answers with a warning."""
    start = (now - timedelta(days=2)).replace(microsecond=0)
    rows = [
        {
            "id": f"DOC-{i}",
            "title": f"Doctor check {i}",
            "status": "completed",
            "completed_at": (start + timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
        }
        for i in range(1, 4)
    ]
    return {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": name},
        "spec": {
            "title": "Tidings doctor",
            "reportType": "changes_summary",
            "source": {"inline": {"rows": rows}},
            "filters": {"window": {"last": "7d"}},
            "recipients": {"to": ["doctor@example.com"]},
            "delivery": {"subjectTemplate": "{name}"},
        },
    }


class Check:
    def __init__(self, name: str, state: str, text: str, fix: str = "") -> None:
        self.name, self.state, self.text, self.fix = name, state, text, fix

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix and self.state == FAIL else ""
        return f"[{self.state:>4}] {self.name}: {self.text}{fix}"


def _api_error(error: Exception) -> str:
    status = getattr(error, "status", None)
    return f"HTTP {status}: {_reason(error)}" if status else str(error)


def check_operator(api: Api, namespace: str) -> tuple[list[Check], Any]:
    """Replicas Ready, and the Deployment (for the image checks) or None."""
    from kubernetes import client

    apps = client.AppsV1Api(api.client)
    selector = "app.kubernetes.io/name=tidings,app.kubernetes.io/component=operator"
    fix = f"kubectl -n {namespace} describe deployment -l {selector}; then its pods' logs"
    try:
        found = apps.list_namespaced_deployment(namespace, label_selector=selector).items
    except Exception as error:
        return [
            Check(
                "operator",
                FAIL,
                f"cannot list Deployments in {namespace}: {_api_error(error)}",
                "--operator-namespace NS, or ask for view there",
            )
        ], None
    if not found:
        return [
            Check(
                "operator",
                FAIL,
                f"no operator Deployment ({selector}) in {namespace}",
                "helm install tidings charts/tidings -n tidings, or --operator-namespace",
            )
        ], None
    deployment = found[0]
    want = deployment.spec.replicas or 0
    ready = (deployment.status.ready_replicas or 0) if deployment.status else 0
    name = deployment.metadata.name
    state = OK if ready >= 1 and ready >= want else FAIL
    return [
        Check("operator", state, f"{namespace}/{name}: {ready}/{want} replicas Ready", fix)
    ], deployment


def check_leader(api: Api, deployment: Any, now: datetime) -> Check:
    """kopf peering: a live peer with the highest priority is the active replica."""
    env = _env(deployment)
    if str(env.get("TIDINGS_STANDALONE", "")).lower() == "true":
        return Check("leader", OK, "peering disabled (standalone): the one replica is active")
    name = env.get("TIDINGS_PEERING") or "tidings"
    from kubernetes.client.exceptions import ApiException

    what = f"ClusterKopfPeering {name}"
    try:
        peering = api.custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", name
        )
    except ApiException as error:
        # An operator watching chosen namespaces peers in each of them (KopfPeering).
        what = f"KopfPeering {api.namespace}/{name}"
        try:
            peering = api.custom.get_namespaced_custom_object(
                "kopf.dev", "v1", api.namespace, "kopfpeerings", name
            )
        except ApiException:
            return Check(
                "leader",
                FAIL,
                f"no ClusterKopfPeering or {what}: {_api_error(error)}",
                "the chart creates it (operator.peering.enabled); kubectl get clusterkopfpeerings",
            )
    alive = []
    for peer, info in (peering.get("status") or {}).items():
        if not isinstance(info, dict):
            continue
        try:
            seen = datetime.fromisoformat(str(info.get("lastseen")))  # kopf's: naive UTC
        except ValueError:
            continue
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        if seen + timedelta(seconds=float(info.get("lifetime") or 60)) >= now:
            alive.append((int(info.get("priority") or 0), peer))
    if not alive:
        return Check(
            "leader",
            FAIL,
            f"no live peer in {what}: every replica is gone or stands by",
            "check the operator pods' logs",
        )
    priority, leader = max(alive)
    return Check(
        "leader", OK, f"{leader} is active (priority {priority}, {len(alive)} live peer(s))"
    )


def _env(deployment: Any) -> dict[str, str]:
    return {e.name: e.value for e in deployment.spec.template.spec.containers[0].env or ()}


def _image(deployment: Any) -> tuple[str, str]:
    """(the operator's image, the renderer image it starts)."""
    container = deployment.spec.template.spec.containers[0]
    env = {e.name: e.value for e in container.env or ()}
    return container.image, env.get("TIDINGS_RENDERER_IMAGE") or container.image


def check_version(deployment: Any) -> Check:
    image, _ = _image(deployment)
    tag = image.rsplit("@", 1)[0].rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    mine = tidings.__version__
    if not re.match(r"^v?\d+\.\d+", tag):  # a digest, latest, a branch: no version to compare
        return Check("version", SKIP, f"operator image {image} names no version; plugin {mine}")
    if tag.lstrip("v") == mine:
        return Check("version", OK, f"operator {tag}, plugin {mine}")
    return Check(
        "version",
        FAIL,
        f"operator image {image} (tag {tag or 'none'}), plugin {mine}",
        f"install the plugin of the operator's version (pip install tidings=={tag}) "
        "or upgrade the chart",
    )


def check_webhook(api: Api, now: datetime) -> Check:
    """A server-side dry-run create of a sample report: the webhook answers it with a warning
    (its subject has no {date}); no warning means no webhook saw it."""
    from kubernetes.client.exceptions import ApiException

    fix = (
        "kubectl -n tidings get endpointslices -l kubernetes.io/service-name=tidings-webhook "
        "should list the operator pods as ready"
    )
    body = sample_report(DOCTOR_PROBE, now)
    try:
        _, _, headers = api.custom.create_namespaced_custom_object_with_http_info(
            models.GROUP, models.VERSION, api.namespace, models.PLURAL, body, dry_run="All"
        )
    except ApiException as error:
        reason = _reason(error)
        if "failed calling webhook" in reason:
            return Check("webhook", FAIL, f"unreachable through its Service: {reason}", fix)
        return Check(
            "webhook",
            FAIL,
            f"dry-run create in {api.namespace}: HTTP {error.status}: {reason}",
            "needs create on scheduledreports in this namespace (edit)",
        )
    warnings = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    if any("{date}" in w for w in warnings):
        return Check("webhook", OK, f"answered a dry-run create in {api.namespace}")
    return Check(
        "webhook",
        FAIL,
        "a dry-run create was admitted without the webhook's "
        "warning: no webhook is configured for scheduledreports",
        "helm upgrade with webhook.enabled=true",
    )


def crd_drift(installed: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Versions whose schema or printer columns differ from what `tidings crd` generates."""
    have = {v["name"]: v for v in installed.get("spec", {}).get("versions") or ()}
    drift = []
    for version in wanted["spec"]["versions"]:
        got = have.get(version["name"])
        if got is None:
            drift.append(f"{version['name']} missing")
            continue
        for key in ("schema", "additionalPrinterColumns", "subresources"):
            if (got.get(key) or None) != (version.get(key) or None):
                drift.append(f"{version['name']}.{key} differs")
    return drift


def check_crds(api: Api) -> Check:
    from kubernetes import client

    from tidings import crdgen

    ext = client.ApiextensionsV1Api(api.client)
    stale = []
    for kind in (models.KIND, models.DELIVERY_KIND):
        wanted = crdgen.crd(kind)
        name = wanted["metadata"]["name"]
        try:
            installed = api.client.sanitize_for_serialization(
                ext.read_custom_resource_definition(name)
            )
        except Exception as error:
            return Check(
                "crds",
                FAIL,
                f"{name}: {_api_error(error)}",
                "kubectl apply --server-side -f crds/ (as a cluster admin)",
            )
        stale += [f"{name}: {d}" for d in crd_drift(installed, wanted)]
    if stale:
        return Check(
            "crds",
            FAIL,
            "not what this version generates: " + "; ".join(stale),
            "kubectl apply --server-side -f charts/tidings/crds/ of the chart you run",
        )
    return Check(
        "crds",
        OK,
        f"{models.PLURAL} and {models.DELIVERY_PLURAL} match tidings {tidings.__version__}",
    )


def renderer_pod(name: str, image: str, pull_policy: str | None, now: datetime) -> dict[str, Any]:
    report = json.dumps(sample_report("doctor-sample", now))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "tidings",
                "app.kubernetes.io/component": "doctor",
            },
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": 600,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "render",
                    "image": image,
                    **({"imagePullPolicy": pull_policy} if pull_policy else {}),
                    "command": ["python3", "-c", RENDER_SCRIPT],
                    "env": [
                        {"name": "TIDINGS_DOCTOR_REPORT", "value": report},
                        # As the CronJob's pods have them: caches on the writable /tmp.
                        {"name": "HOME", "value": "/tmp"},
                        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                        "limits": {"memory": "512Mi"},
                    },
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        },
    }


def check_renderer(
    api: Api, image: str, pull_policy: str | None, timeout: float, now: datetime
) -> Check:
    """A pod of the renderer image renders a sample report in the user's namespace: exit 0 with
    "wrote /tmp/doctor.pdf" is WeasyPrint working; 69 is the text fallback."""
    import uuid

    name = f"tidings-doctor-{uuid.uuid4().hex[:8]}"
    try:
        api.core.create_namespaced_pod(api.namespace, renderer_pod(name, image, pull_policy, now))
    except Exception as error:
        return Check(
            "renderer",
            FAIL,
            f"cannot create a pod in {api.namespace}: {_api_error(error)}",
            "needs create on pods in this namespace (edit)",
        )
    try:
        deadline = time.monotonic() + timeout
        pod = None
        while time.monotonic() < deadline:
            pod = api.core.read_namespaced_pod(name, api.namespace)
            for status in (pod.status.container_statuses or ()) if pod.status else ():
                done = status.state.terminated if status.state else None
                if done is not None:
                    return _render_verdict(image, done.exit_code, done.message or "")
            time.sleep(1)
        phase = pod.status.phase if pod is not None and pod.status else "unknown"
        return Check(
            "renderer",
            FAIL,
            f"pod {name} of {image} did not finish in {timeout:.0f}s (phase {phase})",
            f"kubectl -n {api.namespace} describe pod: image pull, quota or no schedulable node",
        )
    finally:
        # Best effort: its activeDeadlineSeconds ends it anyway.
        with contextlib.suppress(Exception):
            api.core.delete_namespaced_pod(name, api.namespace, grace_period_seconds=0)


def _render_verdict(image: str, code: int, message: str) -> Check:
    last = " ".join(message.split())[-300:]
    if code == 0 and "wrote /tmp/doctor.pdf" in message:
        return Check(
            "renderer", OK, f"{image} renders a PDF (WeasyPrint and its libraries present)"
        )
    if code == 69:
        why = [line for line in message.splitlines() if "PDF renderer unavailable" in line]
        last = " ".join(why[0].split())[:300] if why else last
        return Check(
            "renderer",
            FAIL,
            f"{image} fell back to text: {last}",
            "build the image from renderer-image/Dockerfile (the packages of "
            "renderer-image/apt-packages.txt)",
        )
    return Check(
        "renderer",
        FAIL,
        f"{image}: tidings render exited {code}: {last}",
        "is it the tidings image? (chart value renderer.image)",
    )


def cmd_doctor(api: Api, args: argparse.Namespace, now: datetime) -> int:
    checks, deployment = check_operator(api, args.operator_namespace)
    if deployment is not None:
        checks += [check_leader(api, deployment, now), check_version(deployment)]
    else:
        checks += [
            Check("leader", SKIP, "no operator Deployment to ask"),
            Check("version", SKIP, "no operator Deployment to compare with"),
        ]
    checks += [check_webhook(api, now), check_crds(api)]
    image = args.image or (_image(deployment)[1] if deployment is not None else None)
    if args.skip_renderer:
        checks.append(Check("renderer", SKIP, "--skip-renderer"))
    elif image is None:
        checks.append(Check("renderer", FAIL, "no renderer image known", "--image IMAGE"))
    else:
        pull = args.image_pull_policy or (
            _env(deployment).get("TIDINGS_RENDERER_PULL_POLICY") if deployment else None
        )
        checks.append(check_renderer(api, image, pull, args.renderer_timeout, now))
    checks.append(check_relay(api, args.operator_namespace, now))
    for check in checks:
        print(check.line())
    failed = [c.name for c in checks if c.state == FAIL]
    print(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "all checks passed")
    return 1 if failed else 0


# ------------------------------------------------------------------------------------ relay

RELAY_SELECTOR = "app.kubernetes.io/name=tidings,app.kubernetes.io/component=relay"
# What to do when a step of the relay's probe of the platform relay fails.
PROBE_FIXES = {
    "connect": "check smtp.host and smtp.port (helm values), that the relay pods may reach them "
    "(NetworkPolicy, firewall), and for smtp.tls=tls smtp.caCert",
    "ehlo": "the server at smtp.host:smtp.port does not speak SMTP: check smtp.port",
    "starttls": "check smtp.tls (starttls needs the server to offer STARTTLS; port 465 wants "
    "tls) and smtp.caCert for a private CA",
    "auth": "check username and password in the Secret smtp.credentialsSecret names, in {ns}",
}


def relay_verdict(
    data: Mapping[str, str] | None, namespace: str, name: str, replicas: str, now: datetime
) -> Check:
    """The relay line from its published probe (contract.RELAY_PROBE_COMPONENT): failed steps
    with their fix, and a result too old to trust (no replica probing)."""
    logs = f"kubectl -n {namespace} logs deployment/{name}"
    where = f"{namespace}/{name}: {replicas}"
    if not data:
        return Check(
            "relay",
            FAIL,
            f"{where} no probe of the platform relay published (a relay older than the plugin?)",
            f"{logs}; upgrade the chart",
        )
    try:
        checked = parse_rfc3339(data.get("checkedAt", ""))
        interval = int(data.get("intervalSeconds") or 60)
    except ValueError:
        return Check("relay", FAIL, f"{where} the probe result does not parse", logs)
    age = display.relative(checked, now)
    if now - checked > timedelta(seconds=3 * interval + 30):
        return Check(
            "relay",
            FAIL,
            f"{where} the last probe of the platform relay was {age} "
            f"(by {data.get('replica', '?')}; every {interval}s expected): no replica is probing",
            logs,
        )
    upstream = data.get("upstream", "?")
    if data.get("ok") != "true":
        step = data.get("step", "?")
        fix = PROBE_FIXES.get(step, logs).format(ns=namespace)
        return Check(
            "relay",
            FAIL,
            f"{where} platform relay {upstream} failed at {step}: {data.get('detail', '')} "
            f"(probed {age})",
            fix,
        )
    return Check(
        "relay", OK, f"{where} platform relay {upstream}: {data.get('detail', '')} ({age})"
    )


def check_relay(api: Api, namespace: str, now: datetime) -> Check:
    """The delivery relay runs, and its own probe of the platform relay (EHLO, STARTTLS as
    configured, AUTH with the credentials only it holds) passed lately."""
    from kubernetes import client

    apps = client.AppsV1Api(api.client)
    try:
        found = apps.list_namespaced_deployment(namespace, label_selector=RELAY_SELECTOR).items
        maps = api.core.list_namespaced_config_map(
            namespace, label_selector=f"app.kubernetes.io/component={RELAY_PROBE_COMPONENT}"
        ).items
    except Exception as error:
        return Check(
            "relay",
            FAIL,
            f"cannot read the relay in {namespace}: {_api_error(error)}",
            "--operator-namespace NS, or ask for view there",
        )
    if not found:
        return Check(
            "relay",
            SKIP,
            f"no delivery relay in {namespace} (relay.enabled=false): report pods send to "
            "smtp.host themselves; try it with kubectl tidings test NAME --to ADDR --wait",
        )
    deployment = found[0]
    name = deployment.metadata.name
    want = deployment.spec.replicas or 0
    ready = (deployment.status.ready_replicas or 0) if deployment.status else 0
    where = f"{namespace}/{name}"
    if ready < 1:
        return Check(
            "relay",
            FAIL,
            f"{where}: {ready}/{want} replicas Ready: no report can send mail",
            f"kubectl -n {namespace} scale deployment {name} --replicas=2 "
            f"(if it is scaled up: kubectl -n {namespace} describe deployment {name})",
        )
    data = dict(maps[0].data or {}) if maps else None
    return relay_verdict(data, namespace, name, f"{ready}/{want} Ready;", now)
