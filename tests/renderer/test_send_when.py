"""spec.delivery.sendWhen through `tidings send`, mailed to a real SMTP server on loopback: each
mode both ways, `changed` across two runs of the same window, and a skip as a Skipped result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.support.examples import EXAMPLE_AT, load_example
from tests.support.renderer_cli import send
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import SmtpServer

from tidings.contract import EX_OK, LAST_ROWS_DIGEST_ENV
from tidings.renderer import run as runner
from tidings.schedule import parse_rfc3339
from tidings.sendwhen import FIGURES, figure_names, figure_value, figure_values, is_digest

EMPTY_WINDOW = {"window": {"from": "2020-01-01", "to": "2020-01-08"}}


def report_when(send_when: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return small_report(delivery={"sendWhen": send_when}, **spec)


def assert_skipped(code: int, result: dict[str, Any], smtp: SmtpServer, why: str) -> None:
    assert code == EX_OK  # not a failure: the CronJob's Job completes
    assert result["outcome"] == "Skipped"
    assert result["failure"] is None and result["bytes"] == 0
    assert result["error"].startswith("nothing sent: ")
    assert why in result["error"], result["error"]
    assert smtp.recorder.messages == []


def test_changed_sends_two_identical_windows_once(
    smtp: SmtpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = report_when({"mode": "changed"})
    monkeypatch.delenv(LAST_ROWS_DIGEST_ENV, raising=False)
    code, first = send(tmp_path, capsys, smtp, report)  # no earlier record: it sends
    assert (code, first["outcome"]) == (EX_OK, "Delivered")
    assert is_digest(first["rowsDigest"])
    assert len(smtp.recorder.messages) == 1

    monkeypatch.setenv(LAST_ROWS_DIGEST_ENV, first["rowsDigest"])  # as the operator hands it
    code, second = send(tmp_path, capsys, smtp, report)
    assert (code, second["outcome"]) == (EX_OK, "Skipped")
    assert "the rows are the same as the last delivered run's" in second["error"]
    assert "spec.delivery.sendWhen changed" in second["error"]
    assert len(smtp.recorder.messages) == 1  # still the first one only

    rows = report["spec"]["source"]["inline"]["rows"]
    rows.append({**rows[0], "id": "CHG-8"})
    code, third = send(tmp_path, capsys, smtp, report)
    assert (code, third["outcome"]) == (EX_OK, "Delivered")
    assert third["rowsDigest"] != first["rowsDigest"]
    assert len(smtp.recorder.messages) == 2


def test_threshold_that_holds_sends(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_when({"mode": "threshold", "threshold": "completed >= 1 and rows < 5"})
    code, result = send(tmp_path, capsys, smtp, report)
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert len(smtp.recorder.messages) == 1


def test_threshold_that_does_not_hold_is_skipped_with_the_figures(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_when({"mode": "threshold", "threshold": "failedOrRolledBack > 0 or rows > 1"})
    code, result = send(tmp_path, capsys, smtp, report)
    assert_skipped(
        code,
        result,
        smtp,
        "threshold failedOrRolledBack > 0 or rows > 1 is false (failedOrRolledBack 0, rows 1)",
    )


def test_empty_sends_an_empty_window(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(
        tmp_path, capsys, smtp, report_when({"mode": "empty"}, filters=EMPTY_WINDOW)
    )
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert result["rows"] == 0
    assert len(smtp.recorder.messages) == 1


def test_empty_skips_a_window_with_rows(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(tmp_path, capsys, smtp, report_when({"mode": "empty"}))
    assert_skipped(code, result, smtp, "the window has 1 row(s); only an empty one is sent")


def test_non_empty_skips_an_empty_window_as_skip_if_empty_did(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_when({"mode": "nonEmpty"}, filters=EMPTY_WINDOW)
    code, result = send(tmp_path, capsys, smtp, report)
    assert_skipped(code, result, smtp, "(spec.delivery.sendWhen nonEmpty)")


def test_a_test_send_goes_out_whatever_send_when_says(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_when({"mode": "threshold", "threshold": "rows > 100"})
    code, result = send(tmp_path, capsys, smtp, report, "--test-to", "tester@example.com")
    assert (code, result["outcome"]) == (EX_OK, "Delivered")
    assert len(smtp.recorder.messages) == 1


def test_a_bad_threshold_in_a_file_is_an_input_error_naming_the_field(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = send(
        tmp_path, capsys, smtp, report_when({"mode": "threshold", "threshold": "x"})
    )
    assert code == 65
    assert "spec.delivery.sendWhen.threshold" in result["error"]
    assert smtp.recorder.messages == []


@pytest.mark.parametrize("report_type", sorted(FIGURES))
def test_every_named_figure_is_a_numeric_card_of_its_type(report_type: str) -> None:
    """The names a threshold may use (documented in the CRD) read real KPI cards: each label is
    rendered by the example report of its type and reads as a number there."""
    sr = runner.parse_report(load_example(report_type))
    rendered = runner.render(
        sr,
        parse_rfc3339(EXAMPLE_AT),
        runner.Options(retries=0, force_text="figures only"),
        time.monotonic() + 120,
    )
    shown = {f.label: f.value for f in rendered.report.figures}
    assert rendered.rows > 0
    for card in FIGURES[report_type]:
        if card.absent_is_zero and card.label not in shown:
            continue
        assert card.label in shown, (card, sorted(shown))
        assert figure_value(shown[card.label]) is not None, (card, shown[card.label])
    values = figure_values(report_type, rendered.rows, shown.items())
    assert values["rows"] == rendered.rows
    assert set(values) == set(figure_names(report_type))


def test_the_channel_page_lists_every_types_figures() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "channels.md").read_text("utf-8")
    for report_type, cards in FIGURES.items():
        named = ", ".join(["`rows`", *(f"`{c.name}` ({c.label})" for c in cards)])
        assert f"| `{report_type}` | {named} |" in page, report_type
