"""Where rows come from: inline (in the spec), sql (PostgreSQL) or http (a JSON document).

Errors are classified for the retry policy: a source that cannot be reached or answers with a
server error is SourceUnavailable (transient); a query, URL, credential or document that is
wrong as written is InputError (permanent). Messages never contain the secret (connection URL,
auth header, query string). Every wait is bounded by the run's deadline.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from tidings import models, netguard, sqltext
from tidings.renderer.deadline import DeadlineExceeded
from tidings.renderer.deadline import check as check_deadline
from tidings.renderer.deadline import remaining as deadline_remaining
from tidings.renderer.result import InputError, SourceUnavailable, TidingsError, redact

Row = dict[str, Any]

DEFAULT_SECRET_DIR = "/etc/tidings/source"
DEFAULT_MAX_SOURCE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_SOURCE_ROWS = 200_000
MAX_REDIRECTS = 5

# SQLSTATE classes worth a retry: connection exception, insufficient resources, operator
# intervention, transaction rollback (serialization, deadlock).
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
    secret_directory: Path | None,
    deadline: float,
) -> list[Row]:
    """The rows of the report's source, before filtering; `deadline` is a time.monotonic()."""
    if source.inline is not None:
        return inline_rows(source.inline.rows)
    directory = secret_directory or secret_dir()
    limits = SourceLimits.from_environment()
    if source.sql is not None:
        url = read_secret(directory, "source.sql.connectionSecretRef")
        return sql_rows(source.sql.query, params, url, deadline, limits)
    if source.http is not None:
        auth = (
            read_secret(directory, "source.http.authSecretRef")
            if source.http.auth_secret_ref
            else None
        )
        return http_rows(scoped_http(source.http, params.program), auth, deadline, limits)
    raise InputError("source: exactly one of inline, sql or http must be set")


def inline_rows(rows: Sequence[Mapping[str, Any]]) -> list[Row]:
    """The inline rows, each with every column some row has. The apiserver drops null fields
    from stored objects, so `completed_at: null` in a manifest arrives as no key at all: a
    column absent from a row is that row's null (a column absent from every row is still an
    error, found by the report type's column check)."""
    columns = dict.fromkeys(key for row in rows for key in row)
    return [{column: row.get(column) for column in columns} for row in rows]


@dataclass(frozen=True)
class SourceLimits:
    """Platform limits for sql and http sources (renderer environment, docs/renderer.md): a
    result is counted as it arrives and refused at the first byte or row beyond a cap, so no
    more than the caps is ever held."""

    max_bytes: int = DEFAULT_MAX_SOURCE_BYTES
    max_rows: int = DEFAULT_MAX_SOURCE_ROWS
    denied: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = netguard.DEFAULT_DENIED

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SourceLimits:
        env = os.environ if env is None else env
        try:
            denied = netguard.parse_networks(env.get("TIDINGS_HTTP_DENIED_NETWORKS"))
        except ValueError as error:
            raise InputError(f"renderer configuration: {error}") from None
        return cls(
            max_bytes=_positive(env, "TIDINGS_MAX_SOURCE_BYTES", DEFAULT_MAX_SOURCE_BYTES),
            max_rows=_positive(env, "TIDINGS_MAX_SOURCE_ROWS", DEFAULT_MAX_SOURCE_ROWS),
            denied=denied,
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name) or ""
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"renderer configuration: {name} must be a positive integer, not {text!r}")
    return int(text)


def _too_many_rows(what: str, limits: SourceLimits) -> InputError:
    return InputError(
        f"{what} has more than {limits.max_rows:,} rows, the cap (TIDINGS_MAX_SOURCE_ROWS "
        "raises it): select fewer rows at the source"
    )


# ------------------------------------------------------------------------------------------ sql

# Server-side, beyond the reach of the query text: the session is read-only and every statement
# is bounded, from the connection's start-up packet (client options outrank role and database
# settings). The statement is sent as a subquery (sqltext.Query.executed) over the extended
# protocol, so the server's own grammar admits one SELECT and nothing else: no COPY, DO, SET or
# second command, whatever the text; within that SELECT a set_config() can change neither the
# running statement's timer nor a transaction that has already read. Strings are read as
# standard-conforming (a backslash is just a character), as sqltext's scanner reads them,
# whatever the role or database default.
_SESSION_OPTIONS = (
    "-c default_transaction_read_only=on -c statement_timeout={ms} "
    "-c standard_conforming_strings=on"
)

