"""`kubectl tidings`: day-2 work on ScheduledReports with the user's own kubeconfig and rights.

Installed as the `kubectl-tidings` console script, which kubectl finds on PATH as a plugin
(plugins/tidings.yaml is the krew manifest). Everything goes through the API as the user: the
plugin never needs more than the user's role (view for get/status/preview, edit for run,
suspend, resume, reactivate), and preview reads the referenced Secrets with the user's access.

Not here yet: `test NAME --to ADDR` (needs the tidings.dev/send-test annotation in the operator)
and `deliveries NAME` (needs ReportDelivery records).
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tidings import display, models
from tidings.contract import MANAGED_SELECTOR, digest
from tidings.schedule import parse_rfc3339

RUN_NOW = f"{models.GROUP}/run-now"
REACTIVATE = f"{models.GROUP}/reactivate"
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

    def configmap_value(self, name: str, key: str) -> str:
        found = self._call(
            self.core.read_namespaced_config_map, name, self.namespace, what=f"configmap {name}"
        )
        if key not in (found.data or {}):
            raise PluginError(f"configmap {name} has no key {key!r}")
        return found.data[key]

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
    zone_name = (report.get("spec") or {}).get("timeZone") or "UTC"
    return f"{display.relative(moment, now)} ({display.local_label(moment, zone_name)})"


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def get_table(reports: Sequence[Mapping[str, Any]], now: datetime, with_namespace: bool) -> str:
    header = ["NAME", "TYPE", "SCHEDULE", "STATUS", "LAST SENT", "NEXT", "FAILURES"]
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
                f"{spec.get('schedule') or 'manual'} {spec.get('timeZone') or 'UTC'}",
                status.get("phase") or "Pending",
                _ago_or_in(status.get("lastSentAt"), now),
                _next(report, now),
                str(status.get("consecutiveFailures") or 0),
            ]
        )
    return table(rows)


def _ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), {})


def status_text(report: Mapping[str, Any], now: datetime) -> str:
    meta, spec = report["metadata"], report.get("spec") or {}
    status = report.get("status") or {}
    zone_name = spec.get("timeZone") or "UTC"
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
        lines.append(line)
    else:
        lines.append("Last run:   none yet")
    lines.append(f"Last sent:  {_ago_or_in(status.get('lastSentAt'), now)}")
    lines.append(f"Failures:   {status.get('consecutiveFailures') or 0} in a row")
    lines.append(f"Last error: {status.get('lastError') or '-'}")
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
    print(get_table(reports, now, args.all_namespaces))
    return 0


def cmd_status(api: Api, args: argparse.Namespace, now: datetime) -> int:
    print(status_text(api.report(args.name), now))
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


# ---------------------------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl tidings", description="Day-2 work on Tidings ScheduledReports."
    )
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube)")
    parser.add_argument("--context", help="kubeconfig context")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, run: Callable[..., int], help_text: str, with_name: bool = True) -> Any:
        command = sub.add_parser(name, help=help_text, description=help_text)
        if with_name:
            command.add_argument("name", metavar="NAME")
        command.set_defaults(_run=run)
        return command

    get = add("get", cmd_get, "list reports with NEXT relative and in each report's zone", False)
    get.add_argument("name", metavar="NAME", nargs="?")
    get.add_argument("-A", "--all-namespaces", action="store_true")
    add("status", cmd_status, "phase, last run, last error and the next fire times")
    run = add("run", cmd_run, "run a report now (tidings.dev/run-now)")
    run.add_argument("--wait", action="store_true", help="follow the run to its outcome")
    run.add_argument("--timeout", type=float, default=900, help="seconds to wait (default 900)")
    add("suspend", cmd_suspend, "pause a report (spec.suspend: true)")
    add("resume", cmd_resume, "resume a paused report")
    add("reactivate", cmd_reactivate, "make a Disabled report Active (tidings.dev/reactivate)")
    preview = add("preview", cmd_preview, "render a report locally from its cluster spec")
    preview.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    preview.add_argument("--at", metavar="RFC3339", help="scheduled time (default: now)")
    schedule = add("schedule", cmd_schedule, "the next fire times of a cron expression", False)
    schedule.add_argument("cron", metavar="CRON")
    schedule.add_argument("--tz", default="UTC", help="IANA time zone (default UTC)")
    schedule.add_argument("--count", type=int, default=5, help="how many (default 5)")
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
