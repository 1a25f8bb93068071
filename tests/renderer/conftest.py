"""Fixtures for the renderer tests: real peers on loopback (SMTP servers, well-behaved and not,
with certificates for TLS, and a PostgreSQL server), from tests.support."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.pki import Pki, smtp_pki
from tests.support.postgres import Postgres, running_postgres
from tests.support.smtp_servers import FaultySmtp, Recorder, SilentServer, SmtpServer, start_smtp


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback."""
    controller, server = start_smtp(Recorder())
    yield server
    controller.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return smtp_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """Accepts TCP connections and never says a word: the SMTP greeting times out."""
    server = SilentServer()
    yield server.address
    server.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port (see running_postgres)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def drop_after_data() -> Iterator[FaultySmtp]:
    server = FaultySmtp("drop-after-data")
    yield server
    server.close()


@pytest.fixture
def drip_smtp() -> Iterator[FaultySmtp]:
    server = FaultySmtp("drip")
    yield server
    server.close()


@pytest.fixture(scope="module")
def changes_db(postgres: Postgres) -> Postgres:
    postgres.psql(
        """
        DROP TABLE IF EXISTS changes;
        CREATE TABLE changes (id text, title text, status text, completed_at timestamptz,
                              team text, assignee text, tags text[]);
        INSERT INTO changes VALUES
          ('CHG-1', 'Rotate keys', 'completed', '2024-05-07 10:00+00', 'payments', 'alice',
           '{payments,security}'),
          ('CHG-2', 'Hotfix payouts', 'rolled_back', '2024-05-08 12:30+00', 'payments', 'bob',
           '{payments}'),
          ('CHG-3', 'Reindex search', 'completed', '2024-05-08 09:00+00', 'search', 'chen',
           '{search}'),
          ('CHG-4', 'Last week''s change', 'completed', '2024-04-29 09:00+00', 'payments',
           'dana', '{payments}'),
          ('CHG-5', 'Literal status', 'completed'' OR ''1''=''1', '2024-05-09 09:00+00',
           'payments', 'emeka', '{payments}');
        """
    )
    return postgres
