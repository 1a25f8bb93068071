"""The trust boundary on the real control plane, with real users (a client
certificate each, bound to the chart's or the built-in roles):

- the webhook refuses a report naming a Secret or ConfigMap its author cannot `get`, naming the
  reference and the missing right, also when only another field changed; a user who can read it
  is admitted;
- the chart's ValidatingAdmissionPolicy refuses an `edit` user's forged Job carrying a report's
  labels, or only the snapshot annotation in its pod template, naming the policy; her own Job
  without them is allowed; the operator (running as the chart's ServiceAccount name) and the
  built-in controllers still create, finish and delete a real run-now; nobody may take the
  labels off a run; and the webhook refuses exec into a run's pod.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tests.support.admission_cases import DROP, changed
from tests.support.admission_webhook import DENIED, serving_webhook, wait_until_enforced
from tests.support.chart_tools import render
from tests.support.operator_harness import (
    Cluster,
    OperatorProcess,
    StandInKubelet,
    install_report_crd,
    result_line,
    wait_for,
)
from tests.support.rbac_users import role_binding, wait_allowed
from tests.support.report_bodies import manifest

from tidings import contract, models
from tidings.controller import admission, permissions
from tidings.controller import cronjob as cj

pytestmark = pytest.mark.cluster


MANUAL = changed({"schedule": DROP})
HTTP = {
    "url": "https://rows.example.com/changes",
    "authSecretRef": {"name": "api-token", "key": "t"},
}
CONNECT_DENIED = f'admission webhook "{admission.CONNECT_WEBHOOK_ID}" denied the request'


def refusal(code_message: tuple[int, str], path: str, user: str, ns: str, kind: str, name: str):
    code, message = code_message
    assert code == 403, message
    expected = permissions.reference_refusal([permissions.Reference(path, kind, name)], user, ns)
    assert message == f"{DENIED}: {expected}"


def attempt(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    """(HTTP status, message) of a call that must fail."""
    try:
        call(*args, **kwargs)
    except ApiException as exc:
        return exc.status, json.loads(exc.body)["message"]
    pytest.fail(f"{getattr(call, '__name__', call)} was allowed")


# ---------------------------------------------------------------- Secrets a report names


@pytest.fixture(scope="module")
def users(control_plane, kube, reports, roles) -> Iterator[dict[str, client.CustomObjectsApi]]:
    """tess: the chart's tidings-edit alone (no Secrets); eddie: built-in edit (all Secrets)."""
    ns = reports.namespace
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_namespaced_role_binding(ns, role_binding("tess-edit", "tidings-edit", "tess"))
    rbac.create_namespaced_role_binding(ns, role_binding("eddie-edit", "edit", "eddie"))
    for user in ("tess", "eddie"):
        wait_allowed(kube, user, ns, "create")
    apis = {user: control_plane.api_client(user=user) for user in ("tess", "eddie")}
    yield {user: client.CustomObjectsApi(api) for user, api in apis.items()}
    for api in apis.values():
        api.close()


@pytest.fixture(scope="module")
def webhook(control_plane, kube, reports, users, tmp_path_factory) -> Iterator[dict]:
    pki = tmp_path_factory.mktemp("trust-pki")
    with serving_webhook(control_plane, kube, reports.namespace, pki) as configuration:
        wait_until_enforced(reports)
        yield configuration


def create(api: client.CustomObjectsApi, ns: str, name: str, spec: dict[str, Any]) -> Any:
    body = {
        "apiVersion": f"{models.GROUP}/{models.VERSION}",
        "kind": models.KIND,
        "metadata": {"name": name},
        "spec": spec,
    }
    return api.create_namespaced_custom_object(
        models.GROUP, models.VERSION, ns, models.PLURAL, body
    )


def patch(api: client.CustomObjectsApi, ns: str, name: str, body: dict[str, Any]) -> Any:
    return api.patch_namespaced_custom_object(
        models.GROUP, models.VERSION, ns, models.PLURAL, name, body
    )


def test_a_secret_the_author_cannot_read_is_refused_and_one_she_can_is_admitted(
    reports, users, webhook
):
    ns = reports.namespace
    path = "spec.source.sql.connectionSecretRef"
    refused = attempt(create, users["tess"], ns, "tess-db", MANUAL)
    refusal(refused, path, "tess", ns, "secrets", "changes-db")
    create(users["eddie"], ns, "eddie-db", MANUAL)  # built-in edit may get Secrets
    assert reports.get("eddie-db")["spec"]["source"]["sql"]["connectionSecretRef"]


