"""A test send (TIDINGS_TEST_RECIPIENT in the pod, `tidings send --test-to` on a laptop): one
message to that address only, "[TEST]" before the subject, its own Message-ID, and sent even
when skipIfEmpty would skip the window. Real SMTP server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.examples import load_example
from tests.support.renderer_cli import parse, run_pod, send
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import SmtpServer

from tidings.renderer.result import EX_DATAERR, EX_OK


def test_the_pod_sends_a_test_to_one_address_only(smtp: SmtpServer, tmp_path: Path) -> None:
    report = load_example("incidents_summary")
    env = smtp.env(
        TIDINGS_SCHEDULED_TIME="2024-05-13T09:00:00+02:00",
        TIDINGS_TEST_RECIPIENT="tester@example.com",
    )
    done, result = run_pod(tmp_path, report, env)
    assert done.returncode == EX_OK, done.stderr
    (received,) = smtp.recorder.messages
    assert received.rcpt_tos == ["tester@example.com"]  # nobody from the report's lists
    message = parse(received.content)
    assert message["To"] == "tester@example.com" and "Cc" not in message
    assert message["Subject"].startswith("[TEST] ")
    assert (result["recipientsAccepted"], result["outcome"]) == (1, "Delivered")

    # The real run for the same window has another Message-ID: clients never fold them.
    (tmp_path / "real").mkdir()
    done, real = run_pod(
        tmp_path / "real", report, smtp.env(TIDINGS_SCHEDULED_TIME="2024-05-13T09:00:00+02:00")
    )
    assert done.returncode == EX_OK
    assert real["messageId"] != result["messageId"]
    assert not parse(smtp.recorder.messages[-1].content)["Subject"].startswith("[TEST]")


def test_a_test_is_sent_even_when_skip_if_empty_would_skip(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = small_report(delivery={"skipIfEmpty": True})
    empty["spec"]["filters"] = {"window": {"from": "2020-01-01", "to": "2020-01-08"}}
    code, result = send(tmp_path, capsys, smtp, empty, "--test-to", "tester@example.com")
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    (received,) = smtp.recorder.messages
    assert received.rcpt_tos == ["tester@example.com"]
    assert "No data in this window" in parse(received.content).get_body(("plain",)).get_content()


def test_a_bad_test_address_is_refused_before_anything_is_sent(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, None, "--test-to", "a@b.example, c@d.example")
    assert code == EX_DATAERR
    assert result["error"].startswith("--test-to 'a@b.example, c@d.example' must be a bare")
    assert smtp.recorder.messages == []
