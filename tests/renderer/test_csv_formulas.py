"""CSV cells a spreadsheet would run as formulas open as the text they are, as in the xlsx."""

from __future__ import annotations

import csv
import gzip
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tidings.renderer.datafiles import csv_attachment


def cells(rows: list[dict[str, object]]) -> list[list[str]]:
    attachment = csv_attachment(rows, "r.csv.gz", ZoneInfo("UTC"))
    return list(csv.reader(io.StringIO(gzip.decompress(attachment.content).decode("utf-8"))))


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://evil.test","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"],
)
def test_formula_like_text_gets_a_leading_quote(text: str) -> None:
    assert cells([{"a": text}]) == [["a"], ["'" + text]]


def test_formula_like_lists_are_neutralised_too() -> None:
    assert cells([{"a": ["=1", "b"]}]) == [["a"], ["'=1; b"]]


def test_numbers_and_plain_text_stay_as_they_are() -> None:
    rows = [{"n": -5, "f": -1.5, "d": Decimal("-2.25"), "t": "a=b", "e": ""}]
    assert cells(rows) == [["n", "f", "d", "t", "e"], ["-5", "-1.5", "-2.25", "a=b", ""]]
