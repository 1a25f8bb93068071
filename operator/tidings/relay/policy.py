"""Pure relay decisions: who a TokenReview names, which run a Job is, and which recipients
that run's report admits. Labels and owner references of the pod and Job can be forged by a
namespace editor; what holds regardless is `admitted`: only addresses of the report's current,
admitted object, never anything the pod or the Job says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tidings import groups, models
from tidings.contract import (
    RESEND_OF_JOB_ANNOTATION,
    RESEND_TO_JOB_ANNOTATION,
    RUN_NOW_LABEL,
    SCHEDULED_TIMESTAMP_ANNOTATION,
)
from tidings.controller import testsend
from tidings.schedule import rfc3339, scheduled_time_from_job_name

AUDIENCE = "tidings.dev/relay"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
_SA_PREFIX = "system:serviceaccount:"
REPORT_API_VERSION = f"{models.GROUP}/{models.VERSION}"


class Refused(Exception):
    """Why the relay will not serve a pod or a recipient; the text goes into the SMTP reply, so
    it never quotes the token or the message."""


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    pod: str
    pod_uid: str
    service_account: str


def identity_from_review(status: Mapping[str, Any] | None, audience: str) -> PodIdentity:
    """The pod a reviewed token was minted for (status of a TokenReview, camelCase)."""
    status = status or {}
    if not status.get("authenticated"):
        # The apiserver reports a token for another audience as not authenticated.
        raise Refused(
            f"the token is not valid for audience {audience} (another audience, expired, "
            "revoked, or not from this cluster)"
        )
    if audience not in (status.get("audiences") or ()):
        raise Refused(f"the token is not for audience {audience}")
    user = status.get("user") or {}
    username = str(user.get("username") or "")
    if not username.startswith(_SA_PREFIX) or username.count(":") != 3:
        raise Refused("the token is not a service-account token")
    namespace, account = username.removeprefix(_SA_PREFIX).split(":")
    extra = user.get("extra") or {}
    pod = (extra.get(POD_NAME_EXTRA) or [""])[0]
    pod_uid = (extra.get(POD_UID_EXTRA) or [""])[0]
    if not pod or not pod_uid:
        raise Refused("the token is not bound to a pod (use the pod's projected relay token)")
    return PodIdentity(namespace, pod, pod_uid, account)


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference marked controller, if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((ref for ref in refs if ref.get("controller")), None)


JOB_OWNERS = {"CronJob": "batch/v1", models.KIND: REPORT_API_VERSION}


def check_owner(obj: Mapping[str, Any], kinds: Mapping[str, str]) -> Mapping[str, Any]:
    """The controller reference of `obj`, which must point at one of `kinds` (kind ->
    apiVersion)."""
    meta = obj.get("metadata") or {}
    ref = controller_of(obj)
    if ref is None or kinds.get(str(ref.get("kind"))) != ref.get("apiVersion"):
        wanted = " or ".join(kinds)
        raise Refused(f"{meta.get('name')} is not controlled by a {wanted}: not a report's run")
    return ref


def check_uid(obj: Mapping[str, Any] | None, ref: Mapping[str, Any]) -> Mapping[str, Any]:
    """`obj` as found by the name in `ref`, which must be the very object `ref` means."""
    if obj is None or (obj.get("metadata") or {}).get("uid") != ref.get("uid"):
        raise Refused(f"{ref.get('kind')} {ref.get('name')} with uid {ref.get('uid')} is gone")
    return obj


@dataclass(frozen=True)
class Run:
    """One run of a report, as its Job says: the dedupe key's parts."""

    namespace: str
    report: str
    report_uid: str
    job: str
    scheduled: str  # RFC 3339 UTC, "" when the Job does not say
    trigger: str  # schedule | run-now:<digest> | test:<job> | job:<job uid> | notice:<id>
    test: bool
    only: frozenset[str] | None = None  # a resend: at most these of the admitted
    owner_notice: bool = False  # the operator's notice to spec.owners (owners only)

    @property
    def key(self) -> str:
        return f"{self.report_uid}|{self.scheduled}|{self.trigger}"

    @property
    def where(self) -> str:
        return f"report {self.namespace}/{self.report}"


def run_of(job: Mapping[str, Any], report: Mapping[str, Any]) -> Run:
    """The run a Job (already bound to `report`) stands for. Every Job the CronJob controller
    starts for one slot has trigger `schedule` and that slot's time, so a second fire of the
    slot shares the key; run-now and test Jobs are keyed by their request, any other Job (an
    explicit `kubectl create job --from`) by itself."""
    meta = job.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    report_meta = report.get("metadata") or {}
    if testsend.ANNOTATION in annotations:
        trigger = f"test:{meta.get('name')}"
    elif annotations.get(RESEND_OF_JOB_ANNOTATION):
        # One key per resent record: a second resend of it reaches only whom the first did not.
        trigger = f"resend:{annotations[RESEND_OF_JOB_ANNOTATION]}"
    elif annotations.get(RUN_NOW_LABEL):
        trigger = f"run-now:{annotations[RUN_NOW_LABEL]}"
    elif annotations.get(SCHEDULED_TIMESTAMP_ANNOTATION):
        trigger = "schedule"
    else:
        trigger = f"job:{meta.get('uid')}"
    return Run(
        namespace=str(report_meta.get("namespace") or ""),
        report=str(report_meta.get("name") or ""),
        report_uid=str(report_meta.get("uid") or ""),
        job=str(meta.get("name") or ""),
        scheduled=_scheduled(job),
        trigger=trigger,
        test=testsend.ANNOTATION in annotations,
        only=_resend_to(annotations),
    )


