"""Every example renders with `tidings render` to a valid PDF that shows its title, window and
expected rows; the long one spans pages numbered "Page X of Y"."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader
from tests.support.examples import EXAMPLE_AT, EXAMPLES, load_example
from tests.support.renderer_cli import python_path

from tidings.cli import main

# example -> (window label, rows that must appear, rows that must not)
EXPECTED = {
    "changes_summary": (
        "6 May 2024 \u2013 12 May 2024 (Europe/Berlin)",
        ["CHG-1040", "Rotate payment gateway API keys", "CHG-1051", "Rolled back"],
        ["CHG-1031", "Reindex search cluster", "CHG-1062"],  # before the week; untagged; open
    ),
    "incidents_summary": (
        "6 May 2024 09:00 \u2013 13 May 2024 09:00 (Europe/Berlin)",
        ["INC-2202", "Card authorisations failing", "INC-2210", "SEV1"],
        ["INC-2201"],  # opened Monday 08:00, before the 7-day window
    ),
    "dora_snapshot": (
        "6 May 2024 \u2013 12 May 2024 (Europe/Berlin)",
        ["Deployment frequency", "Lead time for changes", "Change failure rate", "DEP-5301"],
        [],
    ),
    "audit_log": (
        "6 May 2024 07:00 \u2013 13 May 2024 07:00 (UTC)",
        ["system:serviceaccount:ci:deployer", "db-credentials"],
        [],
    ),
    "custom_query": (
        "6 May 2024 \u2013 12 May 2024 (Europe/Berlin)",
        # Rolled up by team, headers from columnLabels, one number of decimals per column.
        [
            "Groups 5 rows",
            "Team Cost (EUR) CPU core-hours",
            "platform",
            "1,846.66",
            "Cost (EUR) per period",
        ],
        ["Rows 10", "Columns", "Cost eur", "ml-training"],  # no namespace rows, no count cards
    ),
    "compliance_readiness": (
        "Program payments-compliance \u00b7 As of 13 May 2024 09:00 (Europe/Berlin)",
        ["CC6.2", "FAIL", "A.8.8", "PASS", "N/A", "81%"],
        ["6 May 2024 \u2013 12 May 2024"],  # a snapshot prints no window
    ),
    "executive_summary": (
        "Program payments-compliance \u00b7 As of 13 May 2024 09:00 (Europe/Berlin)",
        ["Checkout availability", "99.97 %", "Open critical vulnerabilities", "+71.4%"],
        ["6 May 2024 \u2013 12 May 2024"],
    ),
    "risk_report": (
        "Program payments-compliance \u00b7 As of 13 May 2024 07:00 (UTC)",
        ["RISK-014", "20 Critical", "RISK-040", "8 Medium", "2 Low", "Filtered on status: open"],
        # closed: left out by the status filter; RISK-050: another program
        ["RISK-009", "RISK-050"],
    ),
    "audit_report": (
        "As of 13 May 2024 09:00 (Europe/Berlin)",
        ["F-103", "2024-05-10 overdue", "F-108"],
        ["6 May 2024 \u2013 12 May 2024", "Program"],  # audit reports cross programs
    ),
    "msp_client_report": (
        "Program soc2-managed \u00b7 As of 13 May 2024 09:00 (Europe/Berlin)",
        ["Everline Energy", "62%", "never", "Borealis Bank", "2023-03-30", "Average posture"],
        ["Juniper Travel"],  # another program's client
    ),
}


def test_there_is_one_example_per_report_type() -> None:
    from tidings.models import ReportType

    types = {load_example(p.stem)["spec"]["reportType"] for p in EXAMPLES.glob("*.yaml")}
    assert types == {t.value for t in ReportType}
    assert set(EXPECTED) == {p.stem for p in EXAMPLES.glob("*.yaml")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_renders_title_window_and_rows(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{name}.pdf"
    code = main(["render", str(EXAMPLES / f"{name}.yaml"), "-o", str(out), "--at", EXAMPLE_AT])
    assert code == 0, capsys.readouterr().err
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    window, present, absent = EXPECTED[name]
    spec = load_example(name)["spec"]
    assert spec["title"] in flat
    assert window in flat
    for needle in present:
        assert needle in flat, f"{needle!r} missing from {name}"
    for needle in absent:
        assert needle not in flat, f"{needle!r} should be filtered out of {name}"
    assert f"Page {len(reader.pages)} of {len(reader.pages)}" in flat


def test_long_report_spans_pages_with_running_header_and_page_x_of_y(tmp_path: Path) -> None:
    out = tmp_path / "audit.pdf"
    assert (
        main(["render", str(EXAMPLES / "audit_log.yaml"), "-o", str(out), "--at", EXAMPLE_AT]) == 0
    )
    pages = [p.extract_text() for p in PdfReader(out).pages]
    total = len(pages)
    assert total >= 3
    title = load_example("audit_log")["spec"]["title"]
    for number, page in enumerate(pages, start=1):
        flat = " ".join(page.split())
        assert f"Page {number} of {total}" in flat
        assert "Generated" in flat
        if number > 1:  # the running header repeats title and window after the first page
            assert title in flat
            assert "6 May 2024 07:00 \u2013 13 May 2024 07:00 (UTC)" in flat
            assert "Time Actor Action Resource" in flat  # table header repeated
    # Every event in the window is in the full table once (162 timestamps), and the 13 denied
    # ones once more in their own section, which comes first.
    text = " ".join(pages)
    denied, _, everything = text.partition("All events")
    assert "Denied or failed events 13 rows" in " ".join(denied.split())
    assert len(re.findall(r"2024-05-\d\d \d\d:\d\d", denied)) == 13
    assert len(re.findall(r"2024-05-\d\d \d\d:\d\d", everything)) == 162


def test_max_pdf_rows_keeps_summary_and_says_where_the_rest_is(tmp_path: Path) -> None:
    out = tmp_path / "short.pdf"
    csv_out = tmp_path / "all.csv.gz"
    code = main(
        [
            "render",
            str(EXAMPLES / "audit_log.yaml"),
            "-o",
            str(out),
            "--at",
            EXAMPLE_AT,
            "--max-pdf-rows",
            "20",
            "--csv",
            str(csv_out),
        ]
    )
    assert code == 0
    flat = " ".join(" ".join(p.extract_text() for p in PdfReader(out).pages).split())
    assert "162 Events" in flat  # the summary still counts every row
    assert "Showing the first 20 of 162 rows; the attached CSV file has all of them." in flat
    assert len(PdfReader(out).pages) <= 3  # summary, 13 denied events, 20 of all events
    import gzip

    lines = gzip.decompress(csv_out.read_bytes()).decode().splitlines()
    assert lines[0] == "time,actor,action,resource,status,source"
    assert len(lines) == 163


def test_console_script_renders_without_a_cluster(tmp_path: Path) -> None:
    out = tmp_path / "r.pdf"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tidings",
            "render",
            str(EXAMPLES / "risk_report.yaml"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "KUBECONFIG": "/nonexistent",
            **python_path(),
        },
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF-")
    assert f"wrote {out}" in done.stderr
