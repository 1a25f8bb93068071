"""The command line: kubectl's flags before or after the subcommand, one parser per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tidings.kubectl_plugin.api import OUTPUT_FORMATS, Api, PluginError
from tidings.kubectl_plugin.commands import (
    cmd_deliveries,
    cmd_get,
    cmd_preview,
    cmd_reactivate,
    cmd_resume,
    cmd_schedule,
    cmd_status,
    cmd_suspend,
    cmd_test,
    parse_duration,
)
from tidings.kubectl_plugin.doctor import cmd_doctor
from tidings.kubectl_plugin.windows import at_problem, cmd_resend, cmd_run_or_rerun

EXAMPLES = """\
examples:
  kubectl tidings get -A
  kubectl tidings status payments-weekly -n team-payments
  kubectl tidings run payments-weekly --wait
  kubectl tidings run payments-weekly --at 2024-05-13T08:00:00Z --wait
  kubectl tidings resend payments-weekly-r1a2b3c4d-5e6f7a8b --wait
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
        cmd_run_or_rerun,
        "run a report now (tidings.dev/run-now), or with --at re-run a past window "
        "(tidings.dev/run-at)",
        "kubectl tidings run payments-weekly --wait\n"
        "  kubectl tidings run payments-weekly --at 2024-05-13T08:00:00Z --wait",
    )
    run.add_argument(
        "--at",
        metavar="TIME",
        help="re-run the window of a run fired at TIME (RFC 3339, not in the future); its "
        "record's trigger is Rerun",
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
    resend = add(
        "resend",
        cmd_resend,
        "mail a delivery's window again, to the recipients it did not reach only "
        "(tidings.dev/resend); DELIVERY is the RECORD column of deliveries -o wide",
        "kubectl tidings resend payments-weekly-r1a2b3c4d-5e6f7a8b --wait",
        with_name=False,
    )
    resend.add_argument("delivery", metavar="DELIVERY", help="a ReportDelivery's name")
    resend.add_argument("--wait", action="store_true", help="follow the resend to its outcome")
    resend.add_argument("--timeout", type=float, default=900, help="seconds to wait (default 900)")
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
        "CRDs, the renderer image in a real pod, the delivery relay and its probe of the "
        "platform relay (EHLO, STARTTLS, AUTH); exit 1 if a check fails",
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
    if args.command == "run" and args.at is not None and (problem := at_problem(args.at, moment)):
        print(f"kubectl tidings run: {problem}", file=sys.stderr)
        return 2  # a usage error, told before any call to the cluster
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
