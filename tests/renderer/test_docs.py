"""docs/renderer.md documents every report type's columns and every exit code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tidings.renderer import reports, result
from tidings.renderer.reports.schema_doc import schema_table

DOC = (Path(__file__).resolve().parents[2] / "docs" / "renderer.md").read_text(encoding="utf-8")


def section(report_type: str) -> str:
    match = re.search(rf"^### {report_type} .*?(?=^### |^## )", DOC, re.M | re.S)
    assert match, f"docs/renderer.md has no section for {report_type}"
    return match.group(0)


@pytest.mark.parametrize("report_type", sorted(reports.KINDS))
def test_row_schema_is_documented(report_type: str) -> None:
    kind = reports.KINDS[report_type]
    text = section(report_type)
    for column in {*kind.required, *(c.key for c in kind.columns if c.kind != "computed")}:
        assert f"`{column}`" in text, f"{report_type}: column {column} undocumented"
    for column in kind.required:
        assert re.search(rf"^\| `{column}` \|[^|]*\| yes \|", text, re.M), column
    if kind.time_column and not kind.time_optional:
        assert f"Time column: `{kind.time_column}`" in text
    # The table is the type's registered schema, word for word (schema_doc writes it).
    if kind.schema:
        assert schema_table(kind) in text, f"{report_type}: table differs from its schema"


def test_every_type_has_its_own_folder_with_a_template() -> None:
    from tidings.renderer.reports.types import DIRECTORY

    folders = {p.parent.name for p in DIRECTORY.glob("*/template.html.j2")}
    assert folders == set(reports.KINDS)


def test_exit_codes_are_documented() -> None:
    codes = [result.EX_OK, result.EX_DATAERR, result.EX_UNAVAILABLE, result.EX_TEMPFAIL, 1, 2]
    for code in codes:
        assert re.search(rf"^\| {code} \|", DOC, re.M), code
