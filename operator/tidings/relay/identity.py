"""Who is submitting: a TokenReview of the pod's relay token, then the pod, its Job and the
report the Job belongs to (Job -> CronJob -> ScheduledReport, or Job -> ScheduledReport for
run-now and test Jobs), every hop checked by uid. Blocking calls: the server runs them in a
worker thread."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tidings import models
from tidings.groups import named
from tidings.relay.policy import (
    JOB_OWNERS,
    REPORT_API_VERSION,
    PodIdentity,
    Refused,
    Run,
    check_owner,
    check_uid,
    identity_from_review,
    notice_run,
    notice_target,
    run_of,
    service_account_of,
)


class Lookup:
    """The relay's reads, as plain camelCase mappings (what policy works on)."""

    def __init__(
        self,
        api: client.ApiClient,
        audience: str,
        namespaces: Sequence[str] = (),
        operator_account: str = "",
    ):
        self.api = api
        self.audience = audience
        self.namespaces = tuple(namespaces)
        # `namespace:name` of the operator's service account: its token, with a login naming a
        # report, sends that report's owner notice (docs/relay.md, "The operator's notices").
        self.operator_account = operator_account

    def _review(self, token: str) -> Mapping[str, Any]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": [self.audience]},
        }
        reviewed = self._call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body)
        return (reviewed or {}).get("status") or {}

    def review(self, token: str, status: Mapping[str, Any] | None = None) -> PodIdentity:
        status = self._review(token) if status is None else status
        identity = identity_from_review(status, self.audience)
        if self.namespaces and identity.namespace not in self.namespaces:
            raise Refused(f"namespace {identity.namespace} is not served by this relay")
        return identity

    def bind(self, token: str, login: str = "") -> Run:
        """The run the token's pod belongs to (or the operator's owner notice the login names),
        or Refused saying why it is none."""
        status = self._review(token)
        if self.operator_account and service_account_of(status) == self.operator_account:
            return self._notice(status, login)
        who = self.review(token, status)
        ns = who.namespace
        pod = self._get(f"/api/v1/namespaces/{ns}/pods/{who.pod}")
        if pod is None or pod["metadata"].get("uid") != who.pod_uid:
            raise Refused(f"pod {ns}/{who.pod} of the token is gone")
        job_ref = check_owner(pod, {"Job": "batch/v1"})
        job_path = f"/apis/batch/v1/namespaces/{ns}/jobs/{job_ref['name']}"
        job = check_uid(self._get(job_path), job_ref)
        owner = check_owner(job, JOB_OWNERS)
        if owner["kind"] == "CronJob":
            path = f"/apis/batch/v1/namespaces/{ns}/cronjobs/{owner['name']}"
            cronjob = check_uid(self._get(path), owner)
            owner = check_owner(cronjob, {models.KIND: REPORT_API_VERSION})
        report = check_uid(self.report(ns, owner["name"]), owner)
        return run_of(job, report)

    def _notice(self, status: Mapping[str, Any], login: str) -> Run:
        """The operator's own token: the audience checked, the report read by name, and only
        its admitted spec.owners will be accepted (policy.admitted)."""
        if self.audience not in (status.get("audiences") or ()):
            raise Refused(f"the token is not for audience {self.audience}")
        namespace, name, notice_id = notice_target(login)
        if self.namespaces and namespace not in self.namespaces:
            raise Refused(f"namespace {namespace} is not served by this relay")
        report = self.report(namespace, name)
        if report is None:
            raise Refused(f"report {namespace}/{name} is gone")
        return notice_run(report, notice_id)

    def report(self, namespace: str, name: str) -> dict[str, Any] | None:
        path = f"/apis/{REPORT_API_VERSION}/namespaces/{namespace}/{models.PLURAL}/{name}"
        return self._get(path)

    def groups(self, namespace: str, report: Mapping[str, Any]) -> dict[str, Any]:
        """name -> the live RecipientGroup (None when it does not exist) of each @name the
        report's recipients hold."""
        names = named((report.get("spec") or {}).get("recipients"))
        base = f"/apis/{REPORT_API_VERSION}/namespaces/{namespace}/{models.GROUP_PLURAL}"
        return {name: self._get(f"{base}/{name}") for name in names}

    def _get(self, path: str) -> dict[str, Any] | None:
        return self._call("GET", path)

    def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
        """Raw JSON, so objects keep the API's field names; None for 404."""
        try:
            response = self.api.call_api(
                *self.api.param_serialize(
                    method,
                    path,
                    body=body,
                    header_params=_JSON,
                    auth_settings=["BearerToken"],
                )
            )
            response.read()
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        if response.status == 404:
            return None
        if response.status >= 300:
            raise ApiException(status=response.status, reason=str(response.reason))
        return json.loads(response.data)


_JSON = {"Accept": "application/json", "Content-Type": "application/json"}