# What a server says in a FATAL start-up reply when the cause is passing, not the settings.
_TRANSIENT_STARTUP = (
    "starting up",
    "shutting down",
    "in recovery mode",
    "too many connections",
    "remaining connection slots",
)


def sql_rows(
    query: str,
    params: QueryParams,
    url: str,
    deadline: float,
    limits: SourceLimits | None = None,
) -> list[Row]:
    """Run the query read-only with bound parameters; values are never put into the SQL text.
    Only PostgreSQL: the guarantees above are its own."""
    import psycopg

    limits = limits or SourceLimits.from_environment()
    try:
        parsed = sqltext.parse(query)
    except sqltext.SqlTextError as error:
        raise InputError(f"source.sql.query {error}") from None
    available = params.as_dict()
    unknown = [name for name in parsed.names if name not in available]
    if unknown:
        raise InputError(
            f"source.sql.query uses unknown parameter(s) {', '.join(':' + n for n in unknown)}; "
            f"available: {', '.join(':' + n for n in available)} "
            "(write \\: for a colon that is not a parameter)"
        )
    conninfo = postgres_conninfo(url)
    ms = max(1, int(deadline_remaining(deadline) * 1000))
    try:
        connection = psycopg.connect(
            conninfo,
            options=_SESSION_OPTIONS.format(ms=ms),
            connect_timeout=max(2, int(deadline_remaining(deadline))),
            application_name="tidings-renderer",
        )
    except psycopg.ProgrammingError as error:  # conninfo the driver cannot parse
        raise InputError(f"{_UNUSABLE_URL}: {_db_message(error, url)}") from None
    except psycopg.Error as error:
        message = _db_message(error, url)
        if _INVALID_OPTION.search(message):
            raise InputError(
                f"source.sql.connectionSecretRef: the URL has an invalid option: {message}"
            ) from None
        if _refused_for_good(message):
            raise InputError(
                f"source.sql: the database refused the connection: {message}"
            ) from None
        raise SourceUnavailable(f"source.sql: cannot connect to the database: {message}") from None
    try:
        connection.read_only = True  # BEGIN READ ONLY as well; never committed
        values = [available[name] for name in parsed.names]
        return _fetch(connection, parsed, values, url, limits)
    except DeadlineExceeded:
        # The client's hard stop: ask the server to cancel, whatever the session settings.
        with contextlib.suppress(Exception):
            connection.cancel_safe(timeout=2)
        raise
    finally:
        connection.close()


def _fetch(
    connection: Any, parsed: sqltext.Query, values: list[Any], url: str, limits: SourceLimits
) -> list[Row]:
    import psycopg

    # stream() always uses the extended protocol (a query without parameters would otherwise
    # go as a simple query, which runs every statement in it) and receives one row at a time,
    # so the caps are checked before a second row arrives; RawCursor takes $n placeholders.
    cursor = psycopg.RawCursor(connection)
    rows: list[Row] = []
    columns: list[str] | None = None
    size = 0
    try:
        for values_row in cursor.stream(parsed.executed, values):
            if columns is None:
                columns = _column_names(cursor.description)
            size += _row_bytes(cursor.pgresult)
            if size > limits.max_bytes:
                raise InputError(
                    f"source.sql.query returns more than {limits.max_bytes:,} bytes, the cap "
                    "(TIDINGS_MAX_SOURCE_BYTES raises it): select fewer rows or columns"
                )
            if len(rows) == limits.max_rows:
                raise _too_many_rows("source.sql.query", limits)
            rows.append(dict(zip(columns, values_row, strict=True)))
    except psycopg.Error as error:
        raise _query_error(error, url) from None
    return rows


def _row_bytes(result: Any) -> int:
    """A row's size as the server sends it: each value, and a 4-byte length for each."""
    values = (result.get_value(0, column) for column in range(result.nfields))
    return sum(4 + len(value or b"") for value in values)


def _column_names(description: Any) -> list[str]:
    names = [column.name for column in description or ()]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(
            f"source.sql.query returns the column name(s) {', '.join(twice)} more than once, so "
            "one value would be lost: give each column its own name (SELECT a.id AS a_id, ...)"
        )
    return names


