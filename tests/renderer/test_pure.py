"""Unit tests of the pure parts: filters, per-type figures, charts, message building, the result
line, templates and the PDF fetcher."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.support.renderer_reports import sample

from tidings import models
from tidings.contract import RESULT_MAX_BYTES
from tidings.renderer import charts, reports, templating
from tidings.renderer.filters import apply_filters, check_columns, tags_of, to_datetime
from tidings.renderer.mail import Attachment, build_message, check_size, encode, message_id
from tidings.renderer.reports.types import dora_snapshot, executive_summary
from tidings.renderer.result import (
    AttachmentTooLarge,
    InputError,
    MissingColumn,
    RunResult,
    redact,
    sort_addresses,
)

BERLIN = ZoneInfo("Europe/Berlin")
WEEK = (datetime(2024, 5, 6, tzinfo=BERLIN), datetime(2024, 5, 13, tzinfo=BERLIN))
CTX = reports.Context(tz=BERLIN, start=WEEK[0], end=WEEK[1])


def build(report_type: str, rows: list[dict]) -> reports.Report:
    return reports.build_report(
        report_type=report_type,
        title="T",
        name="n",
        namespace="ns",
        rows=rows,
        ctx=CTX,
        generated_at=datetime(2024, 5, 13, 7, tzinfo=UTC),
        max_table_rows=100,
    )


def figures(report: reports.Report) -> dict[str, str]:
    return {f.label: f.value for f in report.figures}


# -------------------------------------------------------------------------------------- filters


def test_times_from_yaml_json_and_sql_normalise_to_the_zone() -> None:
    expected = datetime(2024, 5, 6, 10, tzinfo=BERLIN)
    assert to_datetime("2024-05-06T08:00:00Z", BERLIN) == expected
    assert to_datetime("2024-05-06 10:00", BERLIN) == expected  # naive: local wall time
    assert to_datetime(datetime(2024, 5, 6, 8, tzinfo=UTC), BERLIN) == expected
    assert to_datetime("2024-05-06", BERLIN) == datetime(2024, 5, 6, tzinfo=BERLIN)
    assert to_datetime(None, BERLIN) is None
    with pytest.raises(ValueError):
        to_datetime("next tuesday", BERLIN)


def test_tags_accept_lists_and_comma_separated_text() -> None:
    assert tags_of(["a", " b ", ""]) == ["a", "b"]
    assert tags_of("a, b,,c") == ["a", "b", "c"]
    assert tags_of(None) == []


def test_filters_window_status_tags_assignee_ignore_case() -> None:
    rows = [
        {
            "t": "2024-05-06T00:00:00+02:00",
            "status": "Completed",
            "tags": "Payments",
            "assignee": "Ann",
        },
        {
            "t": "2024-05-12T23:59:00+02:00",
            "status": "completed",
            "tags": ["db"],
            "assignee": "ann",
        },
        {"t": "2024-05-13T00:00:00+02:00", "status": "completed", "tags": [], "assignee": "ann"},
        {
            "t": "2024-05-08T12:00:00+02:00",
            "status": "failed",
            "tags": ["payments"],
            "assignee": "bo",
        },
    ]
    kept = apply_filters(rows, models.Filters(), WEEK, "t", BERLIN)
    assert kept == rows[:2] + rows[3:]  # end is exclusive
    f = models.Filters(status=["COMPLETED"], tags=["payments"], assignee=["ANN"])
    assert apply_filters(rows, f, WEEK, "t", BERLIN) == [rows[0]]


def test_filter_on_a_column_the_rows_lack_names_row_and_column() -> None:
    with pytest.raises(
        MissingColumn, match=r"filters\.assignee needs column\(s\) assignee, but row 0"
    ):
        apply_filters([{"t": "2024-05-07"}], models.Filters(assignee=["x"]), WEEK, None, BERLIN)
    with pytest.raises(MissingColumn, match="row 1 has only: id"):
        check_columns([{"id": 1, "title": "a"}, {"id": 2}], ["id", "title"], "reportType x")


def test_unparseable_time_names_row_and_column() -> None:
    with pytest.raises(InputError, match="row 0: t 'soon' is not an ISO 8601"):
        apply_filters([{"t": "soon"}], models.Filters(), WEEK, "t", BERLIN)


# ----------------------------------------------------------------------------------- per type


def test_dora_keys_from_deployments_and_incidents() -> None:
    rows = [
        {"kind": "deployment", "id": f"D{i}", "time": f"2024-05-{6 + i % 5:02d}T10:00:00+02:00",
         "committed_at": f"2024-05-{6 + i % 5:02d}T06:00:00+02:00", "failed": i == 0}
        for i in range(14)
    ] + [
        {"kind": "incident", "id": "I1", "time": "2024-05-07T10:00:00+02:00",
         "resolved_at": "2024-05-07T10:30:00+02:00", "caused_by": "D1"},
    ]  # fmt: skip
    report = build("dora_snapshot", rows)
    keys = {k.name: k for k in report.extra["dora_keys"]}
    assert keys["Deployment frequency"].value == "2.0 / day"
    assert keys["Deployment frequency"].level == "elite"
    assert keys["Lead time for changes"].value == "4.0 h"
    assert keys["Change failure rate"].value == "14%"  # D0 failed, D1 caused I1: 2 of 14
    assert keys["Time to restore service"].value == "30 min"
    assert keys["Time to restore service"].level == "elite"


def test_dora_rejects_an_unknown_kind() -> None:
    with pytest.raises(InputError, match="row 0: kind 'build' must be deployment or incident"):
        build("dora_snapshot", [{"kind": "build", "id": "x", "time": "2024-05-07"}])


@pytest.mark.parametrize(
    ("metric", "value", "level"),
    [("frequency", 0.2, "high"), ("frequency", 0.01, "low"), ("lead_time", 200, "medium"),
     ("failure_rate", 0.5, "low"), ("restore", None, "n/a")],
)  # fmt: skip
def test_dora_levels(metric: str, value: float | None, level: str) -> None:
    assert dora_snapshot.dora_level(metric, value) == level


def test_risk_scores_and_ordering() -> None:
    rows = [
        {"id": "R1", "title": "a", "likelihood": 2, "impact": 2},
        {"id": "R2", "title": "b", "likelihood": "5", "impact": 4.0},
        {"id": "R3", "title": "c", "likelihood": 3, "impact": 4},
    ]
    report = build("risk_report", rows)
    assert [r["id"] for r in report.rows] == ["R2", "R3", "R1"]
    assert figures(report)["Critical"] == "1"
    score = [c.key for c in report.columns].index("score")
    assert report.table[0][score].text == "20 Critical"


@pytest.mark.parametrize("bad", [0, 6, "high", True, 2.5, None])
def test_risk_likelihood_must_be_one_to_five(bad: object) -> None:
    with pytest.raises(InputError, match=r"row 0: likelihood .* must be an integer from 1 to 5"):
        build("risk_report", [{"id": "R", "title": "t", "likelihood": bad, "impact": 3}])


def test_compliance_pass_fail_not_applicable_per_control() -> None:
    rows = [
        {"control": "C1", "title": "a", "status": "passed", "framework": "SOC 2"},
        {"control": "C2", "title": "b", "status": "FAIL", "framework": "SOC 2"},
        {"control": "C3", "title": "c", "status": "n/a", "framework": "ISO"},
        {"control": "C4", "title": "d", "status": "pass", "framework": "ISO"},
        {"control": "C5", "title": "e", "status": "maybe", "framework": "ISO"},
    ]
    report = build("compliance_readiness", rows)
    assert figures(report)["Readiness"] == "67%"
    assert figures(report)["Unknown status"] == "1"
    result = [c.key for c in report.columns].index("status")
    assert [r[result].text for r in report.table] == ["FAIL", "UNKNOWN", "PASS", "PASS", "N/A"]


def test_incidents_median_time_to_resolve_and_open_count() -> None:
    rows = [
        {"id": "1", "title": "a", "severity": "sev1", "status": "resolved",
         "opened_at": "2024-05-07T10:00:00Z", "resolved_at": "2024-05-07T11:00:00Z"},
        {"id": "2", "title": "b", "severity": "sev3", "status": "resolved",
         "opened_at": "2024-05-07T10:00:00Z", "resolved_at": "2024-05-07T13:00:00Z"},
        {"id": "3", "title": "c", "severity": "sev2", "status": "open",
         "opened_at": "2024-05-08T10:00:00Z"},
    ]  # fmt: skip
    values = figures(build("incidents_summary", rows))
    assert values["Median time to resolve"] == "2.0 h"
    assert values["Still open"] == "1"
    assert values["Critical / Sev1"] == "1"


def test_executive_change_respects_higher_is_better() -> None:
    assert executive_summary.metric_change(0, {"value": 90, "previous": 100}) == (-10.0, False)
    latency = {"value": 90, "previous": 100, "higher_is_better": False}
    assert executive_summary.metric_change(0, latency) == (-10.0, True)
    assert executive_summary.metric_change(0, {"value": 5}) == (None, None)
    with pytest.raises(InputError, match="row 3: value 'lots' is not a number"):
        executive_summary.metric_change(3, {"value": "lots", "previous": 1})


def test_findings_overdue_counts_open_past_due_at_window_end() -> None:
    rows = [
        {"id": "F1", "title": "a", "severity": "high", "status": "open", "due": "2024-05-01"},
        {"id": "F2", "title": "b", "severity": "low", "status": "remediated", "due": "2024-05-01"},
        {"id": "F3", "title": "c", "severity": "critical", "status": "open", "due": "2024-06-01"},
    ]
    report = build("audit_report", rows)
    assert figures(report)["Overdue"] == "1"
    assert [r["id"] for r in report.rows] == ["F3", "F1", "F2"]  # by severity


def test_window_label_shows_whole_days_inclusive_and_times_otherwise() -> None:
    assert reports.window_label(*WEEK, BERLIN) == "6 May 2024 \u2013 12 May 2024 (Europe/Berlin)"
    start = WEEK[0] + timedelta(hours=9)
    label = reports.window_label(start, WEEK[1] + timedelta(hours=9), BERLIN)
    assert label == "6 May 2024 09:00 \u2013 13 May 2024 09:00 (Europe/Berlin)"


def test_table_is_capped_but_every_row_is_kept_for_the_csv() -> None:
    rows = [{"a": i} for i in range(30)]
    report = reports.build_report(
        report_type="custom_query", title="T", name="n", namespace="ns", rows=rows, ctx=CTX,
        generated_at=datetime(2024, 5, 13, tzinfo=UTC), max_table_rows=10,
    )  # fmt: skip
    assert (report.shown_rows, report.total_rows) == (10, 30)


# --------------------------------------------------------------------------------------- charts


def test_chart_labels_are_escaped_and_empty_charts_say_so() -> None:
    svg = charts.stacked_bars(["<script>"], [charts.Series("a&b", [1], charts.GOOD)], title='x"y')
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    assert "aria-label='x\"y'" in svg  # quoteattr picks the other quote
    empty = charts.stacked_bars(["Mon"], [charts.Series("a", [0], charts.GOOD)], title="t")
    assert "No data in this window" in empty


def test_nice_ticks_cover_the_maximum_with_round_steps() -> None:
    assert charts.nice_ticks(27) == [0, 10, 20, 30]
    assert charts.nice_ticks(2210) == [0, 1000, 2000, 3000]
    assert charts.nice_ticks(0) == [0, 1]


def test_risk_matrix_counts_and_bands() -> None:
    svg = charts.risk_matrix({(5, 5): 3}, title="m")
    assert ">3</text>" in svg
    assert [charts.risk_band(s) for s in (4, 5, 9, 10, 16, 20)] == [
        "low", "medium", "medium", "high", "high", "critical",
    ]  # fmt: skip


# -------------------------------------------------------------------------------------- message


def message(**overrides: object) -> bytes:
    values = {
        "sender": "Tidings <reports@example.com>",
        "to": ["a@example.com"],
        "cc": ["b@example.com"],
        "subject": "S",
        "text": "t",
        "html": "<p>h</p>",
        "attachments": [Attachment("r.pdf", b"%PDF-1.7 x", "application", "pdf")],
        "msg_id": "<id@example.com>",
        "date": datetime(2024, 5, 13, 7, tzinfo=UTC),
    }
    values.update(overrides)
    return encode(build_message(**values))  # type: ignore[arg-type]


def test_message_has_no_bcc_and_uses_crlf() -> None:
    data = message()
    assert b"\r\nBcc" not in data and b"\nTo: a@example.com\r\n" in data
    assert b"Cc: b@example.com" in data and b"Message-ID: <id@example.com>" in data


def test_subject_placeholders_and_no_header_injection() -> None:
    subject = templating.subject(
        "[T] {name} \u2014 {date}", title="Weekly {x}\r\nBcc: evil@example.com", date="2024-05-13"
    )
    assert subject == "[T] Weekly {x} Bcc: evil@example.com \u2014 2024-05-13"
    assert b"\nBcc:" not in message(subject=subject)


def test_message_id_depends_on_uid_and_window_only() -> None:
    start, end = WEEK
    at = datetime(2024, 5, 13, 7, tzinfo=UTC)
    first = message_id("uid-1", at, start, end, "example.com")
    assert first == message_id("uid-1", at, start, end, "example.com")
    assert first != message_id("uid-2", at, start, end, "example.com")
    assert first != message_id("uid-1", at + timedelta(days=7), start, end, "example.com")
    assert first.startswith("<tidings.") and first.endswith("@example.com>")


def test_size_guard_counts_the_encoded_message() -> None:
    data = message(
        attachments=[Attachment("big.bin", bytes(30_000), "application", "octet-stream")]
    )
    assert len(data) > 40_000  # base64 grows 30 kB by a third
    with pytest.raises(AttachmentTooLarge, match="over the size guard of 40,000 bytes"):
        check_size(len(data), 40_000)
    check_size(len(data), 0)  # 0 = no limit


# --------------------------------------------------------------------------------------- result


def test_result_keys_match_the_history_entry_model() -> None:
    result = RunResult(outcome="Delivered", scheduled_time="2024-05-13T07:00:00Z", renderer="pdf")
    data = json.loads(result.to_json())
    history_keys = {f.alias or n for n, f in models.HistoryEntry.model_fields.items()}
    # The rest is for the ReportDelivery record (tidings.controller.records).
    record_only = {"failure", "attempts", "rows", "pages", "attachments", "addresses"}
    assert set(data) - record_only <= history_keys
    entry = {k: v for k, v in data.items() if k not in record_only}
    models.HistoryEntry.model_validate({"jobName": "j", **entry})


def test_result_keeps_every_address_of_50_and_cuts_the_error_first() -> None:
    to = [f"recipient-{i:02d}@finance.example.com" for i in range(50)]
    refused = {a: "550 5.1.1 " + "no such user " * 20 for a in to[40:]}
    result = RunResult(
        outcome="Delivered",
        error="not delivered to: " + ", ".join(f"{a}: {r}" for a, r in refused.items()),
        addresses=sort_addresses({"to": to}, to[:40], refused),
    )
    data = json.loads(result.to_json())
    assert len(result.to_json().encode()) <= RESULT_MAX_BYTES
    assert data["addresses"]["to"]["accepted"] == to[:40]
    assert list(data["addresses"]["to"]["refused"]) == to[40:]
    assert all(r.startswith("550 5.1.1") for r in data["addresses"]["to"]["refused"].values())
    assert "addressesOmitted" not in data and data["error"].endswith("…")


def test_result_beyond_the_limit_counts_the_addresses_left_out() -> None:
    to = [f"{'x' * 30}-{i:03d}@example.com" for i in range(50)]
    bcc = [f"{'y' * 60}-{i:03d}@example.com" for i in range(50)]
    result = RunResult(
        outcome="Delivered", addresses=sort_addresses({"to": to, "bcc": bcc}, to + bcc, {})
    )
    line = result.to_json()
    data = json.loads(line)
    assert len(line.encode()) <= RESULT_MAX_BYTES
    kept = data["addresses"]["to"]["accepted"] + data["addresses"]["bcc"]["accepted"]
    assert data["addresses"]["to"]["accepted"] == to  # bcc is cut first
    assert kept == (to + bcc)[: len(kept)]
    assert data["addressesOmitted"] == 100 - len(kept) > 0


def test_result_error_is_truncated_to_fit_4096_bytes() -> None:
    result = RunResult(outcome="Failed", failure="permanent", error='é"\\' * 5000)
    line = result.to_json()
    assert len(line.encode()) <= 4096
    assert json.loads(line)["error"].endswith("…")
    assert "\n" not in line


def test_redact_masks_every_secret() -> None:
    assert (
        redact("url postgresql://u:pw1234@h/db and pw1234", ["pw1234"])
        == "url postgresql://u:***@h/db and ***"
    )
    assert redact("short", ["ab", None]) == "short"


# ------------------------------------------------------------------------------ templates, pdf


def test_templates_autoescape_row_values() -> None:
    html = templating.render_html(sample(), custom_template=None, logo=None, data_files="")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ report.__class__.__mro__ }}", "unsafe"),
        ("{{ nothing_here }}", "'nothing_here' is undefined"),
        ("{% for x in %}", "line 1"),
        ("{% extends 'no-such.html.j2' %}", "no-such.html.j2"),
    ],
)
def test_custom_template_errors_are_input_errors(template: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        templating.render_html(sample(), custom_template=template, logo=None, data_files="")


def test_pdf_fetcher_refuses_local_files_and_network(tmp_path) -> None:
    from pypdf import PdfReader

    from tidings.renderer.pdf import render_pdf

    secret = tmp_path / "leak.css"
    secret.write_text('body::after { content: "LEAKED-FILE" }')
    html = (
        f'<html><head><link rel="stylesheet" href="file://{secret}"></head><body>'
        '<p>visible</p><img src="http://127.0.0.1:9/x.png">'
        '<img src="data:image/svg+xml;base64,'
        'PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=">'
        "</body></html>"
    )
    pdf = tmp_path / "f.pdf"
    pdf.write_bytes(render_pdf(html))
    text = PdfReader(pdf).pages[0].extract_text()
    assert "visible" in text
    assert "LEAKED-FILE" not in text
