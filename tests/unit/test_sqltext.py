"""Query text read by PostgreSQL's own scanner and parser (pglast): binds, quoting, comments
and the statement kind as the server reads them."""

from __future__ import annotations

import pytest

from tidings.sqltext import SqlTextError, parse


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "SELECT 1;",
        "SELECT 1; -- done",
        "SELECT 1;;",
        "SELECT 'a;b'",
        'SELECT "a;b" FROM t',
        "SELECT $$;$$",
        "SELECT $tag$ $$ ; $tag$",
        "SELECT E'\\';' AS x",
        "SELECT 1 /* a /* ; */ ; */",
        "SELECT 1 -- ; \n",
        "/* weekly */ WITH a AS (SELECT 1) SELECT * FROM a",
        "VALUES (1), (2)",
        "TABLE changes",
        "SELECT 1 UNION ALL SELECT 2 ORDER BY 1",
    ],
)
def test_one_select_is_accepted(query: str) -> None:
    assert parse(query).names == ()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        # A `--` comment ends at a carriage return as well as at a line feed.
        ("SELECT 1 -- c\r; COPY (SELECT 1) TO PROGRAM 'id'", "single statement"),
        ("SELECT 1 -- c\rCOPY (SELECT 1) TO '/tmp/x'", "syntax error"),
        ("-- SELECT\rDO $$ BEGIN END $$", "not DO"),
        ("-- SELECT\r\nCOPY t TO STDOUT", "not COPY"),
        ("SELECT $$'$$ AS a; COMMIT; UPDATE canary SET v='x'; SELECT '$$' AS b", "single"),
        ("SELECT E'\\'' ; UPDATE canary SET v='x'; SELECT ''''", "single statement"),
        ("SELECT a$b$ FROM t; SELECT 2", "single statement"),
        ("SET ROLE postgres", "not SET"),
        ("WITH u AS (UPDATE t SET v = 1 RETURNING v) SELECT * FROM u", "must only read"),
        ("SELECT * FROM (WITH d AS (DELETE FROM t RETURNING 1) SELECT 1) q", "must only read"),
        ("SELECT 1 INTO copy_of_t", "SELECT ... INTO"),
        ("SELECT * FROM t FOR UPDATE", "FOR UPDATE or FOR SHARE"),
        ("SELECT * FROM (SELECT * FROM t FOR KEY SHARE) q", "FOR UPDATE or FOR SHARE"),
        ("", "must be a SELECT statement"),
        ("  ; -- nothing", "must be a SELECT statement"),
    ],
)
def test_anything_but_one_reading_select_is_refused(query: str, message: str) -> None:
    with pytest.raises(SqlTextError, match=message.replace("$", r"\$").replace(".", r"\.")):
        parse(query)


def test_binds_become_numbered_placeholders_once_per_name() -> None:
    parsed = parse(
        "SELECT ':window_end', $$:tags$$, x::text, a[1:n] FROM t "
        "WHERE ts >= :window_start AND ts < :window_end AND ts <> :window_start -- :status"
    )
    assert parsed.names == ("window_start", "window_end")
    assert parsed.text == (
        "SELECT ':window_end', $$:tags$$, x::text, a[1:n] FROM t "
        "WHERE ts >= $1 AND ts < $2 AND ts <> $1"
    )


def test_a_bind_after_a_carriage_return_ended_comment_is_a_bind() -> None:
    parsed = parse("SELECT 1 -- :status\r, :window_start AS s\r\n")
    assert parsed.names == ("window_start",)
    assert parsed.text == "SELECT 1 -- :status\r, $1 AS s"


def test_an_escaped_colon_is_a_literal_colon() -> None:
    parsed = parse("SELECT (ARRAY[1,2,3])[\\:n] FROM t")
    assert parsed.names == ()
    assert parsed.text == "SELECT (ARRAY[1,2,3])[:n] FROM t"


def test_the_server_gets_a_subquery_that_a_trailing_comment_cannot_close() -> None:
    assert parse("SELECT 1; -- done").executed == "SELECT * FROM (\nSELECT 1\n) AS tidings_query"
    assert parse("SELECT 1 -- done").executed.endswith("SELECT 1\n) AS tidings_query")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 'open", "quoted string opened at 7 is not closed"),
        ('SELECT "open', "quoted identifier opened at 7 is not closed"),
        ("SELECT $x$ open", "dollar-quoted string opened at 7 is not closed"),
        ("SELECT 1 /* /* */", "comment opened at 9 is not closed"),
        ("SELECT * FROM t WHERE a = $1", "positional parameter $1 at 26"),
    ],
)
def test_unreadable_text_is_an_error_saying_where(query: str, message: str) -> None:
    with pytest.raises(SqlTextError, match=message.replace("$", r"\$").replace("*", r"\*")):
        parse(query)