def test_a_configmap_template_needs_get_on_the_configmap(reports, users, webhook):
    ns = reports.namespace
    spec = changed({"templateRef": {"name": "branded", "key": "page.html.j2"}}, MANUAL)
    spec["source"] = {"inline": {"rows": [{"id": 1, "status": "completed", "title": "x"}]}}
    refusal(
        attempt(create, users["tess"], ns, "tess-tmpl", spec),
        "spec.templateRef",
        "tess",
        ns,
        "configmaps",
        "branded",
    )
    create(users["eddie"], ns, "eddie-tmpl", spec)


def test_an_unchanged_reference_is_checked_when_the_editor_changes_the_spec(
    kube, reports, users, webhook
):
    """An admin's http report: tess may run it now, but changing its URL (or anything of its
    spec) keeps the admin's authSecretRef, which she cannot read herself."""
    ns = reports.namespace
    spec = changed({"source": {"http": HTTP}}, MANUAL)
    reports.create("admin-http", spec)
    path = "spec.source.http.authSecretRef"
    moved = {"spec": {"source": {"http": {"url": "https://tess.example.net/steal"}}}}
    refusal(
        attempt(patch, users["tess"], ns, "admin-http", moved),
        path,
        "tess",
        ns,
        "secrets",
        "api-token",
    )
    retitled = {"spec": {"title": "Renamed by tess"}}
    refusal(
        attempt(patch, users["tess"], ns, "admin-http", retitled),
        path,
        "tess",
        ns,
        "secrets",
        "api-token",
    )
    patch(
        users["tess"],
        ns,
        "admin-http",
        {"metadata": {"annotations": {contract.RUN_NOW_ANNOTATION: "1"}}},
    )
    assert reports.get("admin-http")["spec"]["source"]["http"]["url"] == HTTP["url"]

    # Once she may read that one Secret, the same change is admitted.
    rbac = client.RbacAuthorizationV1Api(kube)
    rule = {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["get"],
        "resourceNames": ["api-token"],
    }
    rbac.create_namespaced_role(ns, {"metadata": {"name": "read-api-token"}, "rules": [rule]})
    binding = role_binding("tess-api-token", "read-api-token", "tess")
    binding["roleRef"]["kind"] = "Role"
    rbac.create_namespaced_role_binding(ns, binding)

    def admitted() -> bool:
        try:
            patch(users["tess"], ns, "admin-http", moved)
        except ApiException as exc:
            assert exc.status == 403, exc.body
            return False
        return True

    wait_for("tess's Secret access", admitted)
    assert reports.get("admin-http")["spec"]["source"]["http"]["url"].startswith("https://tess.")


# --------------------------------------------------------- the operator's runs are its own


@pytest.fixture(scope="module")
def protected(control_plane, kube, roles) -> Iterator[dict[str, Any]]:
    """A namespace under the chart's run-protection policy (bound to it alone), mallory with
    built-in edit there, and the identity the policy trusts as the operator."""
    suffix = uuid.uuid4().hex[:5]
    ns, release, release_ns = f"trust-runs-{suffix}", f"tr{suffix}", f"tidings-tr-{suffix}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    wait_for("the default ServiceAccount", lambda: _has_default_account(core, ns))
    objects = render(release, release_ns, set_values=(f"operator.watchNamespaces={{{ns}}}",))
    policy = [o for o in objects if o["kind"].startswith("ValidatingAdmissionPolicy")]
    assert [o["kind"] for o in policy] == [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    import yaml

    control_plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(policy))
    rbac = client.RbacAuthorizationV1Api(kube)
    rbac.create_namespaced_role_binding(ns, role_binding("mallory-edit", "edit", "mallory"))
    wait_allowed(kube, "mallory", ns, "create")
    mallory = control_plane.api_client(user="mallory")
    name = policy[0]["metadata"]["name"]
    try:
        yield {
            "namespace": ns,
            "policy": name,
            "operator": f"system:serviceaccount:{release_ns}:{release}-tidings",
            "mallory": mallory,
        }
    finally:
        mallory.close()
        for obj in reversed(policy):
            control_plane.kubectl("delete", obj["kind"], obj["metadata"]["name"], check=False)
        core.delete_namespace(ns)


