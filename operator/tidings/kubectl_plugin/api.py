"""The plugin's API seam: the few calls it makes, as the user, on plain dicts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from tidings import groups, models
from tidings.contract import (
    MANAGED_SELECTOR,
    REACTIVATE_ANNOTATION,
    RUN_NOW_ANNOTATION,
    TEST_SEND_ANNOTATION,
    digest,
)

RUN_NOW = RUN_NOW_ANNOTATION
REACTIVATE = REACTIVATE_ANNOTATION
SEND_TEST = TEST_SEND_ANNOTATION  # controller/testsend.py: once per value
# ReportDelivery labels (docs/records.md): the name label is hashed past 63 characters, the uid
# label never is, so a report's records are selected by its uid.
RECORD_SELECTOR = f"{MANAGED_SELECTOR},app.kubernetes.io/component=delivery-record"
OUTPUT_FORMATS = ("wide", "yaml", "json")
FIRE_TIMES_SHOWN = 3


class PluginError(Exception):
    """A message for the user; exit code 1."""


# ----------------------------------------------------------------------------------- the API


class Api:
    """The few calls the plugin makes, on plain dicts (camelCase, as kubectl shows them)."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None):
        from kubernetes import client, config

        try:
            self.client = config.new_client_from_config(config_file=kubeconfig, context=context)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except config.ConfigException as error:
            raise PluginError(f"no usable kubeconfig: {error}") from None
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        self.namespace = namespace or chosen.get("context", {}).get("namespace") or "default"
        self.custom = client.CustomObjectsApi(self.client)
        self.core = client.CoreV1Api(self.client)
        self.batch = client.BatchV1Api(self.client)

    def _call(self, fn: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as error:
            if error.status == 404:
                raise PluginError(f"{what} not found in namespace {self.namespace}") from None
            if error.status == 403:
                raise PluginError(f"forbidden: {what}: {_reason(error)}") from None
            raise PluginError(f"{what}: HTTP {error.status}: {_reason(error)}") from None

    def report(self, name: str) -> dict[str, Any]:
        return self._call(
            self.custom.get_namespaced_custom_object,
            models.GROUP,
            models.VERSION,
            self.namespace,
            models.PLURAL,
            name,
            what=f"scheduledreport {name}",
        )

    def reports(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            found = self._call(
                self.custom.list_cluster_custom_object,
                models.GROUP,
                models.VERSION,
                models.PLURAL,
                what="scheduledreports",
            )
        else:
            found = self._call(
                self.custom.list_namespaced_custom_object,
                models.GROUP,
                models.VERSION,
                self.namespace,
                models.PLURAL,
                what="scheduledreports",
            )
        return found["items"]

    def patch_report(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(
            self.custom.patch_namespaced_custom_object,
            models.GROUP,
            models.VERSION,
            self.namespace,
            models.PLURAL,
            name,
            body,
            what=f"scheduledreport {name}",
        )

    def secret_value(self, name: str, key: str) -> bytes:
        secret = self._call(
            self.core.read_namespaced_secret, name, self.namespace, what=f"secret {name}"
        )
        if key not in (secret.data or {}):
            raise PluginError(f"secret {name} has no key {key!r}")
        return base64.b64decode(secret.data[key])

    def whoami(self) -> str:
        """The user the apiserver sees for this kubeconfig (SelfSubjectReview)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            found = client.AuthenticationV1Api(self.client).create_self_subject_review(review)
        except ApiException:
            return "(the user of your kubeconfig)"
        return f'"{found.status.user_info.username}"'

    def may_get(self, resource: str, name: str) -> bool:
        """SelfSubjectAccessReview: may this kubeconfig's user `get` that object?"""
        from kubernetes import client

        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": self.namespace,
                    "verb": "get",
                    "resource": resource,
                    "name": name,
                }
            },
        }
        found = self._call(
            client.AuthorizationV1Api(self.client).create_self_subject_access_review,
            review,
            what="selfsubjectaccessreview",
        )
        return bool(found.status.allowed)

    def configmap_value(self, name: str, key: str) -> str:
        found = self._call(
            self.core.read_namespaced_config_map, name, self.namespace, what=f"configmap {name}"
        )
        if key not in (found.data or {}):
            raise PluginError(f"configmap {name} has no key {key!r}")
        return found.data[key]

    def deliveries(self, all_namespaces: bool, selector: str) -> list[dict[str, Any]]:
        if all_namespaces:
            found = self._call(
                self.custom.list_cluster_custom_object,
                models.GROUP,
                models.VERSION,
                models.DELIVERY_PLURAL,
                label_selector=selector,
                what="reportdeliveries",
            )
        else:
            found = self._call(
                self.custom.list_namespaced_custom_object,
                models.GROUP,
                models.VERSION,
                self.namespace,
                models.DELIVERY_PLURAL,
                label_selector=selector,
                what="reportdeliveries",
            )
        return found["items"]

    def maybe_report(self, name: str) -> dict[str, Any] | None:
        """The report, or None when there is none of that name (deleted, say)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(
                models.GROUP, models.VERSION, self.namespace, models.PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise PluginError(
                f"scheduledreport {name}: HTTP {error.status}: {_reason(error)}"
            ) from None

    def events_for(self, name: str, reason: str) -> list[Any]:
        found = self._call(
            self.core.list_namespaced_event,
            self.namespace,
            field_selector=f"involvedObject.name={name},reason={reason}",
            what="events",
        )
        return sorted(found.items, key=lambda e: str(e.last_timestamp or e.event_time or ""))

    def group_members(self, report: Mapping[str, Any]) -> dict[str, list[str]]:
        """name -> members of each RecipientGroup the report names that exists."""
        from kubernetes.client.exceptions import ApiException

        found: dict[str, list[str]] = {}
        for name in groups.named((report.get("spec") or {}).get("recipients")):
            try:
                group = self.custom.get_namespaced_custom_object(
                    models.GROUP, models.VERSION, self.namespace, models.GROUP_PLURAL, name
                )
            except ApiException as error:
                if error.status == 404:
                    continue
                raise PluginError(
                    f"recipientgroup {name}: HTTP {error.status}: {_reason(error)}"
                ) from None
            found[name] = groups.members(group)
        return found

    def delivery(self, name: str) -> dict[str, Any]:
        return self._call(
            self.custom.get_namespaced_custom_object,
            models.GROUP,
            models.VERSION,
            self.namespace,
            models.DELIVERY_PLURAL,
            name,
            what=f"reportdelivery {name}",
        )

    def job(self, name: str) -> Any:
        """The Job of that name, or None."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.batch.read_namespaced_job(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise PluginError(f"job {name}: HTTP {error.status}: {_reason(error)}") from None

    def run_job(self, value: str) -> Any:
        """The Job the operator started for run-now=`value`, or None yet."""
        jobs = self._call(
            self.batch.list_namespaced_job,
            self.namespace,
            label_selector=MANAGED_SELECTOR,
            what="jobs",
        )
        # The operator marks a run-now Job with the digest of the value it acted on.
        for job in jobs.items:
            if (job.metadata.annotations or {}).get(RUN_NOW) == digest(value):
                return job
        return None


def _reason(error: Any) -> str:

    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(error.reason)
