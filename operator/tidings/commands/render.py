"""`tidings render REPORT.yaml -o out.pdf [--at TIME]`: render a report to a file; sends nothing.

Works without a cluster: inline rows need nothing else; sql/http sources read their secret value
from --secret-dir (a directory with a file `value`). Exit codes as in docs/renderer.md; without
WeasyPrint's native libraries it writes the text fallback and exits 69 (EX_UNAVAILABLE).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by `render` and `send`."""
    parser.add_argument("report", type=Path, metavar="REPORT.yaml", help="ScheduledReport file")
    parser.add_argument(
        "--at",
        metavar="RFC3339",
        help="scheduled time the window is computed from, e.g. 2024-05-13T09:00:00+02:00 "
        "(default: now)",
    )
    parser.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="custom Jinja2 template (what spec.templateRef points at in the cluster)",
    )
    parser.add_argument(
        "--secret-dir",
        type=Path,
        metavar="DIR",
        help="directory whose file `value` holds the sql URL or http Authorization header "
        "(default: $TIDINGS_SOURCE_SECRET_DIR or /etc/tidings/source)",
    )
    parser.add_argument(
        "--logo",
        type=Path,
        metavar="FILE",
        default=os.environ.get("TIDINGS_LOGO_FILE") or None,
        help="PNG, JPEG, GIF or SVG shown in the header (default: $TIDINGS_LOGO_FILE)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=None,
        help="deadline for the whole run (default: from spec.failurePolicy.timeoutSeconds, "
        "less the reserve a pod keeps to report)",
    )
    parser.add_argument(
        "--max-pdf-rows",
        type=int,
        metavar="N",
        default=None,
        help="detail rows shown in the PDF; the CSV attachment always has all "
        "(default: the branding's maxPdfRows, $TIDINGS_MAX_PDF_ROWS or 500)",
    )


def options_from_args(args: argparse.Namespace) -> Any:
    from dataclasses import replace

    from tidings.renderer.result import InputError
    from tidings.renderer.run import Options, branding_from_environment, logo_data_uri

    template = None
    if args.template is not None:
        try:
            template = args.template.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read template {args.template}: {error.strerror}") from None
    brand = branding_from_environment(os.environ)
    if args.logo:  # named on the command line: it beats the branding's logo
        brand = replace(brand, logo=None)
    max_rows = args.max_pdf_rows
    return Options(
        secret_dir=args.secret_dir,
        custom_template=template,
        logo=logo_data_uri(Path(args.logo) if args.logo else None),
        branding=brand,
        max_pdf_rows=brand.max_pdf_rows if max_rows is None else max_rows,
        timeout=args.timeout,
    )


def scheduled_from_args(args: argparse.Namespace) -> Any:
    from datetime import UTC, datetime

    from tidings.renderer.result import InputError
    from tidings.schedule import parse_rfc3339

    if not args.at:
        return datetime.now(UTC)
    try:
        return parse_rfc3339(args.at)
    except ValueError as error:
        raise InputError(f"--at: {error}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="where to write the PDF"
    )
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the HTML page")
    parser.add_argument(
        "--csv", type=Path, metavar="FILE", help="also write every filtered row as CSV (gzip)"
    )
    parser.add_argument(
        "--xlsx", type=Path, metavar="FILE", help="also write every filtered row as a spreadsheet"
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from tidings.contract import EX_TEMPFAIL, EX_UNAVAILABLE
    from tidings.renderer import run as runner
    from tidings.renderer.deadline import DeadlineExceeded, enforced
    from tidings.renderer.result import TidingsError
    from tidings.schedule import zone

    logging.basicConfig(level=logging.WARNING, format="tidings: %(message)s")
    try:
        report = runner.load_report(args.report)
        options = options_from_args(args)
        options.retries = 0  # a preview should fail fast
        scheduled = scheduled_from_args(args)
        deadline = options.deadline_for(report)
        with enforced(deadline):
            rendered = runner.render(report, scheduled, options, deadline)
    except TidingsError as error:
        print(f"tidings render: {error}", file=sys.stderr)
        return error.exit_code
    except DeadlineExceeded:
        print(
            "tidings render: stopped at the deadline (--timeout or timeoutSeconds)", file=sys.stderr
        )
        return EX_TEMPFAIL
    output: Path = args.output
    fallback = rendered.renderer == "text"
    if fallback and output.suffix.lower() == ".pdf":
        output = output.with_suffix(".txt")
    if fallback:  # written, but not what was asked for: a script must not take it for a PDF
        reason = " ".join(str(rendered.fallback_reason).split())
        print(
            f"tidings render: PDF renderer unavailable ({reason}), writing the "
            f"text fallback to {output}; exit {EX_UNAVAILABLE}",
            file=sys.stderr,
        )
    assert rendered.document is not None  # a preview always renders the document
    output.write_bytes(rendered.document.content)
    if args.html:
        args.html.write_text(rendered.html, encoding="utf-8")
    for kind, path in (("csv", args.csv), ("xlsx", args.xlsx)):
        if path:
            tz = zone(report.spec.time_zone)
            path.write_bytes(runner.data_file(rendered.report, kind, path.name, tz).content)
    print(
        f"wrote {output}: {rendered.report.type_label}, {rendered.report.total_rows} rows, "
        f"{rendered.report.window_label}",
        file=sys.stderr,
    )
    return EX_UNAVAILABLE if fallback else 0
