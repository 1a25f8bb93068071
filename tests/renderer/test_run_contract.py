"""`tidings run` as the CronJob pod runs it (a subprocess with the pod's environment and mounted
files), and the text fallback when WeasyPrint cannot be imported (a real ImportError)."""

from __future__ import annotations

import email
import json
import subprocess
from datetime import UTC, datetime
from email import policy
from pathlib import Path

from tests.support.examples import EXAMPLE_AT, EXAMPLES, load_example
from tests.support.renderer_cli import run_pod
from tests.support.smtp_servers import SmtpServer

from tidings.contract import RESULT_MAX_BYTES
from tidings.renderer.result import EX_DATAERR, EX_OK, EX_UNAVAILABLE
from tidings_dev.procs import free_port


def test_run_reads_the_contract_and_delivers(smtp: SmtpServer, tmp_path: Path) -> None:
    report = load_example("incidents_summary")
    report["metadata"]["uid"] = "5d1f4c2a-0000-4000-8000-000000000001"
    scheduled = datetime(2024, 5, 13, 7, 0, tzinfo=UTC)
    job = f"incidents-weekly-{int(scheduled.timestamp() // 60)}"  # as the CronJob names it
    done, result = run_pod(tmp_path, report, smtp.env(TIDINGS_JOB_NAME=job))
    assert done.returncode == EX_OK, done.stderr
    assert result is not None
    assert result["outcome"] == "Delivered"
    assert result["scheduledTime"] == "2024-05-13T07:00:00Z"
    assert (result["windowStart"], result["windowEnd"]) == (
        "2024-05-06T07:00:00Z",
        "2024-05-13T07:00:00Z",
    )
    assert result["recipientsAccepted"] == 2
    assert result["renderer"] == "pdf"
    assert json.loads(done.stdout.strip().splitlines()[-1]) == result  # also in the pod log
    assert "Fetching and parsing CSS" not in done.stderr  # WeasyPrint's progress stays quiet
    message = email.message_from_bytes(smtp.recorder.messages[0].content, policy=policy.default)
    assert message["Subject"] == "[Tidings] Production incidents — last 7 days — 2024-05-13"


def test_scheduled_time_variable_wins_over_the_job_name(smtp: SmtpServer, tmp_path: Path) -> None:
    done, result = run_pod(
        tmp_path,
        load_example("changes_summary"),
        smtp.env(TIDINGS_SCHEDULED_TIME=EXAMPLE_AT, TIDINGS_JOB_NAME="payments-weekly-run-x1"),
    )
    assert done.returncode == EX_OK, done.stderr
    assert result["scheduledTime"] == "2024-05-13T07:00:00Z"


def test_namespace_smtp_secret_replaces_the_platform_relay(
    smtp: SmtpServer, tmp_path: Path
) -> None:
    secret = tmp_path / "smtp"
    secret.mkdir()
    (secret / "host").write_text("127.0.0.1\n")
    (secret / "port").write_text(f"{smtp.port}\n")
    (secret / "from").write_text("team-payments@example.com\n")
    env = {
        "TIDINGS_SMTP_HOST": "127.0.0.1",  # the platform relay (nothing listens): must not be used
        "TIDINGS_SMTP_PORT": str(free_port()),
        "TIDINGS_SMTP_SECRET_DIR": str(secret),
        "TIDINGS_SCHEDULED_TIME": EXAMPLE_AT,
    }
    done, _ = run_pod(tmp_path, load_example("risk_report"), env)
    assert done.returncode == EX_OK, done.stderr
    assert smtp.recorder.messages[0].mail_from == "team-payments@example.com"


def test_invalid_spec_is_exit_65_listing_the_problems(smtp: SmtpServer, tmp_path: Path) -> None:
    report = load_example("risk_report")
    report["spec"]["recipients"]["to"] = ["not-an-address"]
    report["spec"]["timeZone"] = "Mars/Olympus"
    done, result = run_pod(tmp_path, report, smtp.env())
    assert done.returncode == EX_DATAERR
    assert (result["outcome"], result["failure"]) == ("Failed", "permanent")
    assert "spec.recipients.to[0]" in result["error"]
    assert "spec.timeZone" in result["error"]
    assert smtp.recorder.messages == []


