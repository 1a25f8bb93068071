"""`kubectl tidings`: day-2 work on ScheduledReports with the user's own kubeconfig and rights.

Installed as the `kubectl-tidings` console script, which kubectl finds on PATH as a plugin
(plugins/tidings.yaml is the krew manifest). Everything goes through the API as the user: the
plugin never needs more than the user's role (view for get/status/deliveries/preview, edit for
run, test, suspend, resume, reactivate, doctor's probes), and preview reads the referenced
Secrets with the user's access, checked first with a SelfSubjectAccessReview and named on stderr
with the user it runs as. Flags parse as kubectl's do: `-n`, `-A`, `--context`, `--kubeconfig`
and `-o wide|yaml|json` go before or after the subcommand.

Not here yet: `run NAME --at TIME` (a chosen past window) and `resend DELIVERY` (the recipients a
run did not reach): both need the operator to honour a new annotation first.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tidings
from tidings import display, models
from tidings.contract import (
    MANAGED_SELECTOR,
    REACTIVATE_ANNOTATION,
    REPORT_UID_LABEL,
    RUN_NOW_ANNOTATION,
    TEST_SEND_ANNOTATION,
    digest,
    handled,
)
from tidings.controller import permissions
from tidings.schedule import parse_rfc3339

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
    import json

    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(error.reason)


# ----------------------------------------------------------------------------------- output


def _ago_or_in(value: str | None, now: datetime) -> str:
    if not value:
        return "-"
    try:
        return display.relative(parse_rfc3339(value), now)
    except ValueError:
        return value


def _next(report: Mapping[str, Any], now: datetime) -> str:
    status = report.get("status") or {}
    if not status.get("nextSendAt"):
        return "-"
    moment = parse_rfc3339(status["nextSendAt"])
    zone_name = zone_of(report)
    return f"{display.relative(moment, now)} ({display.local_label(moment, zone_name)})"


def zone_of(report: Mapping[str, Any]) -> str:
    """The zone in effect: status.timeZone (a namespace default included), else the spec's."""
    zone = ((report.get("status") or {}).get("timeZone")) or (report.get("spec") or {}).get(
        "timeZone"
    )
    return zone or "UTC"


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def get_table(
    reports: Sequence[Mapping[str, Any]], now: datetime, with_namespace: bool, wide: bool = False
) -> str:
    """The columns of `kubectl get sr` (RECIPIENTS in the default view, the format beside the
    type), computed from the spec, so a report the operator has not reconciled shows them too."""
    header = ["NAME", "TYPE", "FORMAT", "PROGRAM", "SCHEDULE", "RECIPIENTS", "STATUS"]
    header += ["LAST SENT", "NEXT", "FAILURES"] + (["LAST ERROR"] if wide else [])
    rows = [(["NAMESPACE"] if with_namespace else []) + header]
    for report in sorted(
        reports, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"])
    ):
        spec, status = report.get("spec") or {}, report.get("status") or {}
        rows.append(
            ([report["metadata"]["namespace"]] if with_namespace else [])
            + [
                report["metadata"]["name"],
                spec.get("reportType", ""),
                display.delivery_format(spec),
                spec.get("program") or "-",
                f"{spec.get('schedule') or 'manual'} {zone_of(report)}",
                display.recipient_summary(spec),
                status.get("phase") or "Pending",
                _ago_or_in(status.get("lastSentAt"), now),
                _next(report, now),
                str(status.get("consecutiveFailures") or 0),
            ]
            + ([_error_cell(status)] if wide else [])
        )
    return table(rows)


def _error_cell(status: Mapping[str, Any]) -> str:
    error = " ".join(str(status.get("lastError") or "-").split())
    return error[:80] + ("…" if len(error) > 80 else "")


def _ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), {})


