"""spec.program and filters.team in all three source kinds (inline, sql against a real
PostgreSQL, http against a real loopback HTTP server), the empty-window page, the CSV header and
list cells, and `tidings validate` explaining the program rules."""

from __future__ import annotations

import copy
import gzip
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from tests.support.examples import EXAMPLE_AT, EXAMPLES, load_example
from tests.support.json_http import JsonHandler, JsonHttpServer
from tests.support.postgres import Postgres
from tests.support.renderer_cli import write_report

from tidings import models
from tidings.cli import main
from tidings.renderer.filters import apply_filters
from tidings.renderer.result import MissingColumn
from tidings.renderer.sources import QueryParams, load_rows, scoped_http

UTC = ZoneInfo("UTC")
WINDOW = (datetime(2024, 5, 6, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC))

RISKS = [
    {"id": "R-1", "title": "Acquirer", "likelihood": 4, "impact": 5, "status": "open",
     "team": "payments", "program": "pci"},
    {"id": "R-2", "title": "Ledger replica", "likelihood": 3, "impact": 5, "status": "open",
     "team": "ledger", "program": "pci"},
    {"id": "R-3", "title": "POS terminals", "likelihood": 5, "impact": 4, "status": "open",
     "team": "payments", "program": "retail"},
]  # fmt: skip


def risk_report(source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tidings.dev/v1alpha1",
        "kind": "ScheduledReport",
        "metadata": {"name": "risks", "namespace": "grc"},
        "spec": {
            "title": "Risks in scope",
            "reportType": "risk_report",
            "program": "PCI",
            "source": source,
            "filters": {"window": {"previous": "week"}},
            "recipients": {"to": ["grc@example.com"]},
            **spec,
        },
    }


def render_text(
    tmp_path: Path, report: dict[str, Any], *extra: str, at: str = EXAMPLE_AT
) -> tuple[int, str]:
    """Exit code and the PDF's text, flattened to single spaces."""
    import subprocess

    out = tmp_path / "out.pdf"
    code = main(["render", str(write_report(tmp_path, report)), "-o", str(out), "--at", at, *extra])
    if code:
        return code, ""
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    return code, " ".join(text.split())


# ---------------------------------------------------------------------------------------- inline


def test_inline_rows_are_filtered_on_the_program_ignoring_case(tmp_path: Path) -> None:
    code, text = render_text(tmp_path, risk_report({"inline": {"rows": RISKS}}))
    assert code == 0
    assert "Program PCI" in text  # the header names the program
    assert "R-1" in text and "R-2" in text
    assert "R-3" not in text  # another program


def test_inline_rows_without_a_program_column_name_it(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "program"} for r in RISKS]
    with pytest.raises(MissingColumn, match=r"spec.program .*program.*row 0"):
        apply_filters(
            rows, models.Filters(), WINDOW, None, UTC, program="pci", program_column_required=True
        )


def test_team_filter_keeps_matching_rows_and_needs_the_column() -> None:
    kept = apply_filters(RISKS, models.Filters(team=["PAYMENTS"]), WINDOW, None, UTC)
    assert [r["id"] for r in kept] == ["R-1", "R-3"]
    both = apply_filters(RISKS, models.Filters(team=["payments"]), WINDOW, None, UTC, "pci")
    assert [r["id"] for r in both] == ["R-1"]
    with pytest.raises(MissingColumn, match=r"filters\.team"):
        apply_filters([{"id": "x"}], models.Filters(team=["payments"]), WINDOW, None, UTC)


def test_team_filter_is_shown_under_the_title(tmp_path: Path) -> None:
    report = risk_report({"inline": {"rows": RISKS}})
    report["spec"]["filters"]["team"] = ["payments"]
    code, text = render_text(tmp_path, report)
    assert code == 0
    assert "Filtered on team: payments" in text
    assert "R-1" in text and "R-2" not in text and "R-3" not in text


# ------------------------------------------------------------------------------------------- sql

SCOPED_QUERY = (
    "SELECT id, title, likelihood, impact, status, team FROM risks "
    "WHERE program = :program "
    "AND (cardinality(CAST(:team AS text[])) = 0 OR team = ANY(CAST(:team AS text[])))"
)


@pytest.fixture(scope="module")
def risks_db(postgres: Postgres) -> Postgres:
    postgres.psql(
        """
        DROP TABLE IF EXISTS risks;
        CREATE TABLE risks (id text, title text, likelihood int, impact int, status text,
                            team text, program text);
        INSERT INTO risks VALUES
          ('R-1', 'Acquirer', 4, 5, 'open', 'payments', 'PCI'),
          ('R-2', 'Ledger replica', 3, 5, 'open', 'ledger', 'PCI'),
          ('R-3', 'POS terminals', 5, 4, 'open', 'payments', 'retail');
        """
    )
    return postgres


@pytest.fixture
def risks_secret(tmp_path: Path, risks_db: Postgres) -> Path:
    directory = tmp_path / "source"
    directory.mkdir()
    (directory / "value").write_text(risks_db.url + "\n")
    return directory


def sql_source() -> dict[str, Any]:
    return {"sql": {"connectionSecretRef": {"name": "grc-db", "key": "url"}, "query": SCOPED_QUERY}}


