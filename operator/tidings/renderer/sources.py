"""Where rows come from: inline (in the spec), sql (SQLAlchemy) or http (a JSON document).

Errors are classified for the retry policy: a source that cannot be reached or answers with a
server error is SourceUnavailable (transient); a query, URL or document that is wrong as written
is InputError (permanent). Messages never contain the secret (connection URL, auth header).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tidings import models
from tidings.renderer.result import InputError, SourceUnavailable, redact

Row = dict[str, Any]

DEFAULT_SECRET_DIR = "/etc/tidings/source"
SOURCE_TIMEOUT_SECONDS = 30.0

# SQLSTATE classes worth a retry: connection exception, insufficient resources, operator
# intervention (includes statement timeout), transaction rollback (serialization, deadlock).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "40")


@dataclass(frozen=True)
class QueryParams:
    """The values a query may bind: the window and the filter values."""

    window_start: datetime
    window_end: datetime
    status: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    assignee: list[str] = field(default_factory=list)
    team: list[str] = field(default_factory=list)
    program: str | None = None  # spec.program; None (SQL NULL) when the report has none

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start,
            "window_end": self.window_end,
            "status": list(self.status),
            "tags": list(self.tags),
            "assignee": list(self.assignee),
            "team": list(self.team),
            "program": self.program,
        }


def secret_dir() -> Path:
    return Path(os.environ.get("TIDINGS_SOURCE_SECRET_DIR") or DEFAULT_SECRET_DIR)


def read_secret(directory: Path, what: str) -> str:
    """The mounted secret value (file `value`); trailing newlines from `echo` are dropped."""
    path = directory / "value"
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError as exc:
        raise InputError(
            f"{what}: the secret value is not mounted at {path} "
            "(set TIDINGS_SOURCE_SECRET_DIR or --secret-dir to the directory holding `value`)"
        ) from exc


def load_rows(
    source: models.Source,
    params: QueryParams,
    secret_directory: Path | None = None,
    timeout: float = SOURCE_TIMEOUT_SECONDS,
) -> list[Row]:
    """The rows of the report's source, before filtering."""
    if source.inline is not None:
        return [dict(row) for row in source.inline.rows]
    directory = secret_directory or secret_dir()
    if source.sql is not None:
        url = read_secret(directory, "source.sql.connectionSecretRef")
        return sql_rows(source.sql.query, params, url, timeout)
    if source.http is not None:
        auth = (
            read_secret(directory, "source.http.authSecretRef")
            if source.http.auth_secret_ref
            else None
        )
        return http_rows(scoped_http(source.http, params.program), auth, timeout)
    raise InputError("source: exactly one of inline, sql or http must be set")


# ------------------------------------------------------------------------------------------ sql


def sql_rows(query: str, params: QueryParams, url: str, timeout: float) -> list[Row]:
    """Run the query read-only with bound parameters; values are never put into the SQL text."""
    from sqlalchemy import create_engine, exc, text

    statement = text(query)
    available = params.as_dict()
    used = list(statement.compile().params)
    unknown = sorted(set(used) - set(available))
    if unknown:
        raise InputError(
            f"source.sql.query uses unknown parameter(s) {', '.join(':' + n for n in unknown)}; "
            f"available: {', '.join(':' + n for n in available)}"
        )
    try:
        engine = create_engine(url, connect_args=_connect_args(url, timeout))
    except Exception as error:  # ArgumentError, NoSuchModuleError, ImportError of a driver
        raise InputError(
            "source.sql.connectionSecretRef: the secret value is not a usable SQLAlchemy URL "
            f"({type(error).__name__})"
        ) from None
    try:
        try:
            connection = engine.connect()
        except exc.DBAPIError as error:
            raise SourceUnavailable(
                f"source.sql: cannot connect to the database: {_db_message(error, url)}"
            ) from None
        with connection:  # closing rolls the transaction back: nothing is ever committed
            try:
                _read_only(connection, engine.dialect.name, timeout)
                result = connection.execute(statement, {n: available[n] for n in used})
                if not result.returns_rows:
                    raise InputError("source.sql.query returned no rows: it must be a SELECT")
                return [dict(row) for row in result.mappings()]
            except exc.DBAPIError as error:
                message = _db_message(error, url)
                if _is_transient(error):
                    raise SourceUnavailable(f"source.sql: query failed: {message}") from None
                raise InputError(f"source.sql.query failed: {message}") from None
    finally:
        engine.dispose()