def status_text(report: Mapping[str, Any], now: datetime) -> str:
    meta, spec = report["metadata"], report.get("spec") or {}
    status = report.get("status") or {}
    zone_name = zone_of(report)
    ready = _ready_condition(status)
    lines = [
        f"Name:       {meta['namespace']}/{meta['name']}",
        f"Phase:      {status.get('phase') or 'Pending (not reconciled yet)'}",
    ]
    if ready:
        lines.append(
            f"Ready:      {ready.get('status')} ({ready.get('reason')}): {ready.get('message', '')}"
        )
    lines.append(f"Schedule:   {spec.get('schedule') or 'manual runs only'} in {zone_name}")
    history = status.get("history") or []
    if history:
        last = history[0]
        when = _ago_or_in(last.get("finishedAt"), now)
        line = f"Last run:   {last.get('outcome')} {when} (Job {last.get('jobName')})"
        if last.get("outcome") == models.Outcome.DELIVERED:
            line += f", {last.get('recipientsAccepted', 0)} recipient(s)"
        if last.get("ownerNotice"):
            line += f"; owners: {last['ownerNotice']}"
        lines.append(line)
    else:
        lines.append("Last run:   none yet")
    lines.append(f"Last sent:  {_ago_or_in(status.get('lastSentAt'), now)}")
    lines.append(f"Failures:   {status.get('consecutiveFailures') or 0} in a row")
    lines.append(f"Last error: {status.get('lastError') or '-'}")
    if owners := spec.get("owners"):
        notice = _ago_or_in(status.get("ownerNoticeSentAt"), now)
        lines.append(f"Owners:     {', '.join(owners)} (last notice: {notice})")
    if not spec.get("schedule"):
        lines.append("Next runs:  none (manual runs only: kubectl tidings run NAME)")
    elif status.get("phase") in (None, models.Phase.ACTIVE):
        lines.append(f"Next {FIRE_TIMES_SHOWN} runs ({zone_name}):")
        lines.extend(fire_lines(spec["schedule"], zone_name, now, FIRE_TIMES_SHOWN))
    else:
        lines.append(f"Next runs:  none while {status.get('phase')}")
    return "\n".join(lines)


def fire_lines(schedule: str, zone_name: str, now: datetime, count: int) -> list[str]:
    try:
        times = display.fire_times(schedule, zone_name, now, count)
    except ValueError as error:
        raise PluginError(str(error)) from None
    lines = []
    for fire in times:
        line = f"  {fire.local}  ({display.relative(fire.at, now)})"
        if fire.offset_change:
            line += f"  clocks change before this run: {fire.offset_change}"
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------- commands


def cmd_get(api: Api, args: argparse.Namespace, now: datetime) -> int:
    reports = [api.report(args.name)] if args.name else api.reports(args.all_namespaces)
    if not reports:
        where = "any namespace" if args.all_namespaces else f"namespace {api.namespace}"
        print(f"No ScheduledReports in {where}.", file=sys.stderr)
        return 0
    if args.output_format in ("yaml", "json"):
        print(_dump(reports if not args.name else reports[0], args.output_format))
        return 0
    print(get_table(reports, now, args.all_namespaces, wide=args.output_format == "wide"))
    return 0


def cmd_status(api: Api, args: argparse.Namespace, now: datetime) -> int:
    report = api.report(args.name)
    if args.output_format in ("yaml", "json"):
        print(_dump(report, args.output_format))
        return 0
    print(status_text(report, now))
    return 0


def cmd_schedule(api: Api | None, args: argparse.Namespace, now: datetime) -> int:
    lines = fire_lines(args.cron, args.tz, now, args.count)
    print(f"Next {args.count} runs of {args.cron!r} in {args.tz}:")
    print("\n".join(lines))
    return 0


def _annotate(api: Api, name: str, key: str, value: str) -> None:
    api.patch_report(name, {"metadata": {"annotations": {key: value}}})


def cmd_suspend(api: Api, args: argparse.Namespace, now: datetime) -> int:
    api.patch_report(args.name, {"spec": {"suspend": True}})
    print(f"scheduledreport {args.name} suspended (its CronJob is paused; nothing is lost)")
    return 0


def cmd_resume(api: Api, args: argparse.Namespace, now: datetime) -> int:
    api.patch_report(args.name, {"spec": {"suspend": False}})
    print(f"scheduledreport {args.name} resumed")
    return 0


