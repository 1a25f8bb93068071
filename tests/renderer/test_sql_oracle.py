"""sqltext against PostgreSQL as the oracle, on generated texts that mix quotes, dollar quotes,
E-strings, nested comments and `--` comments ended by LF, CR or CRLF: the binds it finds are
the ones the server reads (each bound value comes back where a bind was meant, each quoted
`:program` comes back as text), and it accepts a text exactly when the server admits the text
as a cursor's query (DECLARE ... CURSOR FOR, which PostgreSQL allows only for a SELECT)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import pq
from tests.support.postgres import Postgres

from tidings import sqltext

ENDINGS = st.sampled_from(["\n", "\r", "\r\n"])
# Text PostgreSQL skips, each holding a `:program` that must not become a bind.
GAPS = st.one_of(
    st.sampled_from([" ", "\n", "\r", "\r\n", "\t", "/* :program */", "/* a /* :program */ */"]),
    ENDINGS.map(lambda end: f"-- :program ;{end}"),
)
# (expression, the value PostgreSQL must return for it)
EXPRESSIONS = st.sampled_from(
    [
        ("CAST(:program AS text)", "BOUND"),
        ("':program'", ":program"),
        ("$q$:program$q$", ":program"),
        ("$$ -- :program $$", " -- :program "),
        ("E'\\':program'", "':program"),
        ("'a''b:program'", "a'b:program"),
        ("CAST(:program AS text) || ':x'", "BOUND:x"),
    ]
)


@pytest.fixture(scope="module")
def pgconn(postgres: Postgres) -> Iterator[Any]:
    conninfo = postgres.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS oracle_t; CREATE TABLE oracle_t (v int)")
        yield connection.pgconn


def _exec(pgconn: Any, text: str, values: list[bytes]) -> Any:
    """One statement over the extended protocol (PQexecParams never runs a second one)."""
    return pgconn.exec_params(text.encode(), values)


@st.composite
def select_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    columns = draw(st.lists(EXPRESSIONS, min_size=1, max_size=5))
    gap = lambda: draw(st.lists(GAPS, max_size=3).map("".join))  # noqa: E731
    parts = [f"{gap()}{expression}{gap()} AS c{i}" for i, (expression, _) in enumerate(columns)]
    text = gap() + "SELECT " + ",".join(parts) + gap()
    return text, [value for _, value in columns]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=select_texts())
def test_binds_are_where_postgresql_reads_them(pgconn: Any, case: tuple[str, list[str]]) -> None:
    text, expected = case
    query = sqltext.parse(text)
    result = _exec(pgconn, query.executed, [b"BOUND"] * len(query.names))
    assert result.status == pq.ExecStatus.TUPLES_OK, result.error_message
    got = [result.get_value(0, i).decode() for i in range(result.nfields)]
    assert got == expected
    assert query.names == (("program",) if "BOUND" in "".join(expected) else ())


STATEMENTS = [
    ("SELECT 1 AS a", True),
    ("VALUES (1)", True),
    ("WITH w AS (SELECT 1 AS a) SELECT a FROM w", True),
    ("TABLE oracle_t", True),
    ("COPY (SELECT 1) TO STDOUT", False),
    ("DO $$BEGIN END$$", False),
    ("SET search_path = public", False),
    ("UPDATE oracle_t SET v = v", False),
    ("WITH d AS (DELETE FROM oracle_t RETURNING v) SELECT v FROM d", False),
    ("SELECT 1 AS a INTO TEMP oracle_x", False),
    ("SHOW search_path", False),
    ("EXPLAIN SELECT 1", False),
]
COMMENTS = st.one_of(
    st.sampled_from(["", " ", "/* x */", "/* /* ; */ */", "\r\n"]),
    ENDINGS.map(lambda end: f"-- note{end}"),
    st.sampled_from(STATEMENTS).map(lambda s: f"-- {s[0]}\n"),  # a statement commented out
)


@st.composite
def statement_texts(draw: st.DrawFn) -> str:
    statements = draw(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=2))
    pieces = [draw(COMMENTS)]
    for index, (statement, _) in enumerate(statements):
        if index:
            pieces.append(";" + draw(COMMENTS))
        # A carriage return right after a `--` opens the next line to PostgreSQL.
        pieces.append(draw(st.sampled_from(["", "-- hidden\r", "-- hidden\r\n"])) + statement)
        pieces.append(draw(COMMENTS))
    return "".join(pieces)


def _server_admits(pgconn: Any, text: str) -> bool:
    assert _exec(pgconn, "BEGIN READ ONLY", []).status == pq.ExecStatus.COMMAND_OK
    try:
        result = _exec(pgconn, f"DECLARE oracle NO SCROLL CURSOR FOR\n{text}\n", [])
        return result.status == pq.ExecStatus.COMMAND_OK
    finally:
        _exec(pgconn, "ROLLBACK", [])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=statement_texts())
def test_a_text_is_accepted_exactly_when_postgresql_admits_it_as_a_select(
    pgconn: Any, text: str
) -> None:
    try:
        sqltext.parse(text)
        ours = True
    except sqltext.SqlTextError:
        ours = False
    assert ours == _server_admits(pgconn, text)
