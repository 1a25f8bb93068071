"""spec.delivery.page and spec.delivery.pdfVariant at admission: errors name the field."""

from __future__ import annotations

import pytest
from tests.support.admission_cases import changed

from tidings.validation import validate_spec


def errors(changes: dict) -> list[str]:
    return [str(problem) for problem in validate_spec(changed(changes)).errors]


def test_page_and_variant_are_accepted() -> None:
    assert errors({"delivery.page": {"size": "Letter", "orientation": "landscape"}}) == []
    assert errors({"delivery.pdfVariant": "pdf/a-3b"}) == []
    assert errors({"delivery.pdfVariant": "pdf/ua-1", "delivery.attachments": ["pdf"]}) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"delivery.page": {"size": "A3"}}, "spec.delivery.page.size"),
        ({"delivery.page": {"orientation": "sideways"}}, "spec.delivery.page.orientation"),
        ({"delivery.pdfVariant": "pdf/x-4"}, "spec.delivery.pdfVariant"),
    ],
)
def test_unknown_values_name_the_field(changes: dict, field: str) -> None:
    found = errors(changes)
    assert found and all(e.startswith(field) for e in found), found


def test_a_variant_without_a_pdf_is_refused() -> None:
    assert errors({"delivery.pdfVariant": "pdf/a-3b", "delivery.attachments": ["csv"]}) == [
        "spec.delivery.pdfVariant: applies to the PDF: add pdf to spec.delivery.attachments or "
        "drop pdfVariant"
    ]