def test_custom_template_is_mounted_and_sandboxed(smtp: SmtpServer, tmp_path: Path) -> None:
    template_dir = tmp_path / "template"
    template_dir.mkdir()
    (template_dir / "template.html.j2").write_text(
        '{% extends "base.html.j2" %}{% block lede %}<p>Custom intro for {{ report.name }}</p>'
        "{% endblock %}"
    )
    report = load_example("risk_report")
    report["spec"]["templateRef"] = {"name": "risk-template", "key": "template.html.j2"}
    env = smtp.env(TIDINGS_TEMPLATE_DIR=str(template_dir), TIDINGS_SCHEDULED_TIME=EXAMPLE_AT)
    done, _ = run_pod(tmp_path, report, env)
    assert done.returncode == EX_OK, done.stderr
    message = email.message_from_bytes(smtp.recorder.messages[0].content, policy=policy.default)
    pdf = next(message.iter_attachments()).get_content()
    path = tmp_path / "custom.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert "Custom intro for risk-register" in text


def test_missing_custom_template_is_exit_65(smtp: SmtpServer, tmp_path: Path) -> None:
    report = load_example("risk_report")
    report["spec"]["templateRef"] = {"name": "risk-template", "key": "template.html.j2"}
    done, result = run_pod(tmp_path, report, smtp.env(TIDINGS_TEMPLATE_DIR=str(tmp_path / "x")))
    assert done.returncode == EX_DATAERR
    assert "spec.templateRef: no template mounted at" in result["error"]


def test_result_line_fits_the_termination_log(tmp_path: Path, smtp: SmtpServer) -> None:
    report = load_example("risk_report")
    report["spec"]["recipients"]["to"] = [f"user{i}@example.com" for i in range(40)]
    for address in report["spec"]["recipients"]["to"]:
        smtp.recorder.rcpt_replies[address] = "550 5.1.1 " + "mailbox unavailable " * 6
    report["spec"]["recipients"]["cc"] = []
    report["spec"]["failurePolicy"] = {"retries": 0}
    done, _ = run_pod(tmp_path, report, smtp.env())
    line = (tmp_path / "termination-log").read_text().strip()
    assert len(line.encode()) <= RESULT_MAX_BYTES
    assert json.loads(line)["error"].endswith("…")
    assert done.returncode == 69


# -------------------------------------------------------------------------------- text fallback


def test_render_without_weasyprint_writes_text_with_a_banner(tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    done, _ = run_pod(
        tmp_path,
        load_example("changes_summary"),
        {},
        without_weasyprint=True,
        argv=("render", str(tmp_path / "report.yaml"), "-o", str(out), "--at", EXAMPLE_AT),
    )
    # Written, said on stderr, and not exit 0: a script must not take it for a PDF.
    assert done.returncode == EX_UNAVAILABLE, done.stderr
    assert f"writing the text fallback to {tmp_path / 'report.txt'}; exit 69" in done.stderr
    assert not out.exists()
    text = (tmp_path / "report.txt").read_text()
    assert text.startswith("=" * 78 + "\nNOTE: this report is plain text because the PDF renderer")
    assert "ModuleNotFoundError: import of weasyprint" in " ".join(text.split())
    assert "Payments completed changes — weekly" in text
    assert "6 May 2024 \u2013 12 May 2024 (Europe/Berlin)" in text
    assert "CHG-1040" in text and "Rotate payment gateway API keys" in text


def test_run_without_weasyprint_still_delivers_a_text_attachment(
    smtp: SmtpServer, tmp_path: Path
) -> None:
    done, result = run_pod(
        tmp_path,
        load_example("dora_snapshot"),
        smtp.env(TIDINGS_SCHEDULED_TIME=EXAMPLE_AT),
        without_weasyprint=True,
    )
    assert done.returncode == EX_OK, done.stderr
    assert result["outcome"] == "Delivered"
    assert result["renderer"] == "text"
    assert "PDF renderer unavailable" in done.stderr
    message = email.message_from_bytes(smtp.recorder.messages[0].content, policy=policy.default)
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "dora-weekly-2024-05-06_2024-05-12.txt"
    assert attachment.get_content_type() == "text/plain"
    body = attachment.get_content()
    assert body.startswith("=" * 78 + "\nNOTE: this report is plain text")
    assert "Deployment frequency" in body and "DEP-5301" in body


def test_examples_dir_is_what_the_tests_render() -> None:
    assert (EXAMPLES / "dora_snapshot.yaml").is_file()
