"""get, status, schedule, suspend, resume, reactivate, run, preview, test and deliveries."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tidings import display, models
from tidings.contract import (
    REPORT_UID_LABEL,
    digest,
    handled,
)
from tidings.controller import permissions
from tidings.kubectl_plugin.api import (
    FIRE_TIMES_SHOWN,
    REACTIVATE,
    RECORD_SELECTOR,
    RUN_NOW,
    SEND_TEST,
    Api,
    PluginError,
)
from tidings.schedule import parse_rfc3339

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