def _has_default_account(core: client.CoreV1Api, ns: str) -> bool:
    names = [a.metadata.name for a in core.list_namespaced_service_account(ns).items]
    return "default" in names


def forged_job(name: str, labels: dict[str, str], template_annotations: dict[str, str]) -> dict:
    """A Job whose container would write a Delivered result line."""
    line = json.dumps(result_line(True, messageId="<forged@evil.example>"))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": template_annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": cj.CONTAINER,
                            "image": "busybox",
                            "command": ["sh", "-c", f"echo '{line}' > /dev/termination-log"],
                        }
                    ],
                },
            },
        },
    }


def wait_enforced(batch: client.BatchV1Api, ns: str, policy: str) -> None:
    """Policies reach the apiserver's admission asynchronously: probe with a dry run."""
    probe = forged_job("probe", {cj.MANAGED_BY_LABEL: cj.MANAGED_BY}, {})

    def refused() -> bool:
        try:
            batch.create_namespaced_job(ns, probe, dry_run="All")
        except ApiException as exc:
            return exc.status == 403 and policy in json.loads(exc.body)["message"]
        return False

    wait_for(f"policy {policy} in force", refused)


def test_forged_runs_are_refused_at_admission_and_her_own_job_is_not(protected):
    ns, policy = protected["namespace"], protected["policy"]
    batch = client.BatchV1Api(protected["mallory"])
    wait_enforced(batch, ns, policy)
    labels = {
        cj.MANAGED_BY_LABEL: cj.MANAGED_BY,
        cj.COMPONENT_LABEL: "report-run",
        cj.REPORT_UID_LABEL: str(uuid.uuid4()),
    }
    code, message = attempt(batch.create_namespaced_job, ns, forged_job("forged", labels, {}))
    assert code == 403
    assert f"ValidatingAdmissionPolicy '{policy}'" in message
    assert "only the Tidings operator and the built-in controllers may create or change jobs" in (
        message
    )
    assert '"mallory" may not' in message
    snapshot_only = forged_job("snapshot", {}, {cj.SNAPSHOT_ANNOTATION: "spec: {}"})
    code, message = attempt(batch.create_namespaced_job, ns, snapshot_only)
    assert code == 403 and f"ValidatingAdmissionPolicy '{policy}'" in message
    plain = batch.create_namespaced_job(ns, forged_job("her-own", {"app": "mine"}, {}))
    assert plain.metadata.name == "her-own"
    batch.delete_namespaced_job("her-own", ns, propagation_policy="Background")


def test_the_operator_and_the_controllers_still_run_and_nobody_else_touches_a_run(
    control_plane, kube, protected, tmp_path: Path
):
    ns, policy = protected["namespace"], protected["policy"]
    install_report_crd(control_plane, kube)
    wait_enforced(client.BatchV1Api(kube), ns, policy)
    # The operator as the chart's ServiceAccount name (its rights from system:masters here).
    kubeconfig = control_plane.kubeconfig_for(protected["operator"], ["system:masters"])
    operator = OperatorProcess(kubeconfig, ns, tmp_path / "operator.log", {})
    cluster = Cluster(kube, ns)
    with serving_webhook(control_plane, kube, ns, tmp_path / "pki"):
        operator.start()
        try:
            name = cluster.create_manual_report(manifest("weekly"))
            cronjob = wait_for("the CronJob", lambda: cluster.cronjob(cj.cronjob_name(name)))
            cluster.annotate(name, **{contract.RUN_NOW_ANNOTATION: "trust"})
            job_name = cj.run_now_job_name(name, "trust")
            kubelet = StandInKubelet(cluster)
            pod = kubelet.pending_pod(job_name)  # the Job controller made it
            _nobody_else_touches_the_run(control_plane, kube, protected, cronjob, job_name, pod)
            kubelet.finish(pod, 0, json.dumps(result_line(True)))
            cluster.wait_status(name, "the run counted", lambda s: s.get("lastSentAt"))
            wait_for(
                "the operator to let the Job go",
                lambda: (
                    cj.FINALIZER not in (cluster.job(job_name)["metadata"].get("finalizers") or ())
                ),
            )
            cluster.custom.delete_namespaced_custom_object(
                models.GROUP, models.VERSION, ns, models.PLURAL, name
            )
            wait_for(
                "the garbage collector to delete the run", lambda: cluster.job(job_name) is None
            )
            wait_for(
                "and the CronJob", lambda: cluster.cronjob(cronjob["metadata"]["name"]) is None
            )
        finally:
            operator.stop()
    log = operator.log_text()
    assert "ValidatingAdmissionPolicy" not in log, operator.log_tail()


