"""Issue 23: the FORMAT and RECIPIENTS columns (display.py, written to status by the operator),
addresses typed comma- or newline-separated in the plugin, and the window in subjects and file
names."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tidings import display, kubectl_plugin
from tidings.kubectl_plugin import PluginError
from tidings.renderer.reports.fmt import window_span, window_stem

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("recipients", "summary"),
    [
        ({"to": ["ciso@example.com"]}, "ciso@example.com"),
        ({"bcc": ["archive@example.com"]}, "archive@example.com"),
        ({"to": ["a@example.com"], "cc": ["b@example.com"]}, "2"),
        ({}, "0"),
    ],
)
def test_recipients_column_is_the_one_address_else_the_count(recipients, summary) -> None:
    assert display.recipient_summary({"recipients": recipients}) == summary


@pytest.mark.parametrize(
    ("delivery", "shown"),
    [
        ({}, "pdf"),
        ({"attachCsv": True}, "pdf+csv"),
        ({"attachments": ["pdf", "xlsx"]}, "pdf+xlsx"),
        ({"attachments": ["csv"]}, "csv"),
        ({"attachments": ["pdf", "csv"], "pdfVariant": "pdf/a-3b"}, "pdf/a-3b+csv"),
    ],
)
def test_format_column_names_every_attached_file(delivery, shown) -> None:
    assert display.delivery_format({"delivery": delivery}) == shown


def test_status_fields_carry_both_columns() -> None:
    spec = {"recipients": {"to": ["a@example.com"]}, "delivery": {"attachments": ["csv"]}}
    fields = display.status_fields(spec, {})
    assert (fields["recipientSummary"], fields["deliveryFormat"]) == ("a@example.com", "csv")


def test_addresses_split_on_commas_and_line_breaks() -> None:
    typed = "a@x.com, b@y.com\nc@z.com,\r\n ,d@w.com"
    assert kubectl_plugin.parse_addresses(typed) == ["a@x.com", "b@y.com", "c@z.com", "d@w.com"]


def test_a_test_send_takes_exactly_one_address() -> None:
    assert kubectl_plugin.one_address(" me@example.com, ") == "me@example.com"
    with pytest.raises(PluginError, match=r"--to: .*exactly one address, got 2 \(a@x.com, b@y"):
        kubectl_plugin.one_address("a@x.com,b@y.com")
    with pytest.raises(PluginError, match="got 0 "):
        kubectl_plugin.one_address(" , ")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("start", "end", "span", "stem"),
    [
        (at(2024, 5, 6), at(2024, 5, 13), "6\u201312 May 2024", "2024-05-06_2024-05-12"),
        (at(2024, 4, 29), at(2024, 5, 6), "29 Apr \u2013 5 May 2024", "2024-04-29_2024-05-05"),
        (
            at(2024, 12, 30),
            at(2025, 1, 6),
            "30 Dec 2024 \u2013 5 Jan 2025",
            "2024-12-30_2025-01-05",
        ),
        (at(2024, 5, 6), at(2024, 5, 7), "6 May 2024", "2024-05-06"),
        (
            at(2024, 5, 12, 21),
            at(2024, 5, 13, 9),
            "12 May 2024 21:00 \u2013 13 May 2024 09:00",
            "2024-05-12T2100_2024-05-13T0900",
        ),
    ],
)
def test_window_in_subjects_and_file_names(start, end, span, stem) -> None:
    assert window_span(start, end, BERLIN) == span
    assert window_stem(start, end, BERLIN) == stem