def _query_error(error: Any, url: str) -> TidingsError:
    message = _db_message(error, url)
    state = str(getattr(error, "sqlstate", None) or "")
    if state == "25006" or "read-only transaction" in message:
        return InputError(
            f"source.sql.query tried to write, and the source is read-only: {message}"
        )
    if state == "57014":
        return SourceUnavailable(
            f"source.sql: the query was stopped at the run's deadline ({message})"
        )
    if state[:2] in _TRANSIENT_SQLSTATE_CLASSES or not state:
        return SourceUnavailable(f"source.sql: query failed: {message}")
    return InputError(f"source.sql.query failed: {message}")


_UNUSABLE_URL = (
    "source.sql.connectionSecretRef: the secret value is not a usable PostgreSQL URL "
    "(postgresql://user:password@host:5432/database)"
)


def postgres_conninfo(url: str) -> str:
    """The libpq URI for a SQLAlchemy-style PostgreSQL URL (any +driver suffix is dropped)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise InputError(_UNUSABLE_URL)
    if scheme.split("+", 1)[0].lower() not in ("postgresql", "postgres"):
        raise InputError(
            f"source.sql.connectionSecretRef: {scheme}:// is not supported; the sql source "
            "reads PostgreSQL only (postgresql://...), whose read-only session and statement "
            "timeout are what keep a query from writing or outliving the run"
        )
    return f"postgresql://{rest}"


# libpq's words for a connection option it cannot use (sslmode=bogus, port=x): the same on
# every retry.
_INVALID_OPTION = re.compile(
    r"invalid \S+ value|invalid port number|invalid integer value|invalid connection option"
)


def _refused_for_good(message: str) -> bool:
    """A FATAL start-up reply (wrong password, no such database or role, pg_hba) will be the
    same on every retry; a refused or silent port, or a server starting up, may not."""
    return "FATAL" in message and not any(word in message for word in _TRANSIENT_STARTUP)


def _db_message(error: Any, url: str) -> str:
    """The driver's own words (e.g. `column "x" does not exist`), without the URL."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else type(error).__name__
    return redact(first, _url_secrets(url))[:500]


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return [url]
    return [url, password or "", parts.netloc if password else ""]


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


def http_rows(
    http: models.HttpSource,
    authorization: str | None,
    deadline: float,
    limits: SourceLimits | None = None,
) -> list[Row]:
    """GET the JSON document and pick the rows at rowsPath."""
    limits = limits or SourceLimits.from_environment()
    body = http_get(http.url, authorization, deadline, limits)
    rows = pick_rows(_parse_json(body, display_url(http.url)), http.rows_path)
    if len(rows) > limits.max_rows:
        raise _too_many_rows(f"source.http: the document at {display_url(http.url)}", limits)
    return rows


def http_get(
    url: str, authorization: str | None, deadline: float, limits: SourceLimits | None = None
) -> bytes:
    """The body of a GET, following at most MAX_REDIRECTS redirects, each to an http(s) URL on
    an allowed address; read in chunks up to the size limit; within the run's deadline."""
    import httpx

    limits = limits or SourceLimits.from_environment()
    _redact_client_logs()
    # Only the codings _Decoder reads, each bounded as it decodes.
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
    if authorization:
        headers["Authorization"] = authorization
    secrets = [authorization]
    with httpx.Client(timeout=max(1.0, deadline_remaining(deadline))) as client:
        for _ in range(MAX_REDIRECTS + 1):
            shown = display_url(url)
            _check_destination(url, limits)
            try:
                with client.stream("GET", url, headers=headers) as response:
                    if response.is_redirect:
                        target = str(response.next_request.url) if response.next_request else ""
                        url = _redirect_target(url, response.headers.get("location", ""), target)
                        if urlsplit(url).netloc != urlsplit(str(response.url)).netloc:
                            headers.pop("Authorization", None)  # never to another host
                        continue
                    _check_status(response.status_code, shown)
                    return _read_capped(response, limits.max_bytes, shown, deadline)
            except httpx.InvalidURL as error:
                raise InputError(f"source.http.url: {shown} is not a usable URL: {error}") from None
            except httpx.TimeoutException:
                raise SourceUnavailable(f"source.http: {shown} did not answer in time") from None
            except httpx.HTTPError as error:
                message = redact(str(error), secrets)
                raise SourceUnavailable(f"source.http: cannot reach {shown}: {message}") from None
    raise InputError(f"source.http: more than {MAX_REDIRECTS} redirects from {display_url(url)}")


