"""`tidings run`: the renderer pod's entrypoint (the run contract in docs/renderer.md).

Reads the report object from $TIDINGS_REPORT_FILE, the scheduled time from
$TIDINGS_SCHEDULED_TIME or the Job name, the source secret, custom template and SMTP settings
from their mounts and environment; renders, sends, writes one JSON line to $TIDINGS_RESULT_PATH
(default /dev/termination-log) and exits with a sysexits code the operator understands.
"""

from __future__ import annotations

import argparse

DEFAULT_REPORT_FILE = "/etc/tidings/report/report.yaml"
DEFAULT_TEMPLATE_DIR = "/etc/tidings/template"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Configuration comes from the environment and mounted files only."


def run(args: argparse.Namespace) -> int:
    import logging
    import os
    from datetime import UTC, datetime
    from pathlib import Path

    from tidings import groups
    from tidings.contract import EX_TEMPFAIL, LAST_ROWS_DIGEST_ENV
    from tidings.renderer import recipients
    from tidings.renderer import run as runner
    from tidings.renderer.deadline import hard_limit, watchdog
    from tidings.renderer.mail import settings_from_environment
    from tidings.renderer.result import InputError, RunTimedOut, TidingsError, failed
    from tidings.renderer.sources import secret_dir

    logging.basicConfig(level=logging.INFO, format="tidings: %(levelname)s %(message)s")
    env = os.environ
    try:
        try:
            report = runner.load_report(Path(env.get("TIDINGS_REPORT_FILE") or DEFAULT_REPORT_FILE))
            if not env.get("TIDINGS_TEST_RECIPIENT"):  # a test send goes to the tester only
                groups_dir = Path(env.get("TIDINGS_RECIPIENTS_DIR") or groups.MOUNT_PATH)
                report = recipients.resolve(report, groups_dir)
            limit = report.spec.failure_policy.timeout_seconds
            stuck = RunTimedOut(
                f"the run did not stop at its deadline and was ended (failurePolicy."
                f"timeoutSeconds {limit}s); the message may or may not have been sent"
            )
            watchdog(hard_limit(limit), lambda: runner.write_result(failed(stuck)), EX_TEMPFAIL)
            template = None
            if report.spec.template_ref is not None:
                path = Path(env.get("TIDINGS_TEMPLATE_DIR") or DEFAULT_TEMPLATE_DIR)
                path = path / "template.html.j2"
                try:
                    template = path.read_text(encoding="utf-8")
                except OSError:
                    raise InputError(
                        f"spec.templateRef: no template mounted at {path} (does ConfigMap "
                        f"{report.spec.template_ref.name} have key {report.spec.template_ref.key}?)"
                    ) from None
            logo = env.get("TIDINGS_LOGO_FILE")
            brand = runner.branding_from_environment(env)
            options = runner.Options(
                secret_dir=secret_dir(),
                custom_template=template,
                logo=runner.logo_data_uri(Path(logo) if logo else None),
                branding=brand,
                max_pdf_rows=brand.max_pdf_rows,
                test_recipient=env.get("TIDINGS_TEST_RECIPIENT") or None,
                last_rows_digest=env.get(LAST_ROWS_DIGEST_ENV) or None,
                resend_to=runner.resend_list(env),
                max_bytes=runner.int_setting(
                    env, "TIDINGS_MAX_MESSAGE_BYTES", runner.DEFAULT_MAX_BYTES
                ),
            )
            scheduled = runner.scheduled_time(env, datetime.now(UTC))
            result = runner.execute(report, scheduled, options, settings_from_environment)
        except TidingsError as error:
            result = failed(error)
    except Exception as error:  # anything unexpected still ends with a result line
        result = runner.internal_error(error, runner.known_secrets(env))
    runner.write_result(result)
    return result.exit_code
