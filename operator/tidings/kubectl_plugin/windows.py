"""`run NAME --at TIME` and `resend DELIVERY`: a chosen window, through annotations the operator
acts on once per value (controller/reruns.py), so the plugin needs only the edit role. The
checks here are the operator's own (reruns.parse_run_at, reruns.plan_resend), run first so a
mistake is told at once; the operator checks again when it acts."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tidings.contract import RESEND_ANNOTATION, RUN_AT_ANNOTATION, digest
from tidings.controller import reruns
from tidings.kubectl_plugin.api import Api, PluginError
from tidings.kubectl_plugin.commands import _annotate, _outcome, _progress, cmd_run
from tidings.schedule import rfc3339


def at_problem(text: str, now: datetime) -> str | None:
    """What is wrong with `--at TEXT` (the operator's rule, the flag named), or None."""
    if len(text.split()) != 1:
        return f"--at: {text!r} is not {reruns.RULE}"
    try:
        reruns.parse_run_at(text, now)
    except ValueError as problem:
        return str(problem).replace(reruns.RUN_AT_PATH, "--at")
    return None


def cmd_run_or_rerun(api: Api, args: argparse.Namespace, now: datetime) -> int:
    """`run NAME` (now), or with `--at TIME` the window of a run fired at TIME."""
    if args.at is None:
        return cmd_run(api, args, now)
    if problem := at_problem(args.at, now):
        print(f"kubectl tidings run: {problem}", file=sys.stderr)
        return 2
    at = reruns.parse_run_at(args.at, now)
    report = api.report(args.name)
    value = f"{rfc3339(at)} {time.time_ns()}"  # the note makes each command a new request
    _annotate(api, args.name, RUN_AT_ANNOTATION, value)
    job = reruns.job_name(report["metadata"]["name"], "a", value)
    print(
        f"scheduledreport {args.name}: re-run requested for the window of a run at "
        f"{rfc3339(at)} ({RUN_AT_ANNOTATION}={value}; Job {job})"
    )
    if not args.wait:
        return 0
    return follow(api, args.name, value, job, "runAtHandled", "RunAtRefused", args.timeout)


def cmd_resend(api: Api, args: argparse.Namespace, now: datetime) -> int:
    """The window of a ReportDelivery again, to the recipients it did not reach only."""
    record = api.delivery(args.delivery)
    spec = record.get("spec") or {}
    name = str((spec.get("report") or {}).get("name") or "")
    report = api.maybe_report(name) if name else None
    if report is None:
        raise PluginError(f"reportdelivery {args.delivery}: its report {name!r} is gone")
    try:
        plan = reruns.plan_resend(report, record, args.delivery, api.group_members(report))
    except ValueError as problem:
        raise PluginError(str(problem).replace(f"{reruns.RESEND_PATH}: ", "")) from None
    value = f"{args.delivery} {time.time_ns()}"
    _annotate(api, name, RESEND_ANNOTATION, value)
    job = reruns.job_name(name, "s", value)
    print(
        f"scheduledreport {name}: resend of {args.delivery} ({spec.get('window') or '-'}) "
        f"requested, to {', '.join(plan.addresses)} only (Job {job})"
    )
    if not args.wait:
        return 0
    return follow(api, name, value, job, "resendHandled", "ResendRefused", args.timeout)


def follow(
    api: Api,
    name: str,
    value: str,
    job_name: str,
    handled_field: str,
    refused: str,
    timeout: float,
) -> int:
    """Poll until Job `job_name` is in status.history (its outcome), or the operator refused
    the value (handled, no Job: its Event of reason `refused` says why)."""
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        status: Mapping[str, Any] = api.report(name).get("status") or {}
        entry = next((h for h in status.get("history") or () if h["jobName"] == job_name), None)
        if entry is not None:
            _progress("", shown)
            return _outcome(entry)
        job = api.job(job_name)
        if job is None and status.get(handled_field) == digest(value):
            for reason in (refused, refused.replace("Refused", "Blocked")):
                # The operator names an Event after its value's digest and reason (writes.py).
                mine = f"{name[:200]}.{digest(f'{digest(value)}/{reason}')[7:23]}"
                found = [e for e in api.events_for(name, reason) if e.metadata.name == mine]
                if found:
                    _progress("", shown)
                    print(found[-1].message)
                    return 1
        progress = f"Job {job_name}: " + (
            "running" if job is not None and job.status.active else "starting"
        )
        if job is None:
            progress = "waiting for the operator to start the Job"
        shown = _progress(progress, shown)
        time.sleep(1)
    _progress("", shown)
    print(f"gave up after {timeout:.0f}s: Job {job_name} has not finished")
    return 2
