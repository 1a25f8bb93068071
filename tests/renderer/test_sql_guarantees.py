"""The sql source cannot write or outlive its deadline, whatever the query text: each bypass
from the fault campaign, and variants that pass validation, against a real PostgreSQL with a
canary table that must stay untouched."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.postgres import Postgres
from tests.support.renderer_cli import render
from tests.support.renderer_reports import sql_report

from tidings.renderer.deadline import DeadlineExceeded, enforced
from tidings.renderer.result import EX_DATAERR, EX_TEMPFAIL, InputError, SourceUnavailable
from tidings.renderer.sources import QueryParams, sql_rows
from tidings.validation import sql_query_problem

PARAMS = QueryParams(datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 13, tzinfo=UTC))

# Found by the campaign: a `;` the old validator took for quoted, and a SET that undid the
# timeout. Each ran its extra statements when sent as a simple query.
CAMPAIGN = {
    "dollar-quote": "SELECT $$'$$ AS a; COMMIT; UPDATE canary SET v='x'; SELECT '$$' AS b",
    "e-string": "SELECT E'\\'' AS a; COMMIT; UPDATE canary SET v='x'; SELECT '''' AS b",
    "set-timeout": "SELECT 1 AS a; SET statement_timeout=0; SELECT pg_sleep(600) AS b",
}
# Single statements that pass validation: only the server-side session settings stop them.
VARIANTS = {
    "writing-cte": "WITH u AS (UPDATE canary SET v='x' RETURNING v) SELECT v FROM u",
    "set-config": (
        "SELECT set_config('statement_timeout', '0', false) AS a, "
        "set_config('default_transaction_read_only', 'off', false) AS b, pg_sleep(600) AS c"
    ),
    "tagged-dollar-do": "DO $t$ BEGIN UPDATE canary SET v = 'x'; END $t$",
}


@pytest.fixture
def canary(postgres: Postgres) -> Postgres:
    postgres.psql(
        "DROP TABLE IF EXISTS canary; CREATE TABLE canary (v text); "
        "INSERT INTO canary VALUES ('untouched')"
    )
    return postgres


def canary_value(postgres: Postgres) -> str:
    return postgres.psql("SELECT v FROM canary").strip()


@pytest.mark.parametrize(
    "query", [*CAMPAIGN.values(), *VARIANTS.values()], ids=[*CAMPAIGN, *VARIANTS]
)
def test_bypass_leaves_the_canary_untouched_and_stops_by_the_deadline(
    canary: Postgres, query: str
) -> None:
    deadline = time.monotonic() + 3
    stopped = (InputError, SourceUnavailable, DeadlineExceeded)
    with pytest.raises(stopped) as raised, enforced(deadline):
        sql_rows(query, PARAMS, canary.url, deadline)
    assert canary_value(canary) == "untouched"
    # The server's statement timeout and the client's deadline are set to the same moment;
    # whichever comes first ends the query.
    message = str(raised.value) or "stopped at the run's deadline"
    # pg_sleep(600) would hold the connection for ten minutes: the deadline ended it.
    expected = {
        CAMPAIGN["dollar-quote"]: "must be a single statement",
        CAMPAIGN["e-string"]: "must be a single statement",
        CAMPAIGN["set-timeout"]: "must be a single statement",
        VARIANTS["writing-cte"]: "must only read",
        VARIANTS["set-config"]: "stopped at the run's deadline",
        VARIANTS["tagged-dollar-do"]: "not DO",
    }[query]
    assert expected in message
    assert canary.password not in message


@pytest.mark.parametrize("query", CAMPAIGN.values(), ids=list(CAMPAIGN))
def test_validation_sees_every_statement_of_the_campaign_bypasses(query: str) -> None:
    assert sql_query_problem(query) == (
        "must be a single statement (a semicolon may only end the query)"
    )


def test_a_bypass_that_passes_validation_ends_the_run_at_its_deadline(
    tmp_path: Path, canary: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "db"
    secret.mkdir()
    (secret / "value").write_text(canary.url)
    report = sql_report(VARIANTS["set-config"])
    report["spec"]["reportType"] = "custom_query"
    code, _ = render(tmp_path, report, secret, "--timeout", "3")
    err = capsys.readouterr().err
    assert code == EX_TEMPFAIL
    assert "stopped" in err and "deadline" in err
    assert canary_value(canary) == "untouched"
    # Cancelled on the server too, not left sleeping: a cancel takes effect within moments.
    running = "1"
    for _ in range(50):
        running = canary.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        ).strip()
        if running == "0":
            break
        time.sleep(0.2)
    assert running == "0"


def test_wrong_password_is_permanent(
    tmp_path: Path, canary: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "db"
    secret.mkdir()
    (secret / "value").write_text(canary.url.replace(canary.password, "not-the-password"))
    code, _ = render(tmp_path, sql_report(), secret)
    err = capsys.readouterr().err
    assert code == EX_DATAERR
    assert "the database refused the connection" in err
    assert "password authentication failed" in err and "not-the-password" not in err


def test_duplicate_column_names_are_refused(canary: Postgres) -> None:
    with pytest.raises(InputError, match=r"column name\(s\) id more than once"):
        sql_rows("SELECT 1 AS id, 2 AS id", PARAMS, canary.url, time.monotonic() + 10)


def test_colons_in_literals_and_escaped_colons_are_not_parameters(canary: Postgres) -> None:
    query = (
        "SELECT 'at 10:30 :window_end' AS note, $q$:status$q$ AS dollar, "
        "(ARRAY[1, 2, 3])[2\\:3] AS slice, :window_start::timestamptz AS start"
    )
    (row,) = sql_rows(query, PARAMS, canary.url, time.monotonic() + 10)
    assert row == {
        "note": "at 10:30 :window_end",
        "dollar": ":status",
        "slice": [2, 3],
        "start": PARAMS.window_start,
    }
    assert sql_query_problem(query) is None


def test_only_postgresql_urls_are_accepted(canary: Postgres) -> None:
    with pytest.raises(InputError, match="sqlite:// is not supported"):
        sql_rows("SELECT 1", PARAMS, "sqlite:///tmp/x.db", time.monotonic() + 10)
