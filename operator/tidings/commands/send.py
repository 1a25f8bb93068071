"""`tidings send REPORT.yaml`: render a report and email it over SMTP, from any machine.

SMTP settings come from the flags, else from the TIDINGS_SMTP_* environment (the same variables
the renderer pod gets). Prints the one-line JSON result; the exit code follows docs/renderer.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tidings.commands.render import add_common_arguments

SMTP_FLAGS = {
    "host": "TIDINGS_SMTP_HOST",
    "port": "TIDINGS_SMTP_PORT",
    "from": "TIDINGS_SMTP_FROM",
    "tls": "TIDINGS_SMTP_TLS",
    "username": "TIDINGS_SMTP_USERNAME",
    "timeout": "TIDINGS_SMTP_TIMEOUT",
    "ca_file": "TIDINGS_SMTP_CA_FILE",
}


def configure(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    smtp = parser.add_argument_group("SMTP (each defaults to its TIDINGS_SMTP_* variable)")
    smtp.add_argument("--smtp-host", metavar="HOST")
    smtp.add_argument("--smtp-port", metavar="PORT", help="default 25")
    smtp.add_argument("--smtp-from", metavar="ADDRESS", help="From: address")
    smtp.add_argument("--smtp-tls", choices=["none", "starttls", "tls"], help="default none")
    smtp.add_argument("--smtp-username", metavar="USER")
    smtp.add_argument(
        "--smtp-password-file",
        type=Path,
        metavar="FILE",
        help="file holding the password (default: $TIDINGS_SMTP_PASSWORD[_FILE])",
    )
    smtp.add_argument("--smtp-timeout", metavar="SECONDS", help="default 30")
    smtp.add_argument("--smtp-ca-file", metavar="FILE", help="CA bundle to verify the server")
    parser.add_argument(
        "--max-bytes",
        type=int,
        metavar="N",
        default=None,
        help="size guard for the encoded message (default: $TIDINGS_MAX_MESSAGE_BYTES or 10 MiB)",
    )
    parser.add_argument(
        "--result", metavar="FILE", default="/dev/null", help="also write the JSON result here"
    )
    parser.add_argument(
        "--groups",
        type=Path,
        metavar="FILE",
        help="RecipientGroup objects for the report's @name recipients (kubectl get rg -o yaml)",
    )
    parser.add_argument(
        "--test-to",
        metavar="ADDRESS",
        help='a test send: only to ADDRESS, subject prefixed "[TEST]" (as tidings.dev/send-test)',
    )


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    from tidings.commands.render import options_from_args, scheduled_from_args
    from tidings.contract import LAST_ROWS_DIGEST_ENV
    from tidings.renderer import run as runner
    from tidings.renderer.mail import SmtpSettings, environment_values, settings_from_values
    from tidings.renderer.result import InputError, TidingsError, failed

    # Quiet on success: the result line says it all. WeasyPrint logs its progress at INFO
    # ("Step 2 - Fetching and parsing CSS"); retries and fallbacks are warnings.
    logging.basicConfig(level=logging.WARNING, format="tidings: %(message)s")

    def smtp_settings() -> SmtpSettings:  # called only when there is something to send
        values = environment_values()
        for key in SMTP_FLAGS:
            flag = getattr(args, f"smtp_{key}", None)
            if flag is not None:
                values[key] = str(flag)
        if args.smtp_password_file is not None:
            try:
                values["password"] = args.smtp_password_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"--smtp-password-file: {error}") from None
            values["password"] = values["password"].rstrip("\r\n")
        return settings_from_values(values)

    try:
        report = runner.load_report(args.report)
        options = options_from_args(args)
        if args.test_to:
            from tidings.controller.testsend import annotation_problem

            if problem := annotation_problem(args.test_to):
                raise InputError(f"--test-to {args.test_to!r} {problem}")
            options.test_recipient = args.test_to
        else:
            from tidings.renderer.recipients import from_file

            report = from_file(report, args.groups)
        if args.max_bytes is not None:
            options.max_bytes = args.max_bytes
        elif os.environ.get("TIDINGS_MAX_MESSAGE_BYTES"):
            options.max_bytes = runner.int_setting(os.environ, "TIDINGS_MAX_MESSAGE_BYTES", 0)
        options.last_rows_digest = os.environ.get(LAST_ROWS_DIGEST_ENV) or None
        result = runner.execute(report, scheduled_from_args(args), options, smtp_settings)
    except TidingsError as error:
        result = failed(error)
    except Exception as error:  # anything unexpected still ends with a result line
        result = runner.internal_error(error, runner.known_secrets(os.environ))
    runner.write_result(result, args.result)
    return result.exit_code