def cmd_reactivate(api: Api, args: argparse.Namespace, now: datetime) -> int:
    phase = (api.report(args.name).get("status") or {}).get("phase")
    _annotate(api, args.name, REACTIVATE, str(int(now.timestamp())))
    note = "" if phase == models.Phase.DISABLED else f" (it was {phase or 'not reconciled'})"
    print(f"scheduledreport {args.name} reactivated: failure count reset{note}")
    return 0


def cmd_run(api: Api, args: argparse.Namespace, now: datetime) -> int:
    api.report(args.name)  # a clear "not found" before annotating
    value = str(time.time_ns())
    _annotate(api, args.name, RUN_NOW, value)
    print(f"scheduledreport {args.name}: run requested ({RUN_NOW}={value})")
    if not args.wait:
        return 0
    return follow_run(api, args.name, value, args.timeout)


def follow_run(api: Api, name: str, value: str, timeout: float) -> int:
    """Poll until the run's Job is recorded in status.history; a progress line on stderr."""
    deadline = time.monotonic() + timeout
    job_name = None
    shown = ""
    while time.monotonic() < deadline:
        status = api.report(name).get("status") or {}
        if job_name is None:
            if status.get("runNowHandled") == digest(value) and status.get("phase") == "Invalid":
                _progress("", shown)
                ready = _ready_condition(status)
                print(f"Not run: the spec is invalid: {ready.get('message', '')}")
                return 1
            job = api.run_job(value)
            job_name = job.metadata.name if job else None
            progress = "waiting for the operator to start the Job"
        if job_name:
            entry = next((h for h in status.get("history") or () if h["jobName"] == job_name), None)
            if entry is not None:
                _progress("", shown)
                return _outcome(entry)
            job = api.run_job(value)
            failed = (job.status.failed or 0) if job else 0
            active = (job.status.active or 0) if job else 0
            progress = f"Job {job_name}: " + ("running" if active else "starting")
            progress += f", attempt {failed + 1}" if failed else ""
        shown = _progress(progress, shown)
        time.sleep(1)
    _progress("", shown)
    print(
        f"gave up after {timeout:.0f}s: the run has not finished (Job {job_name or 'not started'})"
    )
    return 2


def _progress(text: str, shown: str) -> str:
    """Rewrite one progress line in place on a terminal; print changes only otherwise."""
    if sys.stderr.isatty():
        sys.stderr.write("\r" + text.ljust(len(shown)) + ("\r" if not text else ""))
    elif text and text != shown:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()
    return text


def _outcome(entry: Mapping[str, Any]) -> int:
    if entry.get("outcome") == models.Outcome.DELIVERED:
        accepted = entry.get("recipientsAccepted", 0)
        print(f"Delivered by Job {entry['jobName']} to {accepted} recipient(s)")
        return 0
    print(f"Failed: Job {entry['jobName']}: {entry.get('error') or 'no error recorded'}")
    return 1


