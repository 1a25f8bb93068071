"""`tidings crd`: print the CustomResourceDefinition generated from the models (or, with --docs,
the Markdown field reference). crds/ and docs/api.md in the repository are this output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--docs", action="store_true", help="print the API field reference (Markdown) instead"
    )
    parser.add_argument(
        "--kind",
        choices=("ScheduledReport", "ReportDelivery", "RecipientGroup"),
        default="ScheduledReport",
        help="which CustomResourceDefinition to print (default ScheduledReport)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="write to this file instead of standard output"
    )


def run(args: argparse.Namespace) -> int:
    from tidings import crdgen

    text = crdgen.api_reference() if args.docs else crdgen.crd_yaml(args.kind)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
