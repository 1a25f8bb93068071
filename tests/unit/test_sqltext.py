"""The PostgreSQL lexer: statements, binds and quoting as PostgreSQL reads them."""

from __future__ import annotations

import pytest

from tidings.sqltext import SqlTextError, parse


@pytest.mark.parametrize(
    ("query", "statements"),
    [
        ("SELECT 1", 1),
        ("SELECT 1;", 1),
        ("SELECT 1; -- done", 1),
        ("SELECT 1;;", 1),
        ("SELECT 'a;b'", 1),
        ('SELECT "a;b" FROM t', 1),
        ("SELECT $$;$$", 1),
        ("SELECT $tag$ $$ ; $tag$", 1),
        ("SELECT $a$ $b$ ; $b$ $a$", 1),
        ("SELECT E'\\';' AS x", 1),
        ("SELECT e'it''s;'", 1),
        ("SELECT 1 /* a /* ; */ ; */", 1),
        ("SELECT 1 -- ; \n", 1),
        # The fault campaign: what the old check took for quoted text is code.
        ("SELECT $$'$$ AS a; COMMIT; UPDATE canary SET v='x'; SELECT '$$' AS b", 4),
        ("SELECT E'\\'' ; UPDATE canary SET v='x'; SELECT ''''", 3),
        ("SELECT 1 /* a /* b */ */ ; UPDATE t SET v = 1", 2),
        # `a$b` is one identifier: no dollar quote starts inside it.
        ("SELECT a$b$ FROM t; SELECT 2", 2),
        ("SELECT 'x' 'y'; SELECT 2", 2),
        ("", 0),
        ("  ; -- nothing", 0),
    ],
)
def test_statements_are_counted_as_postgresql_reads_them(query: str, statements: int) -> None:
    assert parse(query).statements == statements


def test_binds_become_numbered_placeholders_once_per_name() -> None:
    parsed = parse(
        "SELECT ':window_end', $$:tags$$, x::text, a:b FROM t "
        "WHERE ts >= :window_start AND ts < :window_end AND ts <> :window_start -- :status"
    )
    assert parsed.names == ("window_start", "window_end")
    assert parsed.text == (
        "SELECT ':window_end', $$:tags$$, x::text, a:b FROM t "
        "WHERE ts >= $1 AND ts < $2 AND ts <> $1 -- :status"
    )


def test_an_escaped_colon_is_a_literal_colon() -> None:
    parsed = parse("SELECT (ARRAY[1,2,3])[1\\:n] FROM t")
    assert parsed.names == ()
    assert parsed.text == "SELECT (ARRAY[1,2,3])[1:n] FROM t"


def test_first_word_is_the_first_keyword_outside_comments() -> None:
    assert parse("/* x */ -- y\n  WITH a AS (SELECT 1) SELECT * FROM a").first_word == "with"
    assert parse("delete from t").first_word == "delete"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT 'open", "string opened at 7 is not closed"),
        ('SELECT "open', "quoted identifier opened at 7 is not closed"),
        ("SELECT $x$ open", "dollar quote $x$ opened at 7 is not closed"),
        ("SELECT 1 /* /* */", "comment /* opened at 9 is not closed"),
        ("SELECT E'\\'", "string opened at 8 is not closed"),
        ("SELECT * FROM t WHERE a = $1", "positional parameter $1 at 26"),
    ],
)
def test_unreadable_text_is_an_error_saying_where(query: str, message: str) -> None:
    with pytest.raises(SqlTextError, match=message.replace("$", r"\$").replace("*", r"\*")):
        parse(query)