def cmd_preview(api: Api, args: argparse.Namespace, now: datetime) -> int:
    from tidings.renderer import run as runner
    from tidings.renderer.result import TidingsError

    obj = api.report(args.name)
    try:
        report = models.ScheduledReport.model_validate(obj)
    except ValueError as error:
        raise PluginError(f"scheduledreport {args.name} does not parse: {error}") from None
    spec = report.spec
    # The source runs here, with the caller's own rights, on a spec someone else may have
    # written: check each reference before reading it, and say whose rights these are.
    user = api.whoami()
    for ref in permissions.references(obj.get("spec")):
        kind = ref.resource.removesuffix("s")
        if not api.may_get(ref.resource, ref.name):
            raise PluginError(
                f"forbidden: {kind} {ref.name}: user {user} cannot get {ref.resource} "
                f'"{ref.name}" in namespace "{api.namespace}" ({ref.path}); preview reads a '
                "report's Secrets and ConfigMaps with your own rights only"
            )
        print(f"preview reads {kind} {ref.name} ({ref.path}) as user {user}", file=sys.stderr)
    if spec.source.http is not None and spec.source.http.auth_secret_ref is not None:
        print(
            f"preview sends that Secret's value to {spec.source.http.url}: check the URL",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="tidings-preview-") as secret_dir:
        ref = None
        if spec.source.sql is not None:
            ref = spec.source.sql.connection_secret_ref
        elif spec.source.http is not None:
            ref = spec.source.http.auth_secret_ref
        if ref is not None:
            (Path(secret_dir) / "value").write_bytes(api.secret_value(ref.name, ref.key))
        template = None
        if spec.template_ref is not None:
            template = api.configmap_value(spec.template_ref.name, spec.template_ref.key)
        scheduled = parse_rfc3339(args.at) if args.at else now
        options = runner.Options(secret_dir=Path(secret_dir), custom_template=template, retries=0)
        try:
            deadline = time.monotonic() + spec.failure_policy.timeout_seconds
            rendered = runner.render(report, scheduled, options, deadline)
        except TidingsError as error:
            raise PluginError(f"preview of {args.name}: {error}") from None
    output: Path = args.output
    if rendered.renderer == "text" and output.suffix.lower() == ".pdf":
        output = output.with_suffix(".txt")
    output.write_bytes(rendered.document.content)
    print(
        f"wrote {output}: {rendered.report.type_label}, {rendered.report.total_rows} rows, "
        f"{rendered.report.window_label}"
    )
    return 0


def _dump(value: Any, output_format: str) -> str:
    """An object or a list of them as kubectl -o yaml/json shows it."""
    import yaml

    if isinstance(value, list):
        value = {"apiVersion": "v1", "kind": "List", "items": value}
    if output_format == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip("\n")


# ------------------------------------------------------------------------------- test sends


def parse_addresses(text: str) -> list[str]:
    """Addresses as people paste them (the seed's form): separated by commas or line breaks,
    spaces around them ignored, empty entries dropped."""
    return [part.strip() for part in re.split(r"[,\r\n]+", text) if part.strip()]


def one_address(text: str) -> str:
    """The one address of `test --to`: a test send goes to one person, so a list is refused."""
    addresses = parse_addresses(text)
    if len(addresses) != 1:
        got = ", ".join(addresses) if addresses else "none"
        raise PluginError(
            f"--to: a test send goes to exactly one address, got {len(addresses)} ({got}); "
            "run kubectl tidings test once per address"
        )
    return addresses[0]


def cmd_test(api: Api, args: argparse.Namespace, now: datetime) -> int:
    """tidings.dev/send-test=ADDR: one [TEST] mail to ADDR only (controller/testsend.py)."""
    address = one_address(args.to)
    report = api.report(args.name)
    status = report.get("status") or {}
    if (report["metadata"].get("annotations") or {}).get(SEND_TEST, "").strip() == address:
        # The same value acts once: remove it and wait for the operator to forget it first.
        api.patch_report(args.name, {"metadata": {"annotations": {SEND_TEST: None}}})

        def forgotten(status: Mapping[str, Any]) -> bool:
            return not handled(address, status.get("testSendHandled") or "")

        if not _wait_status(api, args.name, forgotten, 60):
            raise PluginError(
                f"the operator did not clear status.testSendHandled for {address} within 60s: "
                "is it running? (kubectl tidings doctor)"
            )
        status = api.report(args.name).get("status") or {}
    count = int(status.get("testSendCount") or 0)
    seen = {h.get("jobName") for h in status.get("history") or () if h.get("testRecipient")}
    _annotate(api, args.name, SEND_TEST, address)
    print(f"scheduledreport {args.name}: test send to {address} requested ({SEND_TEST})")
    if not args.wait:
        return 0
    return follow_test(api, args.name, address, count, seen, args.timeout)