def _resend_to(annotations: Mapping[str, Any]) -> frozenset[str] | None:
    """A resend Job's addresses (it can only narrow what the report admits), else None."""
    if not annotations.get(RESEND_OF_JOB_ANNOTATION):
        return None
    listed = str(annotations.get(RESEND_TO_JOB_ANNOTATION) or "").split(",")
    return frozenset(normalize(a) for a in listed if a.strip())


def _scheduled(job: Mapping[str, Any]) -> str:
    """The scheduled time as the renderer reads it: the CronJob controller's annotation, else
    TIDINGS_SCHEDULED_TIME in the pod template, else the minutes in the Job's name."""
    meta = job.get("metadata") or {}
    stamp = (meta.get("annotations") or {}).get(SCHEDULED_TIMESTAMP_ANNOTATION)
    if not stamp:
        template = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in template.get("containers") or []:
            for var in container.get("env") or []:
                if var.get("name") == "TIDINGS_SCHEDULED_TIME" and var.get("value"):
                    stamp = var["value"]
    if stamp:
        try:
            return rfc3339(datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC))
        except ValueError:
            return stamp
    from_name = scheduled_time_from_job_name(str(meta.get("name") or ""))
    return rfc3339(from_name) if from_name else ""


def normalize(address: str) -> str:
    """An address as compared: the domain is case-insensitive, the local part is not."""
    local, at, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else address.strip()


def admitted(
    report: Mapping[str, Any],
    run: Run,
    live_groups: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> dict[str, str]:
    """normalized address -> where it was admitted. A test Job admits the report's current
    send-test address only; any other Job the spec's to, cc and bcc, a @name there standing
    for the members of `live_groups[name]`: the RecipientGroup object as the relay itself read
    it (None or absent: it does not exist, and admits nobody). Never what the pod read."""
    if run.test:
        address = testsend.requested(report.get("metadata"))
        return {normalize(address): testsend.ANNOTATION_PATH} if address else {}
    if run.owner_notice:
        return admitted_owners(report)
    recipients = (report.get("spec") or {}).get("recipients") or {}
    found: dict[str, str] = {}
    for field in ("to", "cc", "bcc"):
        for entry in recipients.get(field) or ():
            name = groups.group_name(str(entry))
            if name is None:
                found.setdefault(normalize(str(entry)), f"spec.recipients.{field}")
                continue
            for address in groups.members((live_groups or {}).get(name)):
                found.setdefault(normalize(address), f"spec.recipients.{field} (@{name})")
    if run.only is not None:
        found = {a: where for a, where in found.items() if a in run.only}
    return found


def refusal(address: str, allowed: Mapping[str, str], run: Run) -> str | None:
    """Why `address` may not receive this run's mail, or None when it is admitted."""
    if normalize(address) in allowed:
        return None
    if run.test:
        return f"<{address}> is not the admitted test address of {run.where}"
    if run.owner_notice:
        return f"<{address}> is not in spec.owners of the admitted {run.where}"
    return f"<{address}> is not a recipient in the admitted spec of {run.where}"


# ------------------------------------------------------ the operator's notices to spec.owners

# The AUTH PLAIN login name the operator gives with its own relay token: which report the notice
# is about, and the notice's id (its dedupe key): owner-notice:<namespace>/<report>/<id>.
NOTICE_LOGIN_PREFIX = "owner-notice:"
_NOTICE_LOGIN = re.compile(r"^owner-notice:([a-z0-9.-]{1,63})/([a-z0-9.-]{1,253})/([!-~]{1,200})$")


def service_account_of(status: Mapping[str, Any] | None) -> str | None:
    """`namespace:name` of the service account an authenticated TokenReview names, else None."""
    status = status or {}
    username = str((status.get("user") or {}).get("username") or "")
    if not status.get("authenticated") or not username.startswith(_SA_PREFIX):
        return None
    return username.removeprefix(_SA_PREFIX)


def notice_target(login: str) -> tuple[str, str, str]:
    """(namespace, report, notice id) the operator's login names, or Refused."""
    match = _NOTICE_LOGIN.match(login)
    if not match:
        raise Refused("the operator's login must be owner-notice:<namespace>/<report>/<notice id>")
    return match[1], match[2], match[3]


def notice_run(report: Mapping[str, Any], notice_id: str) -> Run:
    """The operator's notice about `report`: owners only, keyed by the notice, so a resent
    notice is not forwarded twice."""
    meta = report.get("metadata") or {}
    return Run(
        namespace=str(meta.get("namespace") or ""),
        report=str(meta.get("name") or ""),
        report_uid=str(meta.get("uid") or ""),
        job=notice_id,
        scheduled="",
        trigger=f"notice:{notice_id}",
        test=False,
        owner_notice=True,
    )


def admitted_owners(report: Mapping[str, Any]) -> dict[str, str]:
    """normalized address -> spec.owners[i] of the report's admitted object."""
    owners = (report.get("spec") or {}).get("owners") or ()
    return {normalize(str(a)): f"spec.owners[{i}]" for i, a in enumerate(owners)}
