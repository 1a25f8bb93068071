"""The plain-text rendering of a report: the email's text part, and the attachment when the PDF
renderer is unavailable (it then opens with a banner saying why)."""

from __future__ import annotations

import textwrap

from tidings.renderer.reports import Breakdown, Report

CELL_WIDTH = 32


def banner(reason: str) -> str:
    rule = "=" * 78
    body = textwrap.fill(
        "NOTE: this report is plain text because the PDF renderer (WeasyPrint) is unavailable "
        f"in this environment: {reason}",
        width=76,
        subsequent_indent="  ",
    )
    return f"{rule}\n{body}\n{rule}\n\n"


def figures_text(report: Report) -> str:
    width = max((len(f.label) for f in report.figures), default=0) + 2
    lines = []
    for figure in report.figures:
        note = f"  ({figure.note})" if figure.note else ""
        lines.append(f"  {figure.label + ':':<{width}} {figure.value}{note}")
    return "\n".join(lines)


def render_text(report: Report, *, fallback_reason: str | None = None, data_files: str) -> str:
    parts = [banner(fallback_reason)] if fallback_reason else []
    parts.append(f"{report.title}\n{'-' * min(78, len(report.title))}\n")
    program = f"Program {report.program}, " if report.program else ""
    parts.append(f"{report.type_label}, {program}{report.window_label}\n")
    if report.filters_label:
        parts.append(f"Filtered on {report.filters_label}\n")
    parts.append(f"Generated {report.generated_label} for {report.namespace}/{report.name}\n\n")
    if report.empty:
        parts.append(f"No data in this window\n  {report.empty_message}\n")
        return "".join(parts)
    parts.append(f"Summary\n{figures_text(report)}\n\n")
    parts.extend(_breakdown(b) for b in report.breakdowns)
    labels = [c.label for c in report.columns]
    for section in report.sections:
        parts.append(f"{section.title} ({len(section.rows)} rows)\n")
        parts.append(_table(labels, [[c.text for c in r] for r in section.table]) + "\n")
    parts.append(f"Detail ({report.total_rows} rows)\n")
    parts.append(_table(labels, [[c.text for c in r] for r in report.table]))
    if report.shown_rows < report.total_rows:
        parts.append(f"\n{truncation_note(report, data_files)}\n")
    return "".join(parts)


def truncation_note(report: Report, data_files: str) -> str:
    where = (
        f"the attached {data_files} has all of them"
        if data_files
        else "add csv or xlsx to spec.delivery.attachments to receive all of them"
    )
    return f"Showing the first {report.shown_rows} of {report.total_rows} rows; {where}."


def _breakdown(breakdown: Breakdown) -> str:
    return f"{breakdown.title}\n{_table(breakdown.headers, breakdown.rows)}\n"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    def clip(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"

    cells = [[clip(h) for h in headers]] + [[clip(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"