def test_sql_binds_the_program(tmp_path: Path, risks_secret: Path) -> None:
    code, text = render_text(tmp_path, risk_report(sql_source()), "--secret-dir", str(risks_secret))
    assert code == 0
    assert "Program PCI" in text
    assert "R-1" in text and "R-2" in text
    assert "R-3" not in text  # the query's WHERE program = :program left it out


def _deadline(seconds: float = 30) -> float:
    return time.monotonic() + seconds


def test_sql_binds_the_team_filter(tmp_path: Path, risks_secret: Path) -> None:
    params = QueryParams(*WINDOW, team=["payments"], program="PCI")
    rows = load_rows(models.Source.model_validate(sql_source()), params, risks_secret, _deadline())
    assert [r["id"] for r in rows] == ["R-1"]
    unfiltered = QueryParams(*WINDOW, program="retail")
    rows = load_rows(
        models.Source.model_validate(sql_source()), unfiltered, risks_secret, _deadline()
    )
    assert [r["id"] for r in rows] == ["R-3"]


# ------------------------------------------------------------------------------------------ http


class _Risks(JsonHandler):
    """/scoped answers with the requested program's rows; /all ignores the parameter."""

    seen: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        _Risks.seen.append(query)
        wanted = query.get("program", [""])[0].casefold()
        rows = RISKS if parts.path == "/all" else [r for r in RISKS if r["program"] == wanted]
        self.reply(200, {"items": rows})


@pytest.fixture(scope="module")
def risks_api() -> Iterator[str]:
    with JsonHttpServer(_Risks) as server:
        yield server.url


def test_http_gets_the_program_as_a_query_parameter(tmp_path: Path, risks_api: str) -> None:
    _Risks.seen.clear()
    source = {"http": {"url": f"{risks_api}/scoped?format=json&program=stale", "rowsPath": "items"}}
    code, text = render_text(tmp_path, risk_report(source))
    assert code == 0
    assert _Risks.seen == [{"format": ["json"], "program": ["PCI"]}]  # replaced, others kept
    assert "R-1" in text and "R-2" in text and "R-3" not in text


def test_http_rows_of_other_programs_are_filtered_out(tmp_path: Path, risks_api: str) -> None:
    """An endpoint that ignores the parameter still yields only the program's rows."""
    code, text = render_text(tmp_path, risk_report({"http": {"url": f"{risks_api}/all",
                                                             "rowsPath": "items"}}))  # fmt: skip
    assert code == 0
    assert "R-1" in text and "R-3" not in text


def test_http_without_a_program_is_left_as_written() -> None:
    http = models.HttpSource(url="https://example.com/x?program=a")
    assert scoped_http(http, None) is http


# -------------------------------------------------------------------------------- empty window


def test_empty_window_is_one_clear_page(tmp_path: Path) -> None:
    """The week after the data: no rows, so no figures, empty tables, charts or levels."""
    report = load_example("dora_snapshot")
    code, text = render_text(tmp_path, report, at="2024-07-01T09:00:00+02:00")
    assert code == 0
    assert "No data in this window" in text
    assert "nothing to rate" in text
    for absent in ("Breakdown", "Deployments per period", "LOW", "none", "Lead time"):
        assert absent not in text, absent
    assert len(PdfReader(tmp_path / "out.pdf").pages) == 1


def test_empty_window_csv_has_a_header_row(tmp_path: Path) -> None:
    csv_out = tmp_path / "rows.csv.gz"
    code, _ = render_text(
        tmp_path,
        load_example("changes_summary"),
        "--csv",
        str(csv_out),
        at="2024-07-01T09:00:00+02:00",
    )
    assert code == 0
    lines = gzip.decompress(csv_out.read_bytes()).decode().splitlines()
    assert lines == ["completed_at,id,title,status,team,assignee,tags"]  # the PDF's order


def test_list_cells_read_with_semicolons_in_pdf_and_csv(tmp_path: Path) -> None:
    csv_out = tmp_path / "rows.csv.gz"
    report = load_example("changes_summary")
    code, text = render_text(tmp_path, report, "--csv", str(csv_out))
    assert code == 0
    lines = gzip.decompress(csv_out.read_bytes()).decode().splitlines()
    assert any('"payments; security"' in line or "payments; security" in line for line in lines)
    assert not any("[" in line for line in lines)  # no JSON lists
    assert "payments; security" in text


# ------------------------------------------------------------------------------ tidings validate


def test_validate_explains_the_program_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = copy.deepcopy(load_example("risk_report"))
    del missing["spec"]["program"]
    refused = copy.deepcopy(load_example("audit_report"))
    refused["spec"]["program"] = "soc2"
    paths = [write_report(tmp_path, missing, "a.yaml"), write_report(tmp_path, refused, "b.yaml")]
    assert main(["validate", *map(str, paths)]) == 65
    out = capsys.readouterr().out
    assert (
        "risk-register: spec.program: is required for reportType risk_report: the "
        "program-scoped types (compliance_readiness, executive_summary, risk_report, "
        "msp_client_report) report on one compliance program, so name it" in out
    )
    assert (
        "spec.program: must not be set for reportType audit_report: audit findings cross "
        "programs, so audit reports always cover every program" in out
    )


def test_every_example_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, sorted(EXAMPLES.glob("*.yaml")))]) == 0, (
        capsys.readouterr().out
    )
