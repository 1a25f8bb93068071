"""A throwaway PostgreSQL 15 server started from the Debian binaries, for the sql source."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tidings_dev.procs import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Postgres:
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def psql(self, sql: str) -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        done = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                self.database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(done.stderr)
        return done.stdout


def _runner(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port, run as `nobody` under root
    (postgres refuses to run as root), with password auth for a report-reader user."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN}: apt-get install postgresql")
    user = "nobody" if os.geteuid() == 0 else None
    # Not under pytest's tmp dir: its parents are private to root, and `nobody` must reach it.
    base = Path(tempfile.mkdtemp(prefix="tidings-pg-"))
    data = base / "data"
    password_file = base / "pw"
    password_file.write_text("s3cret-pg-pass\n")
    if user:
        entry = pwd.getpwnam(user)
        for path in (base, password_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    subprocess.run(
        [
            *_runner(user),
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "reporter",
            "--pwfile",
            str(password_file),
            "-A",
            "scram-sha-256",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = base / "pg.log"
    subprocess.run(
        [
            *_runner(user),
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    server = Postgres(port=port, user="reporter", password="s3cret-pg-pass", database="postgres")
    try:
        yield server
    finally:
        subprocess.run(
            [*_runner(user), str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
