"""Whatever the query text, PostgreSQL executes one row-returning SELECT: against a real server,
as its superuser and as a read-only role, texts that hide another statement behind a comment
PostgreSQL ends at a carriage return never run it (canaries: a file written by COPY TO
PROGRAM, one written by COPY TO, one written from a DO block), whether the pod's check
(PostgreSQL's own parser, pglast) or only the server's grammar stands in the way."""

from __future__ import annotations

import email
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import psycopg
import pytest
from tests.support.examples import EXAMPLE_AT
from tests.support.postgres import Postgres
from tests.support.renderer_cli import run_pod
from tests.support.renderer_reports import sql_report
from tests.support.smtp_servers import SmtpServer

from tidings import sqltext
from tidings.renderer.result import EX_OK, InputError
from tidings.renderer.sources import QueryParams, SourceLimits, _fetch, sql_rows
from tidings.validation import sql_query_problem

PARAMS = QueryParams(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC))
READER, READER_PASSWORD = "tidings_reader", "reader-pass"


@dataclass
class Canaries:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def written(self) -> list[str]:
        return sorted(path.name for path in self.directory.iterdir())


@pytest.fixture
def canaries() -> Iterator[Canaries]:
    # Written by the server's OS user (`nobody` under root): a directory it may write to.
    directory = Path(tempfile.mkdtemp(prefix="tidings-canary-"))
    directory.chmod(0o777)
    yield Canaries(directory)
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()


def hidden(canaries: Canaries) -> dict[str, str]:
    """One SELECT to a lexer that ends `--` comments only at a line feed; to PostgreSQL, whose
    comments also end at a carriage return, a different single statement (the SELECT is in a
    block comment), or a SELECT followed by a second statement."""
    program = f"COPY (SELECT 1) TO PROGRAM 'touch {canaries.path('program')}'"
    copy = f"COPY (SELECT 1) TO '{canaries.path('copy')}'"
    do = f"DO $$BEGIN EXECUTE 'COPY (SELECT 1) TO ''{canaries.path('do')}'''; END$$"
    return {
        "program": f"-- weekly report\r {program} /*\nSELECT 1 AS a -- */",
        "copy": f"-- weekly report\r {copy} /*\nSELECT 1 AS a -- */",
        "do": f"-- weekly report\r {do} /*\nSELECT 1 AS a -- */",
        "program-crlf": f"SELECT 1 AS a -- note\r\n; {program} -- \n",
        "copy-after-select": f"SELECT 1 AS a -- note\r; {copy}",
        "do-mid-line": f"SELECT 1 AS a /* x */ -- :window_start\r; {do}",
    }


@pytest.fixture(scope="module")
def reader(postgres: Postgres) -> Postgres:
    """A role that can read every table and nothing else (no superuser, no file access)."""
    postgres.psql(
        f"DROP ROLE IF EXISTS {READER}; "
        f"CREATE ROLE {READER} LOGIN PASSWORD '{READER_PASSWORD}'; "
        f"GRANT pg_read_all_data TO {READER}"
    )
    return Postgres(postgres.port, READER, READER_PASSWORD, postgres.database)


@pytest.fixture(params=["superuser", "reader"])
def connection_as(request: pytest.FixtureRequest, postgres: Postgres) -> Postgres:
    return postgres if request.param == "superuser" else request.getfixturevalue("reader")


def test_the_canaries_work_when_the_hidden_statement_is_run_as_written(
    postgres: Postgres, canaries: Canaries
) -> None:
    # psql sends the text as a simple query, which runs what PostgreSQL reads: the hidden
    # statements, as the superuser. This is what the tests below must never let happen.
    for text in hidden(canaries).values():
        postgres.psql(text)
    assert canaries.written() == ["copy", "do", "program"]


@pytest.mark.parametrize("name", list(hidden(Canaries(Path("/x")))))
def test_the_pod_refuses_the_text_before_it_reaches_the_server(
    connection_as: Postgres, canaries: Canaries, name: str
) -> None:
    text = hidden(canaries)[name]
    with pytest.raises(InputError, match=r"^source.sql.query (must be a single|.*not (DO|COPY))"):
        sql_rows(text, PARAMS, connection_as.url, time.monotonic() + 10)
    assert sql_query_problem(text) is not None  # admission and `tidings validate` refuse it
    assert canaries.written() == []


@pytest.mark.parametrize("name", list(hidden(Canaries(Path("/x")))))
def test_the_server_grammar_alone_admits_only_a_select(
    connection_as: Postgres, canaries: Canaries, name: str
) -> None:
    """As if the pod's check had been fooled: the text goes to the server as a subquery."""
    text = hidden(canaries)[name]
    conninfo = connection_as.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection, pytest.raises(InputError) as raised:
        connection.read_only = True
        _fetch(connection, sqltext.Query(text, ()), [], connection_as.url, SourceLimits())
    # A syntax error: the server never got as far as a permission check, let alone a run.
    assert "syntax error" in str(raised.value)
    assert "permission denied" not in str(raised.value)
    assert canaries.written() == []


@pytest.mark.usefixtures("changes_db")
def test_an_ordinary_select_with_crlf_line_endings_still_delivers(
    reader: Postgres, smtp: SmtpServer, tmp_path: Path
) -> None:
    report = sql_report()
    query = report["spec"]["source"]["sql"]["query"]
    report["spec"]["source"]["sql"]["query"] = "-- weekly\r\n" + query.replace("\n", "\r\n")
    assert ":window_start" in query and ":window_end" in query
    secret = tmp_path / "source"
    secret.mkdir()
    (secret / "value").write_text(reader.url)
    done, result = run_pod(
        tmp_path,
        report,
        smtp.env(TIDINGS_SCHEDULED_TIME=EXAMPLE_AT, TIDINGS_SOURCE_SECRET_DIR=str(secret)),
    )
    assert done.returncode == EX_OK, done.stderr
    assert result is not None and result["outcome"] == "Delivered"
    message = email.message_from_bytes(smtp.recorder.messages[-1].content, policy=policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    assert "Rotate keys" in body.get_content()  # a row inside the window, read by the reader


def test_the_reader_role_is_not_a_superuser(reader: Postgres) -> None:
    assert reader.psql("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == "f\n"


def test_strings_are_read_as_the_scanner_reads_them_whatever_the_role_default(
    postgres: Postgres,
) -> None:
    # With standard_conforming_strings off, \' would escape a quote on the server and the two
    # would disagree on where a string ends.
    postgres.psql(
        "DROP ROLE IF EXISTS tidings_legacy; "
        "CREATE ROLE tidings_legacy LOGIN PASSWORD 'legacy-pass'; "
        "ALTER ROLE tidings_legacy SET standard_conforming_strings = off"
    )
    legacy = Postgres(postgres.port, "tidings_legacy", "legacy-pass", postgres.database)
    assert legacy.psql("SHOW standard_conforming_strings") == "off\n"
    query = "SELECT current_setting('standard_conforming_strings') AS s, 'a\\' AS b"
    assert sql_rows(query, PARAMS, legacy.url, time.monotonic() + 10) == [{"s": "on", "b": "a\\"}]