def _redirect_target(current: str, location: str, resolved: str) -> str:
    target = resolved or urljoin(current, location)
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ("http", "https"):
        raise InputError(
            f"source.http: {display_url(current)} redirected to a {scheme or 'relative'}: URL; "
            "only http:// and https:// redirects are followed"
        )
    return target


def _check_destination(url: str, limits: SourceLimits) -> None:
    host = urlsplit(url).hostname or ""
    if problem := netguard.ambiguous_ipv4(host):
        raise InputError(f"source.http.url: {display_url(url)}: {problem}")
    refused = netguard.refused_address(host, limits.denied)
    if refused:
        raise InputError(
            f"source.http: {display_url(url)} resolves to {refused}, a denied address "
            "(link-local and cloud metadata by default; TIDINGS_HTTP_DENIED_NETWORKS)"
        )


def _check_status(status: int, shown: str) -> None:
    if status >= 500 or status == 429:
        raise SourceUnavailable(f"source.http: {shown} answered HTTP {status}")
    if status >= 400:
        raise InputError(f"source.http: {shown} answered HTTP {status}")


def _read_capped(response: Any, max_bytes: int, shown: str, deadline: float) -> bytes:
    """The decoded body, refused at the first byte beyond the cap: the encoded bytes are read
    raw and decoded here, never more than the room left at a time."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise InputError(_too_large(shown, max_bytes))
    decoder = _Decoder(response.headers.get_list("content-encoding"), shown)
    body = bytearray()
    for chunk in response.iter_raw(64 * 1024):
        for data in decoder.decode(chunk, max_bytes - len(body) + 1):
            body += data
            if len(body) > max_bytes:
                raise InputError(_too_large(shown, max_bytes))
        check_deadline(deadline)
    return bytes(body)


class _Decoder:
    """One Content-Encoding, gzip or deflate, decoded with a bound on each output; stacked
    codings are refused (each layer multiplies what a small body can expand to)."""

    def __init__(self, headers: list[str], shown: str) -> None:
        codings = [
            coding.strip().lower()
            for header in headers
            for coding in header.split(",")
            if coding.strip().lower() not in ("", "identity")
        ]
        if len(codings) > 1:
            raise InputError(
                f"source.http: {shown} answered with stacked Content-Encodings "
                f"({', '.join(codings)}): only one layer of gzip or deflate is read"
            )
        if codings and codings[0] not in ("gzip", "x-gzip", "deflate"):
            raise InputError(
                f"source.http: {shown} answered with Content-Encoding {codings[0]}: "
                "only gzip and deflate are read"
            )
        self.coding = codings[0] if codings else ""
        # gzip: a gzip header; deflate: a zlib header or, as servers also send it, raw deflate.
        self.inflate = zlib.decompressobj(31 if self.coding.endswith("gzip") else 15)
        self.started = False
        self.shown = shown

    def decode(self, chunk: bytes, room: int) -> Iterator[bytes]:
        """The decoded bytes of `chunk`, at most `room` (> 0) bytes in all."""
        if not self.coding:
            yield chunk
            return
        data = chunk
        while data:
            try:
                out = self.inflate.decompress(data, room)
            except zlib.error:
                if self.coding == "deflate" and not self.started:
                    self.started = True
                    self.inflate = zlib.decompressobj(-15)
                    continue
                raise InputError(
                    f"source.http: {self.shown} sent a body that is not valid {self.coding}"
                ) from None
            self.started = True
            data = self.inflate.unconsumed_tail
            yield out
            room -= len(out)
            if room <= 0 or self.inflate.eof:  # past the cap: the caller refuses the body
                return


def _too_large(shown: str, max_bytes: int) -> str:
    return (
        f"source.http: the document at {shown} is larger than {max_bytes:,} bytes "
        "(TIDINGS_MAX_SOURCE_BYTES): select fewer rows at the source"
    )


def _parse_json(body: bytes, shown: str) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise InputError(
            f"source.http: the JSON document from {shown} is nested too deeply"
        ) from None
    except ValueError:
        raise InputError(f"source.http: {shown} did not return a JSON document") from None


class _QueryRedactor(logging.Filter):
    """httpx logs each request's full URL at INFO; query strings may carry tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _QUERY.sub(r"\1?…", message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_QUERY = re.compile(r"(\bhttps?://[^\s?#\"']*)\?[^\s#\"']*")
_REDACTOR = _QueryRedactor()


def _redact_client_logs() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


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


def display_url(url: str) -> str:
    """scheme://host/path: the query string may carry tokens, so it is never shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
