"""SMTP peers that misbehave, on loopback: a server that takes the whole message and hangs up
before answering, one that drips its greeting, temporary refusals of single recipients, and
configuration that must be refused before anything is sent."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from tests.support.examples import EXAMPLE_AT
from tests.support.renderer_cli import run_pod, send
from tests.support.renderer_reports import BCC, CC, TO, small_report
from tests.support.smtp_servers import FaultySmtp, Recorder, SmtpServer, start_smtp

from tidings.renderer import run as runner
from tidings.renderer.mail import settings_from_values
from tidings.renderer.result import EX_DATAERR, EX_OK, EX_TEMPFAIL, InputError
from tidings.schedule import parse_rfc3339


def execute(server_port: int, retries: int, sleeps: list[float]) -> runner.RunResult:
    report = runner.parse_report(small_report(failurePolicy={"retries": retries}))
    settings = settings_from_values(
        {"host": "127.0.0.1", "port": str(server_port), "from": "reports@example.com"}
    )
    options = runner.Options(sleep=sleeps.append)
    return runner.execute(report, parse_rfc3339(EXAMPLE_AT), options, lambda: settings)


@pytest.mark.parametrize("retries", [0, 2, 10])
def test_drop_after_data_gets_at_most_two_full_copies(
    drop_after_data: FaultySmtp, retries: int
) -> None:
    sleeps: list[float] = []
    result = execute(drop_after_data.port, retries, sleeps)
    # One resend when retries allow it, never a third copy however many retries remain.
    assert len(drop_after_data.copies) == (1 if retries == 0 else 2)
    assert result.outcome == "Failed" and result.exit_code == EX_TEMPFAIL
    assert result.error.startswith("delivery unconfirmed, not sent again:")
    assert "took the whole message, then closed the connection" in result.error
    assert "check whether it arrived" in result.error
    ids = {
        email.message_from_bytes(c, policy=policy.default)["Message-ID"]
        for c in drop_after_data.copies
    }
    assert ids == {result.message_id}  # the resend is the same message


def test_resend_after_an_unknown_outcome_that_is_then_accepted(tmp_path: Path) -> None:
    class DropOnce(Recorder):
        """Takes the first message, then the connection is cut before the reply."""

        async def handle_DATA(self, server, session, envelope):
            if not self.dropped:
                self.dropped = 1
                server.transport.close()
                return "250 never seen"
            return await super().handle_DATA(server, session, envelope)

    recorder = DropOnce()
    recorder.dropped = 0
    controller, server = start_smtp(recorder)
    try:
        sleeps: list[float] = []
        result = execute(server.port, 3, sleeps)
    finally:
        controller.stop()
    assert result.outcome == "Delivered" and result.exit_code == EX_OK
    assert (recorder.dropped, len(recorder.messages)) == (1, 1)  # the dropped copy, the resend
    assert "outcome unknown" in result.error and "one resend allowed" in result.error
    assert sleeps == [2.0]


def test_temporarily_refused_recipient_is_retried_alone_with_the_same_message_id(
    smtp: SmtpServer,
) -> None:
    class GreylistOnce(Recorder):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address == CC and not getattr(self, "greylisted", False):
                self.greylisted = True
                return "451 4.7.1 Greylisted, try again"
            return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    recorder = GreylistOnce()
    controller, server = start_smtp(recorder)
    try:
        result = execute(server.port, 2, [])
    finally:
        controller.stop()
    assert result.outcome == "Delivered" and result.error == ""
    assert (result.recipients_accepted, result.recipients_rejected) == (3, 0)
    first, second = recorder.messages
    assert first.rcpt_tos == [TO, BCC] and second.rcpt_tos == [CC]  # CC alone, once
    ids = {
        email.message_from_bytes(m.content, policy=policy.default)["Message-ID"]
        for m in (first, second)
    }
    assert ids == {result.message_id}


def test_still_refused_recipient_makes_the_run_partially_delivered(smtp: SmtpServer) -> None:
    smtp.recorder.rcpt_replies[CC] = "451 4.3.0 Mailbox busy"
    sleeps: list[float] = []
    result = execute(smtp.port, 2, sleeps)
    assert result.outcome == "Delivered" and result.exit_code == EX_OK
    assert result.error.startswith("partially delivered to 2 of 3; not delivered to: ")
    assert f"{CC}: 451 4.3.0 Mailbox busy" in result.error
    assert (result.recipients_accepted, result.recipients_rejected) == (2, 1)
    assert len(smtp.recorder.messages) == 1  # the others got it once, CC never
    assert sleeps == [2.0, 4.0]  # CC tried three times in all


def test_slow_drip_smtp_ends_at_the_deadline_with_a_result(
    drip_smtp: FaultySmtp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(
        tmp_path, capsys, None, small_report(failurePolicy={"retries": 3}), "--timeout", "3",
        "--smtp-timeout", "30", port=drip_smtp.port,
    )  # fmt: skip
    # Each byte comes well within the 30 s socket timeout: only the run's deadline ends it.
    assert code == EX_TEMPFAIL
    assert result["outcome"] == "Failed" and result["failure"] == "transient"
    assert result["error"].startswith("the run reached its deadline while sending over SMTP")


def test_pod_run_against_a_drip_writes_its_result_before_the_job_deadline(
    drip_smtp: FaultySmtp, tmp_path: Path
) -> None:
    report = small_report(failurePolicy={"retries": 4, "timeoutSeconds": 30})
    done, result = run_pod(tmp_path, report, drip_smtp.env(TIDINGS_SMTP_TIMEOUT="60"))
    assert done.returncode == EX_TEMPFAIL, done.stderr
    assert result is not None and result["failure"] == "transient"
    assert "the run reached its deadline while sending over SMTP" in result["error"]
    assert "timeoutSeconds 30s" in result["error"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("reports@example.com\r\nBcc: spy@example.net", "without control characters"),
        ("Tidings <réports@exämple.com>", "the address must be ASCII"),
    ],
)
def test_a_broken_from_in_the_namespace_secret_is_exit_65(
    smtp: SmtpServer, tmp_path: Path, value: str, message: str
) -> None:
    secret = tmp_path / "smtp-secret"
    secret.mkdir()
    (secret / "host").write_text("127.0.0.1")
    (secret / "port").write_text(str(smtp.port))
    (secret / "from").write_text(value)
    done, result = run_pod(tmp_path, small_report(), {"TIDINGS_SMTP_SECRET_DIR": str(secret)})
    assert done.returncode == EX_DATAERR, done.stderr
    assert result is not None and result["failure"] == "permanent"
    assert message in result["error"] and "namespace SMTP Secret" in result["error"]
    assert "Traceback" not in done.stderr
    assert smtp.recorder.messages == []


def test_a_display_name_may_be_non_ascii(smtp: SmtpServer, tmp_path: Path) -> None:
    done, result = run_pod(
        tmp_path, small_report(), smtp.env(TIDINGS_SMTP_FROM="Tïdings <reports@example.com>")
    )
    assert done.returncode == EX_OK, result
    assert "Tïdings" in str(
        email.message_from_bytes(smtp.recorder.messages[0].content, policy=policy.default)["From"]
    )


def test_auth_over_plain_text_is_refused_unless_allowed() -> None:
    values = {"host": "127.0.0.1", "from": "r@example.com", "username": "u", "password": "pw"}
    with pytest.raises(InputError, match="AUTH over a plain-text connection"):
        settings_from_values(values)
    assert settings_from_values({**values, "allow_plain_auth": "true"}).allow_plain_auth
    assert settings_from_values({**values, "tls": "starttls"}).username == "u"
