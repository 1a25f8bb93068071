"""Long detail tables (more than reports.COMPACT_ABOVE rows) are set as a fixed-width listing:
every row on one line, columns aligned, long values cut with an ellipsis, and the PDF still has
every shown row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.support.renderer_cli import pdf_text

from tidings.renderer import reports, templating
from tidings.renderer.pdf import render_pdf

BERLIN = ZoneInfo("Europe/Berlin")
CTX = reports.Context(
    tz=BERLIN, start=datetime(2024, 5, 6, tzinfo=BERLIN), end=datetime(2024, 5, 13, tzinfo=BERLIN)
)


def changes(count: int) -> list[dict]:
    return [
        {
            "id": f"CHG-{i:05d}",
            "title": "Rotate the keys\nof " + "a long service name " * 8 if i == 0 else "Ship",
            "status": "failed" if i % 2 else "completed",
            "completed_at": f"2024-05-07T{i % 24:02d}:00:00Z",
            "team": "payments",
        }
        for i in range(count)
    ]


def build(rows: list[dict], shown: int) -> reports.Report:
    return reports.build_report(
        report_type="changes_summary", title="Changes", name="n", namespace="ns", rows=rows,
        ctx=CTX, generated_at=datetime(2024, 5, 13, tzinfo=UTC), max_table_rows=shown,
    )  # fmt: skip


def test_listing_aligns_columns_cuts_long_values_and_keeps_the_row_tone() -> None:
    report = build(changes(3), 3)
    listing = reports.listing(report.columns, report.table)
    lines = [text for text, _ in listing.lines]
    assert all(len(line) <= reports.LISTING_CHARS for line in [listing.header, *lines])
    assert "\n" not in "".join(lines)
    long = next(line for line in lines if "CHG-00000" in line)
    assert "Rotate the keys of a long service" in long and reports.ELLIPSIS in long
    # Every row's status starts in the same column as the header's.
    column = listing.header.index("Status")
    assert {line[column:].split()[0] for line in lines} == {"Completed", "Failed"}
    assert {tone for _, tone in listing.lines} == {"", "bad"}  # failed rows are marked


def test_number_columns_are_right_aligned() -> None:
    columns = [reports.Column("n", "Count", "number"), reports.Column("t", "Name")]
    table = [[reports.Cell("7"), reports.Cell("a")], [reports.Cell("1,234"), reports.Cell("b")]]
    lines = [text for text, _ in reports.listing(columns, table).lines]
    assert lines == ["    7  a", "1,234  b"]


def test_short_tables_keep_the_styled_cells_and_long_ones_become_a_listing(
    tmp_path: Path,
) -> None:
    assert not build(changes(reports.COMPACT_ABOVE), reports.COMPACT_ABOVE).compact
    rows = changes(reports.COMPACT_ABOVE + 1)
    report = build(rows, len(rows))
    assert report.compact
    html = templating.render_html(report, custom_template=None, logo=None, data_files="")
    detail = html.split('<section class="detail">', 1)[1]
    assert 'class="rows listing"' in detail and "badge" not in detail
    text = pdf_text(render_pdf(html), tmp_path)
    assert all(f"CHG-{i:05d}" in text for i in range(len(rows)))
