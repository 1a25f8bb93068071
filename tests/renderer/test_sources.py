"""The sql source against a real PostgreSQL server and the http source against a real HTTP
server on loopback: rows, bound parameters, and each failure classified."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support.examples import EXAMPLE_AT
from tests.support.json_http import JsonHandler, JsonHttpServer
from tests.support.postgres import Postgres
from tests.support.renderer_cli import pdf_text, render
from tests.support.renderer_reports import SQL_EXAMPLE, http_report, sql_report

from tidings import models
from tidings.cli import main
from tidings.renderer.result import EX_DATAERR, EX_TEMPFAIL, InputError, SourceUnavailable
from tidings.renderer.sources import QueryParams, http_rows, load_rows, pick_rows
from tidings_dev.procs import free_port

INJECTION = "completed' OR '1'='1"
DROP = "x'); DROP TABLE changes; --"


@pytest.fixture
def secret_dir(tmp_path: Path, changes_db: Postgres) -> Path:
    directory = tmp_path / "source"
    directory.mkdir()
    (directory / "value").write_text(changes_db.url + "\n")
    return directory


def test_sql_example_renders_the_rows_its_query_selects(
    tmp_path: Path, secret_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sql.pdf"
    code = main(
        ["render", str(SQL_EXAMPLE), "-o", str(out), "--at", EXAMPLE_AT,
         "--secret-dir", str(secret_dir)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    flat = " ".join(pdf_text(out.read_bytes(), tmp_path).split())
    assert "Payments changes from the change database" in flat
    assert "CHG-1" in flat and "CHG-2" in flat and "Rolled back" in flat
    assert "CHG-3" not in flat  # tag filter, bound as an array
    assert "CHG-4" not in flat  # before the window, bound as timestamps
    assert "CHG-5" not in flat  # its status is not in the filter


def test_injection_in_a_filter_value_is_data(
    tmp_path: Path, secret_dir: Path, changes_db: Postgres
) -> None:
    params = QueryParams(
        window_start=datetime(2024, 5, 1, tzinfo=UTC),
        window_end=datetime(2024, 5, 13, tzinfo=UTC),
        status=[INJECTION],
        tags=[DROP, "payments"],
    )
    source = models.Source.model_validate(sql_report()["spec"]["source"])
    rows = load_rows(source, params, secret_dir, time.monotonic() + 30)
    # Only the row whose status literally is that string: the quote never became SQL.
    assert [row["id"] for row in rows] == ["CHG-5"]
    assert rows[0]["status"] == INJECTION
    assert changes_db.psql("SELECT count(*) FROM changes").strip() == "5"


def test_sql_rows_keep_database_types(secret_dir: Path) -> None:
    params = QueryParams(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC))
    source = models.Source.model_validate(sql_report()["spec"]["source"])
    rows = load_rows(source, params, secret_dir, time.monotonic() + 30)
    assert {row["id"] for row in rows} == {"CHG-1", "CHG-2", "CHG-3", "CHG-5"}
    first = next(row for row in rows if row["id"] == "CHG-1")
    assert first["completed_at"] == datetime(2024, 5, 7, 10, tzinfo=UTC)
    assert first["tags"] == ["payments", "security"]


def test_the_query_runs_read_only(secret_dir: Path, changes_db: Postgres) -> None:
    params = QueryParams(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC))
    source = models.Source.model_validate(
        sql_report("SELECT wipe() AS id, title, status, completed_at FROM changes")["spec"][
            "source"
        ]
    )
    # A SELECT that writes through a function: the read-only transaction refuses it.
    changes_db.psql(
        "CREATE OR REPLACE FUNCTION wipe() RETURNS text LANGUAGE sql "
        "AS 'DELETE FROM changes RETURNING id'"
    )
    with pytest.raises(InputError, match="read-only transaction"):
        load_rows(source, params, secret_dir, time.monotonic() + 30)
    assert changes_db.psql("SELECT count(*) FROM changes").strip() == "5"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT id FROM changes WHERE", "syntax error at end of input"),
        ("SELECT nope FROM changes", 'column "nope" does not exist'),
        ("SELECT * FROM changes WHERE id = :who", "unknown parameter(s) :who"),
    ],
)
def test_bad_query_is_exit_65_with_the_database_message(
    tmp_path: Path,
    secret_dir: Path,
    capsys: pytest.CaptureFixture[str],
    query: str,
    message: str,
) -> None:
    code, _ = render(tmp_path, sql_report(query), secret_dir)
    err = capsys.readouterr().err
    assert code == EX_DATAERR
    assert message in err


def test_missing_column_is_exit_65_naming_it(
    tmp_path: Path, secret_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = render(tmp_path, sql_report("SELECT id, title FROM changes"), secret_dir)
    err = capsys.readouterr().err
    assert code == EX_DATAERR
    assert "reportType changes_summary needs column(s) status, completed_at" in err


def test_unreachable_database_is_exit_75_and_never_shows_the_url(
    tmp_path: Path, changes_db: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "dead"
    directory.mkdir()
    url = changes_db.url.replace(f":{changes_db.port}/", f":{free_port()}/")
    (directory / "value").write_text(url)
    report = sql_report()
    code, _ = render(tmp_path, report, directory)
    err = capsys.readouterr().err
    assert code == EX_TEMPFAIL
    assert "cannot connect to the database" in err
    assert changes_db.password not in err


def test_unparseable_url_does_not_echo_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "value").write_text("not a url with hunter2-password")
    code, _ = render(tmp_path, sql_report(), directory)
    err = capsys.readouterr().err
    assert code == EX_DATAERR
    assert "not a usable PostgreSQL URL" in err
    assert "hunter2" not in err


def test_missing_secret_mount_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = render(tmp_path, sql_report(), tmp_path / "nowhere")
    assert code == EX_DATAERR
    assert "the secret value is not mounted at" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- http

TOKEN = "Bearer t0ken-abc"
DOCUMENT = {
    "data": {
        "items": [
            {"id": "INC-1", "title": "Outage", "severity": "sev1", "status": "resolved",
             "opened_at": "2024-05-07T10:00:00Z", "resolved_at": "2024-05-07T11:00:00Z"},
            {"id": "INC-2", "title": "Slow <script>", "severity": "sev3", "status": "open",
             "opened_at": "2024-05-08T10:00:00Z"},
        ]
    }
}  # fmt: skip


class _Handler(JsonHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/incidents":
            if self.headers.get("Authorization") != TOKEN:
                self.reply(401, b'{"error": "unauthorized"}')
                return
            self.reply(200, json.dumps(DOCUMENT).encode())
        elif path == "/broken":
            self.reply(503, b"{}")
        elif path == "/html":
            self.reply(200, b"<html>not json</html>")
        else:
            self.reply(404, b"{}")


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    with JsonHttpServer(_Handler) as server:
        yield server.url


def test_http_source_renders_rows_with_the_auth_header(
    http_base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "token"
    secret.mkdir()
    (secret / "value").write_text(TOKEN + "\n")
    code, out = render(tmp_path, http_report(f"{http_base}/incidents"), secret)
    assert code == 0, capsys.readouterr().err
    flat = " ".join(pdf_text(out.read_bytes(), tmp_path).split())
    assert "INC-1" in flat and "Slow <script>" in flat


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/broken", SourceUnavailable, "answered HTTP 503"),
        ("/missing", InputError, "answered HTTP 404"),
        ("/html", InputError, "did not return a JSON document"),
        ("/incidents", InputError, "answered HTTP 401"),  # no token
    ],
)
def test_http_failures_are_classified(
    http_base: str, path: str, error: type[Exception], message: str
) -> None:
    source = models.HttpSource(url=f"{http_base}{path}?token=query-secret")
    with pytest.raises(error, match=message) as raised:
        http_rows(source, None, time.monotonic() + 5)
    assert "query-secret" not in str(raised.value)


def test_unreachable_http_source_is_transient() -> None:
    source = models.HttpSource(url=f"http://127.0.0.1:{free_port()}/rows")
    with pytest.raises(SourceUnavailable, match="cannot reach"):
        http_rows(source, "Bearer secret-value", time.monotonic() + 5)


def test_rows_path_errors_name_the_path() -> None:
    assert pick_rows({"a": [{"x": 1}]}, "a") == [{"x": 1}]
    assert pick_rows({"a": [{"b": [{"x": 2}]}]}, "a.0.b") == [{"x": 2}]
    with pytest.raises(InputError, match=r"nothing at 'a\.c'"):
        pick_rows({"a": {"b": []}}, "a.c")
    with pytest.raises(InputError, match="expected a list of rows"):
        pick_rows({"a": 1}, "")
    with pytest.raises(InputError, match="row 1 is a string"):
        pick_rows([{"x": 1}, "oops"], "")


def test_inline_rows_take_a_missing_key_as_null_like_the_apiserver_stores_them() -> None:
    # `completed_at: null` in a manifest is stored without the key: the same row either way.
    written = [{"id": 1, "completed_at": "2024-05-06T07:00:00Z"}, {"id": 2, "completed_at": None}]
    stored = [written[0], {"id": 2}]
    source = models.Source.model_validate({"inline": {"rows": stored}})
    params = QueryParams(datetime(2024, 5, 6, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC))
    assert load_rows(source, params, None, time.monotonic() + 30) == written
