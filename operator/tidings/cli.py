"""The `tidings` command. Each subcommand lives in tidings.commands.<name> with `configure`
(arguments) and `run` (does the work, returns the exit code); heavy imports stay inside `run` so
`tidings render` starts fast."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from tidings import __version__

# name -> one-line help; the module tidings.commands.<name> implements it.
COMMANDS: dict[str, str] = {
    "validate": "check a ScheduledReport file with the same rules as admission",
    "render": "render a report to a PDF file; sends nothing",
    "send": "render a report and email it over SMTP",
    "run": "render and send inside a CronJob pod (reads the mounted spec, writes the result)",
    "crd": "print the CustomResourceDefinition generated from the models",
    "operator": "run the operator against the current kubeconfig",
    "relay": "run the delivery relay renderer pods submit their mail to",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tidings", description="Scheduled reports for Kubernetes."
    )
    parser.add_argument("--version", action="version", version=f"tidings {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"tidings.commands.{name}")
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)
