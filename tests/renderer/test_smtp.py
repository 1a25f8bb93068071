"""Delivery against real SMTP servers on loopback (aiosmtpd): what arrives, and how each SMTP
fault maps to an outcome and an exit code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from tests.support.examples import EXAMPLE_AT, EXAMPLES, load_example
from tests.support.pki import Pki
from tests.support.renderer_cli import parse, pdf_text, send
from tests.support.renderer_reports import BCC, CC, TO, small_report
from tests.support.smtp_servers import Recorder, SmtpServer, start_smtp

from tidings.renderer import run as runner
from tidings.renderer.mail import settings_from_values
from tidings.renderer.result import EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE
from tidings.schedule import parse_rfc3339
from tidings_dev.procs import free_port


def test_delivered_message_headers_envelope_and_attachments(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, load_example("changes_summary"))
    assert code == EX_OK, result["error"]
    assert len(smtp.recorder.messages) == 1
    received = smtp.recorder.messages[0]
    example = load_example("changes_summary")["spec"]["recipients"]
    everyone = example["to"] + example["cc"] + example["bcc"]
    assert received.rcpt_tos == everyone  # Bcc is in the envelope...
    assert received.mail_from == "reports@example.com"
    message = parse(received.content)
    assert "Bcc" not in message  # ...and in no header
    assert example["bcc"][0] not in received.content.decode()
    assert message["To"] == ", ".join(example["to"])
    assert message["Cc"] == ", ".join(example["cc"])
    assert message["Subject"] == "[Tidings] Payments completed changes — weekly — 2024-05-13"
    assert message["Message-ID"] == result["messageId"]
    assert message["Message-ID"].startswith("<tidings.")
    assert message["Message-ID"].endswith("@example.com>")

    html = message.get_body(("html",)).get_content()
    assert "Payments completed changes — weekly" in html
    assert "Success rate" in html and "payments-weekly-2024-05-06_2024-05-12.pdf" in html
    text = message.get_body(("plain",)).get_content()
    assert "6 May 2024 \u2013 12 May 2024 (Europe/Berlin)" in text

    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert set(attachments) == {
        "payments-weekly-2024-05-06_2024-05-12.pdf",
        "payments-weekly-2024-05-06_2024-05-12.csv.gz",
    }
    pdf = attachments["payments-weekly-2024-05-06_2024-05-12.pdf"]
    assert pdf.get_content_type() == "application/pdf"
    pdf_flat = " ".join(pdf_text(pdf.get_content(), tmp_path).split())
    assert "Payments completed changes — weekly" in pdf_flat
    assert "CHG-1040" in pdf_flat and "6 May 2024 \u2013 12 May 2024" in pdf_flat

    assert result == {
        "outcome": "Delivered",
        "failure": None,
        "scheduledTime": "2024-05-13T07:00:00Z",
        "windowStart": "2024-05-05T22:00:00Z",
        "windowEnd": "2024-05-12T22:00:00Z",
        "recipientsAccepted": 3,
        "recipientsRejected": 0,
        "bytes": result["bytes"],
        "renderer": "pdf",
        "error": "",
        "messageId": message["Message-ID"],
        "attempts": 1,
        "rows": result["rows"],
        "pages": result["pages"],
        "attachments": [
            {
                "name": name,
                "bytes": len(attachments[name].get_content()),
                "sha256": hashlib.sha256(attachments[name].get_content()).hexdigest(),
            }
            for name in (
                "payments-weekly-2024-05-06_2024-05-12.pdf",
                "payments-weekly-2024-05-06_2024-05-12.csv.gz",
            )
        ],
        # What the delivery record lists: Bcc here, never in a header.
        "addresses": {
            name: {"accepted": example[name], "refused": {}} for name in ("to", "cc", "bcc")
        },
    }
    assert result["rows"] > 0 and result["pages"] >= 1
    # `bytes` is the encoded message as sent (the server may normalise the final line end).
    assert abs(result["bytes"] - len(received.content)) <= 2


def test_message_id_is_the_same_for_the_same_window(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = send(tmp_path, capsys, smtp)[1]["messageId"]
    second = send(tmp_path, capsys, smtp)[1]["messageId"]
    assert first == second
    other = small_report()
    other["metadata"]["uid"] = "another-uid"
    assert send(tmp_path, capsys, smtp, other)[1]["messageId"] != first


def test_only_bcc_recipients_get_undisclosed_to(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = send(tmp_path, capsys, smtp, small_report(recipients={"bcc": [BCC]}))
    assert code == EX_OK
    message = parse(smtp.recorder.messages[0].content)
    assert message["To"] == "undisclosed-recipients:;"
    assert BCC not in smtp.recorder.messages[0].content.decode()
    assert smtp.recorder.messages[0].rcpt_tos == [BCC]


def test_one_recipient_refused_others_delivered(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp.recorder.rcpt_replies[CC] = "550 5.1.1 No such user"
    code, result = send(tmp_path, capsys, smtp)
    assert code == EX_OK
    assert result["outcome"] == "Delivered"
    assert (result["recipientsAccepted"], result["recipientsRejected"]) == (2, 1)
    assert f"{CC}: 550 5.1.1 No such user" in result["error"]
    assert smtp.recorder.messages[0].rcpt_tos == [TO, BCC]


def test_every_recipient_refused_permanently_is_exit_69(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for address in (TO, CC, BCC):
        smtp.recorder.rcpt_replies[address] = "550 5.7.1 Relaying denied"
    code, result = send(tmp_path, capsys, smtp)
    assert code == EX_UNAVAILABLE
    assert (result["outcome"], result["failure"]) == ("Failed", "permanent")
    assert "every recipient was refused" in result["error"]
    assert "550 5.7.1 Relaying denied" in result["error"]
    assert smtp.recorder.messages == []
    # The refusals are counted and listed, and the Message-ID is known (the delivery record).
    assert (result["recipientsAccepted"], result["recipientsRejected"]) == (0, 3)
    assert result["addresses"]["bcc"] == {
        "accepted": [],
        "refused": {BCC: "550 5.7.1 Relaying denied"},
    }
    assert result["messageId"].startswith("<tidings.")


def test_temporary_refusal_is_exit_75(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for address in (TO, CC, BCC):
        smtp.recorder.rcpt_replies[address] = "451 4.7.1 Greylisted, try again later"
    code, result = send(tmp_path, capsys, smtp)
    assert code == EX_TEMPFAIL
    assert (result["outcome"], result["failure"]) == ("Failed", "transient")
    assert "451 4.7.1 Greylisted" in result["error"]


@pytest.mark.parametrize(
    ("reply", "code", "failure"),
    [
        ("451 4.3.0 Queue full", EX_TEMPFAIL, "transient"),
        ("554 5.6.0 Rejected", EX_UNAVAILABLE, "permanent"),
    ],
)
def test_data_refused_maps_by_code(
    smtp: SmtpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    reply: str,
    code: int,
    failure: str,
) -> None:
    smtp.recorder.data_reply = reply
    exit_code, result = send(tmp_path, capsys, smtp)
    assert exit_code == code
    assert result["failure"] == failure
    assert reply in result["error"]


def test_connection_refused_is_exit_75(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = send(tmp_path, capsys, None, port=free_port())
    assert code == EX_TEMPFAIL
    assert result["failure"] == "transient"
    assert "cannot connect to SMTP 127.0.0.1" in result["error"]
    assert result["renderer"] == "pdf"  # rendering happened; only delivery failed


def test_server_that_never_answers_times_out_with_exit_75(
    silent_server: tuple[str, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, None, port=silent_server[1])
    assert code == EX_TEMPFAIL
    assert "did not answer within 3s" in result["error"]


def test_tls_with_an_untrusted_certificate_is_exit_69(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    controller, server = start_smtp(Recorder(), ssl_context=pki.server_context())
    try:
        code, result = send(
            tmp_path, capsys, server, None, "--smtp-tls", "tls", "--smtp-ca-file", str(pki.other_ca)
        )
    finally:
        controller.stop()
    assert code == EX_UNAVAILABLE
    assert result["failure"] == "permanent"
    assert "TLS handshake with 127.0.0.1" in result["error"]
    assert "CERTIFICATE_VERIFY_FAILED" in result["error"]
    assert server.recorder.messages == []


def test_implicit_tls_against_a_plain_server_is_a_handshake_failure(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, None, "--smtp-tls", "tls")
    assert code == EX_UNAVAILABLE
    assert "TLS handshake" in result["error"]


def test_starttls_required_but_not_offered_never_sends_in_plain_text(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, None, "--smtp-tls", "starttls")
    assert code == EX_UNAVAILABLE
    assert "does not offer STARTTLS" in result["error"]
    assert smtp.recorder.messages == []


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right-password"
    return AuthResult(success=ok, handled=False)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_tls_modes_with_auth_deliver(
    mode: str, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kwargs: dict[str, Any] = {"authenticator": _authenticator}
    if mode == "starttls":
        kwargs.update(tls_context=pki.server_context(), require_starttls=True)
    else:
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the whole session is TLS anyway.
        kwargs.update(ssl_context=pki.server_context(), auth_require_tls=False)
    controller, server = start_smtp(Recorder(), **kwargs)
    password = tmp_path / "pw"
    password.write_text("right-password\n")
    try:
        code, result = send(
            tmp_path,
            capsys,
            server,
            None,
            "--smtp-tls",
            mode,
            "--smtp-ca-file",
            str(pki.ca),
            "--smtp-username",
            "reports",
            "--smtp-password-file",
            str(password),
        )
    finally:
        controller.stop()
    assert code == EX_OK, result["error"]
    assert len(server.recorder.messages) == 1


def test_auth_refused_is_exit_69_and_never_shows_the_password(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    controller, server = start_smtp(
        Recorder(),
        authenticator=_authenticator,
        auth_require_tls=True,
        tls_context=pki.server_context(),
    )
    password = tmp_path / "pw"
    password.write_text("wrong-password-123\n")
    try:
        code, result = send(
            tmp_path,
            capsys,
            server,
            None,
            "--smtp-tls",
            "starttls",
            "--smtp-ca-file",
            str(pki.ca),
            "--smtp-username",
            "reports",
            "--smtp-password-file",
            str(password),
        )
    finally:
        controller.stop()
    assert code == EX_UNAVAILABLE
    assert "authentication refused" in result["error"]
    assert "535" in result["error"]
    assert "wrong-password-123" not in json.dumps(result)


def test_size_guard_fails_before_sending(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, None, "--max-bytes", "20000")
    assert code == EX_UNAVAILABLE
    assert result["error"].startswith("AttachmentTooLarge: the encoded message is ")
    assert "over the size guard of 20,000 bytes" in result["error"]
    assert smtp.recorder.messages == []


def test_server_advertised_size_is_checked_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    controller, server = start_smtp(Recorder(), data_size_limit=15000)
    try:
        code, result = send(tmp_path, capsys, server)
    finally:
        controller.stop()
    assert code == EX_UNAVAILABLE
    assert "AttachmentTooLarge" in result["error"]
    assert "SIZE limit of 127.0.0.1" in result["error"]
    assert server.recorder.messages == []


class FlakyRecorder(Recorder):
    """Answers 451 to the first DATA, then accepts."""

    async def handle_DATA(self, server, session, envelope):
        if not getattr(self, "deferred", False):
            self.deferred = True
            return "451 4.3.2 Try again"
        return await super().handle_DATA(server, session, envelope)


def test_transient_failure_is_retried_within_the_run(tmp_path: Path) -> None:
    recorder = FlakyRecorder()
    controller, server = start_smtp(recorder)
    sleeps: list[float] = []
    try:
        report = runner.parse_report(small_report(failurePolicy={"retries": 2}))
        options = runner.Options(sleep=sleeps.append)
        settings = settings_from_values(
            {"host": server.host, "port": str(server.port), "from": "reports@example.com"}
        )
        result = runner.execute(report, parse_rfc3339(EXAMPLE_AT), options, lambda: settings)
    finally:
        controller.stop()
    assert result.outcome == "Delivered", result.error
    assert sleeps == [2.0]  # one backoff, then success
    assert len(recorder.messages) == 1


def test_permanent_failure_is_not_retried(smtp: SmtpServer) -> None:
    for address in (TO, CC, BCC):
        smtp.recorder.rcpt_replies[address] = "550 5.1.1 No such user"
    sleeps: list[float] = []
    report = runner.parse_report(small_report(failurePolicy={"retries": 4}))
    settings = settings_from_values(
        {"host": smtp.host, "port": str(smtp.port), "from": "reports@example.com"}
    )
    result = runner.execute(
        report, parse_rfc3339(EXAMPLE_AT), runner.Options(sleep=sleeps.append), lambda: settings
    )
    assert result.exit_code == EX_UNAVAILABLE
    assert sleeps == []


def test_example_reports_are_sendable(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The multi-page example goes out whole, its CSV attached."""
    code, result = send(tmp_path, capsys, smtp, load_example("audit_log"))
    assert code == EX_OK, result["error"]
    message = parse(smtp.recorder.messages[0].content)
    names = sorted(p.get_filename() for p in message.iter_attachments())
    assert names == [
        "cluster-audit-weekly-2024-05-06T0700_2024-05-13T0700.csv.gz",
        "cluster-audit-weekly-2024-05-06T0700_2024-05-13T0700.pdf",
    ]
    assert smtp.recorder.messages[0].rcpt_tos[-1] == "siem-archive@example.com"
    assert (EXAMPLES / "audit_log.yaml").exists()