def _wait_status(api: Api, name: str, done: Callable[[Mapping[str, Any]], bool], timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(api.report(name).get("status") or {}):
            return True
        time.sleep(1)
    return False


def follow_test(
    api: Api, name: str, address: str, count: int, seen: set[Any], timeout: float
) -> int:
    """Poll until the test's history entry (testRecipient) is there; the outcome decides."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        status = api.report(name).get("status") or {}
        if (
            handled(address, status.get("testSendHandled") or "")
            and int(status.get("testSendCount") or 0) == count
        ):
            _progress("", shown)  # handled without a Job: refused; its Event says why
            refusals = api.events_for(name, "TestSendRefused")
            for _ in range(5):
                if refusals:
                    break
                time.sleep(1)
                refusals = api.events_for(name, "TestSendRefused")
            why = refusals[-1].message if refusals else f"see kubectl describe sr {name}"
            print(why if why.startswith("Not sent") else f"Not sent: {why}")
            return 1
        for entry in status.get("history") or ():
            if entry.get("testRecipient") == address and entry.get("jobName") not in seen:
                _progress("", shown)
                if entry.get("outcome") == models.Outcome.DELIVERED:
                    print(f"Test sent by Job {entry['jobName']} to {address}")
                    return 0
                print(f"Test failed: Job {entry['jobName']}: {entry.get('error') or '-'}")
                return 1
        acted = handled(address, status.get("testSendHandled") or "")
        waiting = "the test Job" if acted else "the operator"
        shown = _progress(f"waiting for {waiting}", shown)
        time.sleep(1)
    _progress("", shown)
    print(f"gave up after {timeout:.0f}s: the test send to {address} has not finished")
    return 2


# ------------------------------------------------------------------------------- deliveries

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w`."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a number and one of s, m, h, d, w (e.g. 7d)"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _finished_at(record: Mapping[str, Any]) -> str:
    return str((record.get("spec") or {}).get("finishedAt") or "")


def records_of(api: Api, name: str | None, all_namespaces: bool) -> list[dict[str, Any]]:
    """A report's ReportDeliveries, newest first. By the report's uid label (its name label is a
    hash past 63 characters); a deleted report's by spec.report.name."""
    if name is None:
        found = api.deliveries(all_namespaces, RECORD_SELECTOR)
    else:
        report = api.maybe_report(name)
        if report is not None:
            uid = report["metadata"]["uid"]
            found = api.deliveries(False, f"{RECORD_SELECTOR},{REPORT_UID_LABEL}={uid}")
        else:
            every = api.deliveries(False, RECORD_SELECTOR)
            found = [
                r for r in every if (r.get("spec") or {}).get("report", {}).get("name") == name
            ]
    return sorted(found, key=_finished_at, reverse=True)


def _who(lists: Mapping[str, Any], kind: str) -> list[str]:
    out: list[str] = []
    for field in ("to", "cc", "bcc"):
        part = (lists.get(field) or {}).get(kind) or []
        out += [item if isinstance(item, str) else item.get("address", "") for item in part]
    return out


def deliveries_table(
    records: Sequence[Mapping[str, Any]],
    now: datetime,
    wide: bool,
    with_report: bool,
    with_namespace: bool,
) -> str:
    header = ["FINISHED", "WINDOW", "OUTCOME", "TRIGGER", "SENT TO", "REFUSED", "MESSAGE-ID"]
    header = (["REPORT"] if with_report else []) + header
    header = (["NAMESPACE"] if with_namespace else []) + header
    if wide:
        header += ["RECORD", "JOB", "REFUSALS", "ERROR"]
    rows = [header]
    for record in records:
        spec = record.get("spec") or {}
        lists = spec.get("recipients") or {}
        accepted = _who(lists, "accepted")
        count = int(lists.get("accepted") or 0)
        sent_to = accepted[0] if count == 1 and accepted else str(count)
        if wide and accepted:
            sent_to = ",".join(accepted)
        row = [
            _ago_or_in(spec.get("finishedAt"), now),
            spec.get("window") or "-",
            spec.get("outcome", "") + (f" ({spec['failure']})" if spec.get("failure") else ""),
            spec.get("trigger", ""),
            sent_to,
            str(lists.get("refused") or 0),
            spec.get("messageId") or "-",
        ]
        row = ([spec.get("report", {}).get("name", "")] if with_report else []) + row
        row = ([record["metadata"].get("namespace", "")] if with_namespace else []) + row
        if wide:
            refusals = []
            for field in ("to", "cc", "bcc"):
                for item in (lists.get(field) or {}).get("refused") or []:
                    refusals.append(f"{item.get('address')}: {item.get('reply', '')}")
            row += [
                record["metadata"]["name"],
                spec.get("jobName", ""),
                "; ".join(refusals) or "-",
                " ".join(str(spec.get("error") or "-").split())[:120],
            ]
        rows.append(row)
    return table(rows)


def cmd_deliveries(api: Api, args: argparse.Namespace, now: datetime) -> int:
    records = records_of(api, args.name, args.all_namespaces)
    if args.since is not None:
        cutoff = now - args.since
        records = [
            r for r in records if _finished_at(r) and parse_rfc3339(_finished_at(r)) >= cutoff
        ]
    if args.outcome:
        records = [r for r in records if (r.get("spec") or {}).get("outcome") == args.outcome]
    if args.output_format in ("yaml", "json"):
        print(_dump(records, args.output_format))
        return 0
    if not records:
        what = f"scheduledreport {args.name}" if args.name else "any report"
        where = "any namespace" if args.all_namespaces else f"namespace {api.namespace}"
        print(f"No delivery records for {what} in {where}.", file=sys.stderr)
        return 0
    wide = args.output_format == "wide"
    print(deliveries_table(records, now, wide, args.name is None, args.all_namespaces))
    return 0


# ----------------------------------------------------------------------------------- doctor

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
    checks.append(
        Check(
            "relay",
            SKIP,
            "not checked by this version: the relay's EHLO, "
            "STARTTLS and AUTH can only be tried by the operator, which holds its "
            "credentials; test it with kubectl tidings test NAME --to ADDR --wait",
        )
    )
    for check in checks:
        print(check.line())
    failed = [c.name for c in checks if c.state == FAIL]
    print(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "all checks passed")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------- parsing


EXAMPLES = """\
examples:
  kubectl tidings get -A
  kubectl tidings status payments-weekly -n team-payments
  kubectl tidings run payments-weekly --wait
  kubectl tidings test payments-weekly --to me@example.com --wait
  kubectl tidings deliveries payments-weekly --since 7d -o wide
  kubectl tidings suspend payments-weekly
  kubectl tidings resume payments-weekly
  kubectl tidings reactivate payments-weekly
  kubectl tidings preview payments-weekly -o preview.pdf
  kubectl tidings schedule "0 9 * * 1" --tz Europe/Berlin
  kubectl tidings doctor
"""


def _common(with_output: bool) -> argparse.ArgumentParser:
    """kubectl's flags, accepted before and after the subcommand. SUPPRESS keeps a subcommand's
    unset flag from overwriting one given before it."""
    common = argparse.ArgumentParser(add_help=False)
    hide = argparse.SUPPRESS
    common.add_argument(
        "-n", "--namespace", default=hide, help="namespace (default: the context's)"
    )
    common.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=hide,
        help="every namespace (get, deliveries)",
    )
    common.add_argument(
        "--kubeconfig", default=hide, help="kubeconfig file (default: $KUBECONFIG or ~/.kube)"
    )
    common.add_argument("--context", default=hide, help="kubeconfig context")
    if with_output:
        common.add_argument(
            "-o",
            "--output",
            dest="output_format",
            choices=OUTPUT_FORMATS,
            default=hide,
            help="wide (more columns), yaml or json",
        )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl tidings",
        description="Day-2 work on Tidings ScheduledReports.",
        parents=[_common(True)],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(
        namespace=None, all_namespaces=False, kubeconfig=None, context=None, output_format=None
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str,
        run: Callable[..., int],
        help_text: str,
        example: str,
        with_name: bool = True,
        output: bool = True,
    ) -> Any:
        command = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            parents=[_common(output)],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if with_name:
            command.add_argument("name", metavar="NAME")
        command.set_defaults(_run=run)
        return command

    get = add(
        "get",
        cmd_get,
        "list reports with NEXT relative and in each report's zone",
        "kubectl tidings get -A",
        False,
    )
    get.add_argument("name", metavar="NAME", nargs="?")
    add(
        "status",
        cmd_status,
        "phase, last run, last error and the next fire times",
        "kubectl tidings status payments-weekly -n team-payments",
    )
    run = add(
        "run",
        cmd_run,
        "run a report now (tidings.dev/run-now)",
        "kubectl tidings run payments-weekly --wait",
    )
    run.add_argument("--wait", action="store_true", help="follow the run to its outcome")
    run.add_argument("--timeout", type=float, default=900, help="seconds to wait (default 900)")
    test = add(
        "test",
        cmd_test,
        "send one [TEST] mail to one address only (tidings.dev/send-test)",
        "kubectl tidings test payments-weekly --to me@example.com --wait",
    )
    test.add_argument(
        "--to", required=True, metavar="ADDR", help="the one recipient (a list is refused)"
    )
    test.add_argument("--wait", action="store_true", help="follow the test to its outcome")
    test.add_argument("--timeout", type=float, default=900, help="seconds to wait (default 900)")
    deliveries = add(
        "deliveries",
        cmd_deliveries,
        "delivery records (ReportDelivery), newest first: window, outcome, trigger, "
        "who got it, refusals, Message-ID",
        "kubectl tidings deliveries payments-weekly --since 7d --outcome Failed -o wide",
        False,
    )
    deliveries.add_argument("name", metavar="NAME", nargs="?", help="one report's (default: all)")
    deliveries.add_argument(
        "--since",
        type=parse_duration,
        metavar="DURATION",
        help="finished within this long, e.g. 30m, 12h, 7d",
    )
    deliveries.add_argument("--outcome", choices=("Delivered", "Failed", "Skipped"))
    add(
        "suspend",
        cmd_suspend,
        "pause a report (spec.suspend: true)",
        "kubectl tidings suspend payments-weekly",
    )
    add("resume", cmd_resume, "resume a paused report", "kubectl tidings resume payments-weekly")
    add(
        "reactivate",
        cmd_reactivate,
        "make a Disabled report Active (tidings.dev/reactivate)",
        "kubectl tidings reactivate payments-weekly",
    )
    preview = add(
        "preview",
        cmd_preview,
        "render a report locally from its cluster spec",
        "kubectl tidings preview payments-weekly -o preview.pdf",
        output=False,
    )
    preview.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    preview.add_argument("--at", metavar="RFC3339", help="scheduled time (default: now)")
    schedule = add(
        "schedule",
        cmd_schedule,
        "the next fire times of a cron expression",
        'kubectl tidings schedule "0 9 * * 1" --tz Europe/Berlin',
        False,
    )
    schedule.add_argument("cron", metavar="CRON")
    schedule.add_argument("--tz", default="UTC", help="IANA time zone (default UTC)")
    schedule.add_argument("--count", type=int, default=5, help="how many (default 5)")
    doctor = add(
        "doctor",
        cmd_doctor,
        "check the installation: operator replicas and leader, version skew, webhook, "
        "CRDs, the renderer image in a real pod; exit 1 if a check fails",
        "kubectl tidings doctor -n team-payments",
        False,
    )
    doctor.add_argument(
        "--operator-namespace",
        default="tidings",
        metavar="NS",
        help="where the chart is installed (default tidings)",
    )
    doctor.add_argument("--image", help="renderer image to try (default: the operator's)")
    doctor.add_argument(
        "--image-pull-policy",
        choices=("Always", "IfNotPresent", "Never"),
        help="for the renderer pod (default: the operator's TIDINGS_RENDERER_PULL_POLICY)",
    )
    doctor.add_argument(
        "--renderer-timeout",
        type=float,
        default=180,
        metavar="SECONDS",
        help="how long the renderer pod may take (default 180)",
    )
    doctor.add_argument(
        "--skip-renderer", action="store_true", help="do not start the renderer pod"
    )
    return parser


def main(argv: Sequence[str] | None = None, now: datetime | None = None) -> int:
    args = build_parser().parse_args(argv)
    moment = now or datetime.now(UTC)
    try:
        api = (
            None
            if args.command == "schedule"
            else Api(args.kubeconfig, args.context, args.namespace)
        )
        return args._run(api, args, moment)
    except PluginError as error:
        print(f"kubectl tidings {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