def _connect_args(url: str, timeout: float) -> dict[str, Any]:
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if backend in ("postgresql", "postgres", "mysql", "mariadb"):
        return {"connect_timeout": max(1, int(timeout))}
    return {}


def _read_only(connection: Any, dialect: str, timeout: float) -> None:
    """On PostgreSQL, make the transaction read-only and bound the statement time."""
    from sqlalchemy import text

    if dialect == "postgresql":
        connection.execute(text("SET TRANSACTION READ ONLY"))
        connection.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"),
            {"ms": str(int(timeout * 1000))},
        )


def _is_transient(error: Any) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    if sqlstate:
        return str(sqlstate)[:2] in _TRANSIENT_SQLSTATE_CLASSES
    return bool(error.connection_invalidated)


def _db_message(error: Any, url: str) -> str:
    """The driver's own first line (e.g. `column "x" does not exist`), without the URL."""
    original = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = original[0] if original else type(error).__name__
    return redact(first, _url_secrets(url))[:500]


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    return [url, parts.password or "", parts.netloc if parts.password else ""]


# ----------------------------------------------------------------------------------------- http


def scoped_http(http: models.HttpSource, program: str | None) -> models.HttpSource:
    """The http source with spec.program added as the query parameter `program` (replacing
    one the URL already has), so the endpoint can return that program's rows only."""
    if program is None:
        return http
    parts = urlsplit(http.url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "program"]
    query.append(("program", program))
    return http.model_copy(update={"url": urlunsplit(parts._replace(query=urlencode(query)))})


def http_rows(http: models.HttpSource, authorization: str | None, timeout: float) -> list[Row]:
    """GET the JSON document and pick the rows at rowsPath."""
    import httpx

    shown = _display_url(http.url)
    headers = {"Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    try:
        response = httpx.get(http.url, headers=headers, timeout=timeout, follow_redirects=True)
    except httpx.TimeoutException:
        raise SourceUnavailable(
            f"source.http: {shown} did not answer within {timeout:g}s"
        ) from None
    except httpx.HTTPError as error:
        message = redact(str(error), [authorization])
        raise SourceUnavailable(f"source.http: cannot reach {shown}: {message}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise SourceUnavailable(f"source.http: {shown} answered HTTP {response.status_code}")
    if response.status_code >= 400:
        raise InputError(f"source.http: {shown} answered HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise InputError(f"source.http: {shown} did not return a JSON document") from None
    return pick_rows(document, http.rows_path)


def pick_rows(document: Any, path: str) -> list[Row]:
    """Follow a dotted path (object keys, or list indexes as numbers) to a list of objects."""
    node = document
    walked: list[str] = []
    for part in [p for p in path.split(".") if p] if path else []:
        walked.append(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise InputError(
                f"source.http.rowsPath {path!r}: nothing at {'.'.join(walked)!r} in the document"
            )
    if not isinstance(node, list):
        where = f"at rowsPath {path!r}" if path else "(the document itself; set rowsPath)"
        raise InputError(f"source.http: expected a list of rows {where}, got {_kind(node)}")
    for index, row in enumerate(node):
        if not isinstance(row, dict):
            raise InputError(f"source.http: row {index} is {_kind(row)}, not an object")
    return [dict(row) for row in node]


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _display_url(url: str) -> str:
    """scheme://host/path: the query string may carry tokens, so it is never shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