def _nobody_else_touches_the_run(control_plane, kube, protected, cronjob, job_name, pod) -> None:
    ns, policy = protected["namespace"], protected["policy"]
    mallory = protected["mallory"]
    by_policy = f"ValidatingAdmissionPolicy '{policy}'"
    # A copy of the CronJob's job template with her own recipients: refused.
    copy = cj.job_from_template(cronjob, "copied", {})
    copy["metadata"].pop("ownerReferences")
    code, message = attempt(client.BatchV1Api(mallory).create_namespaced_job, ns, copy)
    assert code == 403 and by_policy in message
    code, message = attempt(
        client.BatchV1Api(mallory).patch_namespaced_cron_job,
        cronjob["metadata"]["name"],
        ns,
        {"spec": {"suspend": False}},
    )
    assert code == 403 and by_policy in message
    # Not even a cluster admin takes the labels off a run, or adds a container to its pod.
    unlabel = {"metadata": {"labels": {cj.MANAGED_BY_LABEL: None, cj.REPORT_UID_LABEL: None}}}
    code, message = attempt(client.BatchV1Api(kube).patch_namespaced_job, job_name, ns, unlabel)
    assert code == 403 and by_policy in message
    debug = {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox"}]}}
    code, message = attempt(
        client.CoreV1Api(kube).patch_namespaced_pod_ephemeralcontainers,
        pod["metadata"]["name"],
        ns,
        debug,
    )
    assert code == 403 and by_policy in message
    # exec into the run's pod: the webhook refuses it (a policy never sees CONNECT).
    mallory_config = control_plane.kubeconfig_for("mallory")

    def exec_refused() -> Any:
        done = control_plane.kubectl(
            "exec",
            "-n",
            ns,
            pod["metadata"]["name"],
            "--",
            "true",
            kubeconfig=mallory_config,
            check=False,
        )
        assert done.returncode != 0
        return CONNECT_DENIED in done.stderr and done

    done = wait_for("the CONNECT webhook in force", exec_refused)
    assert f'pods/exec is forbidden: pod "{pod["metadata"]["name"]}"' in done.stderr
    # Her own pod: the webhook lets it through (it fails later: there is no node).
    own = {
        "metadata": {"name": "her-pod"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    client.CoreV1Api(mallory).create_namespaced_pod(ns, own)
    done = control_plane.kubectl(
        "exec", "-n", ns, "her-pod", "--", "true", kubeconfig=mallory_config, check=False
    )
    assert done.returncode != 0 and CONNECT_DENIED not in done.stderr, done.stderr


def test_the_cronjob_controller_still_fires_a_scheduled_run(
    control_plane, kube, protected, tmp_path: Path
):
    """A real fire: the CronJob controller creates the Job (trusted by the policy), the Job
    controller its pod, and the operator counts it."""
    ns = protected["namespace"]
    install_report_crd(control_plane, kube)
    wait_enforced(client.BatchV1Api(kube), ns, protected["policy"])
    kubeconfig = control_plane.kubeconfig_for(protected["operator"], ["system:masters"])
    operator = OperatorProcess(kubeconfig, ns, tmp_path / "operator.log", {})
    cluster = Cluster(kube, ns)
    operator.start()
    try:
        cluster.create_report(manifest("minutely", schedule="* * * * *", timeZone="UTC"))
        selector = f"{cj.MANAGED_BY_LABEL}={cj.MANAGED_BY}"
        fired = wait_for(
            "the CronJob controller's Job",
            lambda: [j for j in cluster.jobs(selector) if contract.SCHEDULED_TIMESTAMP_ANNOTATION
                     in (j["metadata"].get("annotations") or {})],
            timeout=150,
        )  # fmt: skip
        job_name = fired[0]["metadata"]["name"]
        StandInKubelet(cluster).run(job_name, 0, result_line(True))
        cluster.wait_status("minutely", "the fired run counted", lambda s: s.get("lastSentAt"))
    finally:
        operator.stop()
