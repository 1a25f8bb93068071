"""Validation of a ScheduledReport spec: the same rules at admission, in the operator and in
`tidings validate`.

Structure (types, enums, lengths, required fields) comes from the pydantic models; the semantic
rules the CRD schema cannot express live here: cron syntax as both croniter and the Kubernetes
CronJob controller understand it, IANA zones, address syntax and header injection, the subject
placeholders, a complete source. Every problem names its field path and the rule it breaks.
`validate_spec` never raises: bad input is what it exists to describe.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import functools
import json
import re
import string
import urllib.parse
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import email_validator
import pydantic
from croniter import CroniterBadDateError, croniter

from tidings import groups, models, netguard, sendwhen, sqltext
from tidings.schedule import MACROS, parse_bound
from tidings.snapshot import spec_size_problem


@dataclass(frozen=True)
class Problem:
    """One broken rule: `path` like spec.recipients.to[2], `message` the rule it breaks."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ValidationResult:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """All errors on one line, as admission responses and status messages show them.
        Messages never contain "; ", so the line splits back into problems."""
        return "; ".join(str(problem) for problem in self.errors)


# What the webhook checks beyond the CRD schema, for docs/api.md; the code below is the truth.
ADMISSION_RULES: tuple[tuple[str, str], ...] = (
    (
        "spec.schedule",
        "empty, or exactly five space-separated fields (minute hour day-of-month month "
        "day-of-week) that both croniter and the Kubernetes CronJob controller accept: numbers "
        "in range (day-of-week 0-6, Sunday is 0), JAN-DEC and SUN-SAT names, `*`, `?`, ranges "
        "`a-b` (not backwards), lists and steps `/n` (n >= 1); or one of the macros "
        + ", ".join(f"`{m}`" for m in MACROS)
        + " (midnight or the full hour in timeZone; `@weekly` is Sunday); no `@every`, no "
        "`TZ=`/`CRON_TZ=` prefix, no Quartz extensions (`L`, `W`, `#`); it must fire at least once",
    ),
    ("spec.timeZone", "a zone name from the IANA database, such as `Europe/Berlin` or `UTC`"),
    ("spec.title", "one line, without control characters (it goes into the subject)"),
    (
        "spec.recipients",
        "1 to 50 addresses across to, cc and bcc, none repeated (compared case-insensitively)",
    ),
    (
        "spec.recipients.to[i], .cc[i], .bcc[i]",
        "a bare ASCII address (`name@example.com`) that email-validator accepts without DNS "
        "look-ups: no display name, quotes, comments, spaces, lists, line breaks, control "
        "characters or MIME encoded-words; internationalized domains in punycode (`xn--`); at "
        "most 64 characters before the @. Or `@name` (a name of at least 2 characters): the "
        "RecipientGroup `name` of the report's namespace (it need not exist yet; a run without "
        "it fails naming it), at most 50 addresses in all once the groups that exist are "
        "expanded",
    ),
    (
        "spec.owners[i]",
        f"at most {models.MAX_OWNERS}, each a bare address by the recipients' rule, none repeated",
    ),
    (
        "spec.delivery.subjectTemplate",
        "one line; only the placeholders `{name}`, `{date}` and `{window}`, without format "
        "specs or conversions; `{{` and `}}` for literal braces. Without `{date}` or `{window}` "
        "it is accepted with a warning",
    ),
    (
        "spec.delivery.pdfVariant",
        "only with pdf among spec.delivery.attachments (the variant applies to the PDF)",
    ),
    ("spec.source", "exactly one of inline, sql or http"),
    (
        "spec.source.sql.query",
        "one row-returning SELECT statement as PostgreSQL's own scanner and parser read it "
        "(pglast): SELECT, WITH ... SELECT, VALUES or TABLE, without SELECT ... INTO, "
        "FOR UPDATE/SHARE or INSERT, UPDATE, DELETE or MERGE anywhere (a data-modifying WITH); "
        "a trailing `;` is allowed; only the parameters `:window_start`, `:window_end`, "
        "`:program`, `:status`, `:tags`, `:assignee`, `:team`, and `\\:` for a colon outside "
        "quotes that is not a parameter",
    ),
    (
        "spec.source.http.url",
        "an absolute http(s) URL with a host and no credentials (use authSecretRef), not at a "
        "link-local or cloud metadata address (nor at one carried in an IPv6 address), an IPv4 "
        "address written as four decimal numbers (not 0177.0.0.1 or 0x7f.1)",
    ),
    (
        "spec.*SecretRef, spec.templateRef",
        "by name (and key) only: the Secret or ConfigMap is always in the report's namespace",
    ),
    (
        "spec.filters.window",
        "exactly one of last, previous or from/to; from and to are ISO 8601 dates or "
        "date-times between the years 1900 and 9998, set together, and to is after from when "
        "both are read in the report's time zone",
    ),
)


def validate_spec(spec: Mapping[str, Any]) -> ValidationResult:
    """Check a spec as it arrives from the API (camelCase keys) against every rule."""
    result = ValidationResult()
    if not isinstance(spec, Mapping):
        result.errors.append(Problem("spec", "must be an object"))
        return result
    with contextlib.suppress(RecursionError):  # a self-referencing YAML document: see below
        spec = _without_nulls(spec)
    structural = _structural_problems(spec)
    result.errors.extend(structural)
    broken = [p.path for p in structural]
    for problem in _semantic_problems(spec, result.warnings):
        # A field that already has the wrong type or length gets no second, derived complaint.
        if not any(_covers(path, problem.path) for path in broken):
            result.errors.append(problem)
    return result


def _without_nulls(value: Any) -> Any:
    """The spec as the apiserver stores it: no field of the schema is nullable, so a null
    field (`schedule: null`) is dropped, as if absent, before any rule sees it."""
    if isinstance(value, Mapping):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _covers(broken: str, path: str) -> bool:
    return path == broken or path.startswith((broken + ".", broken + "["))


# ---------------------------------------------------------------------------------- structure


def _structural_problems(spec: Mapping[str, Any]) -> list[Problem]:
    try:
        # Through JSON and strict: "3" is not an integer and "true" not a boolean, as in the API.
        document = json.dumps(spec, default=_json_default)
    except (TypeError, ValueError, RecursionError) as exc:
        return [Problem("spec", f"must be a JSON document ({_one_clause(str(exc))})")]
    try:
        models.ScheduledReportSpec.model_validate_json(document, strict=True)
    except pydantic.ValidationError as exc:
        return [Problem(_path(e["loc"]), _one_clause(_message(e))) for e in exc.errors()]
    return []


def _json_default(value: object) -> object:
    """Views that are not dicts (kopf's bodies) become dicts; YAML loaders turn unquoted dates
    into date objects, which kubectl would have sent as strings."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _one_clause(text: str) -> str:
    """Third-party wording on one line and without "; ", which separates problems."""
    return " ".join(text.split()).replace("; ", ", ")


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _path(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            path += f".{part}"
        else:
            # Any other key is quoted, with ';' escaped, so no path can break the "; "-joined
            # summary (an unknown field may be named anything).
            path += "[" + json.dumps(part).replace(";", "\\u003b") + "]"
    return path


_PATTERN_RULES = {
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$": (
        "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit"
    ),
    r"^[-._a-zA-Z0-9]+$": "must be a Secret or ConfigMap key: letters, digits, '-', '_' and '.'",
    r"^[1-9][0-9]{0,3}[dh]$": "must be a number of days or hours, like 7d or 12h",
    r"^https?://": "must be an http:// or https:// URL",
}

_TYPE_RULES = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "missing": "is required",
    "extra_forbidden": "unknown field",
}


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx, loc = error["type"], error.get("ctx") or {}, error["loc"]
    if kind == "extra_forbidden" and len(loc) >= 2 and str(loc[-2]).endswith("Ref"):
        return (
            f"unknown field: {loc[-2]} refers to an object by name only, "
            "in the report's own namespace"
        )
    if kind in _TYPE_RULES:
        return _TYPE_RULES[kind]
    if kind == "string_too_short":
        n = ctx["min_length"]
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_long":
        return f"must have at most {ctx['max_length']} items"
    if kind == "string_pattern_mismatch":
        return _PATTERN_RULES.get(ctx["pattern"], f"must match {ctx['pattern']}")
    if kind == "enum":
        return f"must be one of {ctx['expected']}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


# ----------------------------------------------------------------------------------- semantics


def _semantic_problems(spec: Mapping[str, Any], warnings: list[str]) -> Iterator[Problem]:
    """Rules beyond the schema, applied to whatever parts of the spec have the right shape."""
    if isinstance(title := spec.get("title"), str) and _has_control(title):
        yield Problem("spec.title", "must be one line without control characters")
    if isinstance(schedule := spec.get("schedule"), str):
        yield from (Problem("spec.schedule", m) for m in schedule_problems(schedule))
    if isinstance(zone := spec.get("timeZone"), str) and (message := time_zone_problem(zone)):
        yield Problem("spec.timeZone", message)
    if isinstance(recipients := spec.get("recipients"), Mapping):
        yield from _recipient_problems(recipients)
    if isinstance(owners := spec.get("owners"), list):
        yield from _owner_problems(owners)
    delivery = spec.get("delivery")
    if isinstance(delivery, Mapping) and isinstance(
        subject := delivery.get("subjectTemplate"), str
    ):
        path = "spec.delivery.subjectTemplate"
        problems = subject_problems(subject)
        yield from (Problem(path, m) for m in problems)
        if not problems and not {"date", "window"} & set(_placeholders(subject)):
            warnings.append(
                f"{path}: has no {{date}} or {{window}} placeholder, so every run sends the "
                "same subject and mail clients may thread the reports together"
            )
    if (
        isinstance(delivery, Mapping)
        and delivery.get("attachCsv") is True
        and delivery.get("attachments")
    ):
        yield Problem(
            "spec.delivery.attachCsv",
            "is the older form of attachments: with attachments set, list csv there and "
            "drop attachCsv",
        )
    if (
        isinstance(delivery, Mapping)
        and delivery.get("pdfVariant")
        and isinstance(kinds := delivery.get("attachments"), list)
        and "pdf" not in kinds
    ):
        yield Problem(
            "spec.delivery.pdfVariant",
            "applies to the PDF: add pdf to spec.delivery.attachments or drop pdfVariant",
        )
    if isinstance(delivery, Mapping) and isinstance(kinds := delivery.get("attachments"), list):
        repeated = sorted({k for k in kinds if isinstance(k, str) and kinds.count(k) > 1})
        if repeated:
            yield Problem(
                "spec.delivery.attachments", f"lists {', '.join(repeated)} more than once"
            )
    if isinstance(source := spec.get("source"), Mapping):
        yield from _source_problems(source)
    if message := spec_size_problem(spec):
        yield Problem("spec", message)
    filters = spec.get("filters")
    if isinstance(filters, Mapping) and isinstance(window := filters.get("window"), Mapping):
        zone = spec.get("timeZone") or "UTC"
        zone = zone if isinstance(zone, str) and time_zone_problem(zone) is None else "UTC"
        yield from _window_problems(window, zone)
    yield from scope_problems(spec)
    yield from send_when_problems(spec)
    yield from channel_problems(spec)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _has_control(text: str) -> bool:
    return bool(_CONTROL.search(text))


# -- schedule


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


_CRON_FIELDS = (
    _CronField("minute", 0, 59),
    _CronField("hour", 0, 23),
    _CronField("day-of-month", 1, 31),
    _CronField(
        "month",
        1,
        12,
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    ),
    _CronField("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
_CRON_PART = re.compile(r"^(?:(?P<any>[*?])|(?P<start>\w+)(?:-(?P<end>\w+))?)(?:/(?P<step>\d+))?$")
# A fixed start keeps validation independent of the clock; 8 years spans every leap-day pattern.
_CRON_PROBE_START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def schedule_problems(schedule: str) -> list[str]:
    """Rules for spec.schedule: what both croniter (next fire time) and the Kubernetes CronJob
    controller (robfig/cron's standard parser) accept: five fields or a macro, no TZ prefix."""
    if schedule == "" or schedule.strip() in MACROS:
        return []
    if "TZ=" in schedule.upper():
        return ["must not carry a TZ= or CRON_TZ= prefix (set spec.timeZone instead)"]
    if schedule.strip().startswith("@"):
        return [
            f"the macro {schedule.strip().split()[0]!r} is not supported: use one of "
            + ", ".join(MACROS)
            + " (lower-case), or write the five fields, e.g. '0 9 * * 1' for Mondays at 09:00"
        ]
    if re.search(r"[^ -~]", schedule):
        return ["fields must be separated by spaces, without tabs, line breaks or other characters"]
    fields = schedule.split()
    if len(fields) != 5:
        return [
            "must have exactly five space-separated fields "
            f"(minute hour day-of-month month day-of-week), found {len(fields)}"
        ]
    problems = [
        problem
        for text, spec in zip(fields, _CRON_FIELDS, strict=True)
        for problem in _cron_field_problems(text, spec)
    ]
    if problems:
        return problems
    if not croniter.is_valid(schedule):
        return ["is not a valid cron expression"]
    try:
        croniter(schedule, _CRON_PROBE_START).get_next(dt.datetime)
    except (ValueError, KeyError, CroniterBadDateError):
        return ["never fires: no date matches its day-of-month and month"]
    return []


def _cron_field_problems(text: str, spec: _CronField) -> Iterator[str]:
    for part in text.split(","):
        match = _CRON_PART.match(part)
        if not match:
            yield f"{spec.name} field: '{part}' is not a value, range (a-b), '*' or step (x/n)"
            continue
        if match["step"] is not None and int(match["step"]) == 0:
            yield f"{spec.name} field: step in '{part}' must be at least 1"
        if match["any"]:
            continue
        values = []
        for token in (match["start"], match["end"]):
            if token is None:
                continue
            value = _cron_value(token, spec)
            if value is None:
                hint = f" or a name like {spec.names[1]}" if spec.names else ""
                yield f"{spec.name} field: '{token}' must be from {spec.low} to {spec.high}{hint}"
            else:
                values.append(value)
        if len(values) == 2 and values[0] > values[1]:
            yield f"{spec.name} field: range '{part}' must not run backwards"


def _cron_value(token: str, spec: _CronField) -> int | None:
    if token.isdigit() and token.isascii():
        value = int(token)
        return value if spec.low <= value <= spec.high else None
    upper = token.upper()
    return spec.low + spec.names.index(upper) if upper in spec.names else None


# -- time zone


@functools.cache
def _zones() -> frozenset[str]:
    # localtime and posixrules are files in the zone directory, not zone names.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"})


def time_zone_problem(zone: str) -> str | None:
    """Rule for spec.timeZone: a name from the IANA database, like Europe/Berlin or UTC."""
    if zone in _zones():
        return None
    message = "must be an IANA time zone name, like Europe/Berlin or UTC"
    close = difflib.get_close_matches(zone, sorted(_zones()), n=1) if len(zone) <= 64 else []
    return f"{message} (did you mean {close[0]}?)" if close else message


# -- recipients


def address_problem(address: str) -> str | None:
    """Rule for one recipient: a bare, ASCII address that email-validator accepts (syntax only,
    no DNS) and that cannot smuggle headers or extra recipients into the message."""
    if _has_control(address):
        return "must not contain line breaks or control characters (header injection)"
    if not address.isascii():
        return "must be ASCII (write internationalized domains in punycode, xn--...)"
    if any(c in address for c in ' <>"(),;:[]\\'):
        return (
            "must be a bare address like name@example.com: no display name, quotes, comments, "
            "spaces or lists"
        )
    if "=?" in address:
        return "must not contain MIME encoded-words (=?...?=)"
    try:
        email_validator.validate_email(
            address,
            check_deliverability=False,
            strict=True,  # the RFC 5321 limit of 64 characters before the @
            allow_smtputf8=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
        )
    except email_validator.EmailNotValidError as exc:
        return f"is not a valid email address: {_one_clause(str(exc))}"
    return None


def recipient_problem(entry: str) -> str | None:
    """Rule for one entry of to, cc or bcc: an address, or @ and a RecipientGroup name."""
    name = groups.group_name(entry)
    return address_problem(entry) if name is None else groups.name_problem(name)


def validate_group_spec(spec: Mapping[str, Any]) -> ValidationResult:
    """A RecipientGroup's spec: the structure, then every member as a report's recipient is
    checked (bare, ASCII, no header injection), each once."""
    result = ValidationResult()
    if not isinstance(spec, Mapping):
        result.errors.append(Problem("spec", "must be an object"))
        return result
    try:
        document = json.dumps(spec, default=_json_default)
        models.RecipientGroupSpec.model_validate_json(document, strict=True)
    except pydantic.ValidationError as exc:
        result.errors.extend(
            Problem(_path(e["loc"]), _one_clause(_message(e))) for e in exc.errors()
        )
    except (TypeError, ValueError, RecursionError) as exc:
        result.errors.append(Problem("spec", f"must be a JSON document ({_one_clause(str(exc))})"))
    addresses = spec.get("addresses")
    seen: dict[str, str] = {}
    for index, address in enumerate(addresses if isinstance(addresses, list) else []):
        path = f"spec.addresses[{index}]"
        if not isinstance(address, str):
            continue
        if message := address_problem(address):
            result.errors.append(Problem(path, message))
        if address.lower() in seen:
            result.errors.append(
                Problem(path, f"duplicates {seen[address.lower()]} (compared case-insensitively)")
            )
        seen.setdefault(address.lower(), path)
    return result


def _recipient_problems(recipients: Mapping[str, Any]) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    total = 0
    for kind in ("to", "cc", "bcc"):
        addresses = recipients.get(kind)
        if not isinstance(addresses, list):
            continue
        total += len(addresses)
        for index, address in enumerate(addresses):
            if not isinstance(address, str):
                continue
            path = f"spec.recipients.{kind}[{index}]"
            if message := recipient_problem(address):
                yield Problem(path, message)
            key = address.lower()
            if key in seen:
                yield Problem(
                    path,
                    f"duplicates {seen[key]}: an address may appear only once across to, cc "
                    "and bcc (compared case-insensitively)",
                )
            else:
                seen[key] = path
    if total > models.MAX_RECIPIENTS:
        yield Problem(
            "spec.recipients",
            f"at most {models.MAX_RECIPIENTS} recipients across to, cc and bcc, found {total}",
        )
    if total == 0:
        yield Problem("spec.recipients", "at least one recipient is required in to, cc or bcc")


def _owner_problems(owners: list[Any]) -> Iterator[Problem]:
    """spec.owners: the recipients' address rule, at most MAX_OWNERS, none repeated."""
    seen: dict[str, str] = {}
    for index, address in enumerate(owners):
        if not isinstance(address, str):
            continue
        path = f"spec.owners[{index}]"
        if message := address_problem(address):
            yield Problem(path, message)
        elif address.lower() in seen:
            yield Problem(path, f"duplicates {seen[address.lower()]} (compared case-insensitively)")
        else:
            seen[address.lower()] = path
    if len(owners) > models.MAX_OWNERS:
        yield Problem("spec.owners", f"at most {models.MAX_OWNERS} owners, found {len(owners)}")


# -- subject


_FORMATTER = string.Formatter()
SUBJECT_PLACEHOLDERS = ("name", "date", "window")


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]


def subject_problems(template: str) -> list[str]:
    """Rules for spec.delivery.subjectTemplate: one line, only {name}, {date} and {window}."""
    if _has_control(template):
        return ["must be one line without control characters (header injection)"]
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        reason = _one_clause(str(exc))
        return [f"is not a valid template ({reason}): write {{{{ and }}}} for literal braces"]
    problems = []
    for _, name, format_spec, conversion in parsed:
        if name is None:
            continue
        if name not in SUBJECT_PLACEHOLDERS:
            problems.append(
                f"unknown placeholder {{{name}}}: only {{name}}, {{date}} and {{window}} are "
                "allowed"
            )
        elif format_spec or conversion:
            problems.append(f"placeholder {{{name}}} takes no format or conversion")
    return problems


# -- source


_SOURCE_KINDS = ("inline", "sql", "http")


def _source_problems(source: Mapping[str, Any]) -> Iterator[Problem]:
    kinds = [kind for kind in _SOURCE_KINDS if source.get(kind) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) if kinds else "none"
        yield Problem(
            "spec.source", f"exactly one of inline, sql or http must be set, found {found}"
        )
    sql, http = source.get("sql"), source.get("http")
    query = sql.get("query") if isinstance(sql, Mapping) else None
    if isinstance(query, str) and (message := sql_query_problem(query)):
        yield Problem("spec.source.sql.query", message)
    url = http.get("url") if isinstance(http, Mapping) else None
    if isinstance(url, str) and (message := http_url_problem(url)):
        yield Problem("spec.source.http.url", message)


def sql_query_problem(query: str) -> str | None:
    """Rule for spec.source.sql.query: one row-returning SELECT as PostgreSQL's own scanner
    and parser read it (sqltext), using only the parameters the renderer binds."""
    try:
        parsed = sqltext.parse(query)
    except sqltext.SqlTextError as exc:
        return _one_clause(str(exc))
    unknown = [name for name in parsed.names if name not in SQL_PARAMETERS]
    if unknown:
        return (
            f"uses unknown parameter(s) {', '.join(':' + n for n in unknown)}, available: "
            f"{', '.join(':' + n for n in SQL_PARAMETERS)} (write \\: for a literal colon)"
        )
    return None


SQL_PARAMETERS = ("window_start", "window_end", "status", "tags", "assignee", "team", "program")


def http_url_problem(url: str) -> str | None:
    """Rule for spec.source.http.url: an absolute http(s) URL without credentials in it."""
    if _has_control(url) or " " in url:
        return "must not contain spaces or control characters"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        return f"is not a valid URL ({_one_clause(str(exc))})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return (
            "must not contain credentials: put the Authorization value in a Secret (authSecretRef)"
        )
    if problem := netguard.ambiguous_ipv4(parts.hostname):
        return problem
    if address := netguard.denied_literal(parts.hostname):
        return (
            f"must not point at {address}, a link-local or cloud metadata address "
            "(the renderer refuses these, and redirects to them)"
        )
    return None


# -- window


def _window_problems(window: Mapping[str, Any], zone: str) -> Iterator[Problem]:
    """The renderer's own parsing (schedule.parse_bound in the report's zone) decides."""
    path = "spec.filters.window"
    kinds = [
        window.get("last") is not None,
        window.get("previous") is not None,
        window.get("from") is not None or window.get("to") is not None,
    ]
    if sum(kinds) != 1:
        yield Problem(path, "exactly one of last, previous or from/to must be set")
    if (window.get("from") is None) != (window.get("to") is None):
        yield Problem(path, "from and to must be set together")
    bounds = {}
    for key in ("from", "to"):
        value = window.get(key)
        if isinstance(value, str):
            try:
                parsed = parse_bound(value, zoneinfo.ZoneInfo(zone), key)
                parsed.astimezone(dt.UTC)
            except ValueError:
                yield Problem(f"{path}.{key}", "must be an ISO 8601 date or date-time")
                continue
            except OverflowError:
                parsed = None
            if parsed is None or not WINDOW_YEARS[0] <= parsed.year <= WINDOW_YEARS[1]:
                yield Problem(
                    f"{path}.{key}",
                    f"must be between the years {WINDOW_YEARS[0]} and {WINDOW_YEARS[1]}",
                )
            else:
                bounds[key] = parsed
    start, end = bounds.get("from"), bounds.get("to")
    if start and end and start >= end:
        yield Problem(f"{path}.to", "must be after from")


# Room on both sides for zone offsets and the chart's period arithmetic.
WINDOW_YEARS = (1900, 9998)


# -- program scope and report-type options


# What scope_problems checks, for docs/api.md (listed after ADMISSION_RULES).
SCOPE_RULES: tuple[tuple[str, str], ...] = (
    (
        "spec.program",
        f"required for {', '.join(models.PROGRAM_SCOPED_TYPES)}: "
        f"{models.PROGRAM_REQUIRED_WHY}. Refused for "
        f"{', '.join(models.PROGRAM_REFUSED_TYPES)}: {models.PROGRAM_REFUSED_WHY}. One line, "
        "without control characters",
    ),
    ("spec.customQuery", "only with reportType custom_query"),
)


def scope_problems(spec: Mapping[str, Any]) -> Iterator[Problem]:
    """spec.program against the report type (why is in the message: `tidings validate`
    prints it), and options that belong to another report type."""
    report_type = spec.get("reportType")
    program = spec.get("program")
    if report_type in models.PROGRAM_SCOPED_TYPES and program is None:
        yield Problem(
            "spec.program",
            f"is required for reportType {report_type}: {models.PROGRAM_REQUIRED_WHY}",
        )
    if report_type in models.PROGRAM_REFUSED_TYPES and program is not None:
        yield Problem(
            "spec.program",
            f"must not be set for reportType {report_type}: {models.PROGRAM_REFUSED_WHY}",
        )
    if isinstance(program, str) and _has_control(program):
        yield Problem("spec.program", "must be one line without control characters")
    if spec.get("customQuery") is not None and report_type != models.ReportType.CUSTOM_QUERY:
        yield Problem(
            "spec.customQuery",
            f"is only for reportType custom_query, not {report_type} (remove it)",
        )
    query = spec.get("customQuery")
    rollup = query.get("rollup") if isinstance(query, Mapping) else None
    aggregates = rollup.get("aggregates") if isinstance(rollup, Mapping) else None
    for index, aggregate in enumerate(aggregates if isinstance(aggregates, list) else []):
        if (
            isinstance(aggregate, Mapping)
            and aggregate.get("function") in ("sum", "avg", "min", "max")
            and aggregate.get("column") is None
        ):
            yield Problem(
                f"spec.customQuery.rollup.aggregates[{index}].column",
                f"is required for {aggregate['function']}: name the numeric column",
            )


def send_when_problems(spec: Mapping[str, Any]) -> Iterator[Problem]:
    """spec.delivery.sendWhen: not contradicted by skipIfEmpty, and a threshold that parses and
    names only figures of the report's type."""
    delivery = spec.get("delivery")
    if not isinstance(delivery, Mapping) or not isinstance(
        when := delivery.get("sendWhen"), Mapping
    ):
        return
    mode = when.get("mode", sendwhen.ALWAYS)
    if delivery.get("skipIfEmpty") is True and mode != sendwhen.NON_EMPTY:
        yield Problem(
            "spec.delivery.skipIfEmpty",
            f"is the older form of sendWhen mode nonEmpty and contradicts mode {mode}: "
            "drop skipIfEmpty",
        )
    threshold = when.get("threshold")
    path = "spec.delivery.sendWhen.threshold"
    if mode == sendwhen.THRESHOLD and threshold is None:
        yield Problem(path, "is required for mode threshold: a condition such as rows > 0")
    elif mode != sendwhen.THRESHOLD and threshold is not None:
        yield Problem(path, "is only for mode threshold")
    elif isinstance(threshold, str) and isinstance(kind := spec.get("reportType"), str):
        yield from (Problem(path, message) for message in sendwhen.problems(threshold, kind))


def webhook_url_problem(url: str) -> str | None:
    """Rule for a webhook channel's url: an absolute https URL without credentials, not at a
    link-local or metadata address."""
    problem = http_url_problem(url)
    if problem is not None and "credentials" in problem:
        return "must not contain credentials: the signature (signingSecretRef) authenticates"
    if problem is not None:
        return problem.replace("http:// or https:// URL", "https:// URL")
    if urllib.parse.urlsplit(url).scheme != "https":
        return "must be an https:// URL: the summary and its signature go over TLS only"
    return None


CHANNEL_KINDS = ("webhook", "slack", "teams")


def teams_host_problem(host: str) -> str | None:
    """Rule for a Teams channel's host (a host name by the schema's pattern): what
    webhook_url_problem says of https://<host>/, a link-local or metadata address."""
    return webhook_url_problem(f"https://{host}/")


def channel_problems(spec: Mapping[str, Any]) -> Iterator[Problem]:
    """spec.delivery.channels: exactly one kind each; each webhook's url; each Teams host."""
    delivery = spec.get("delivery")
    channels = delivery.get("channels") if isinstance(delivery, Mapping) else None
    if not isinstance(channels, list):
        return
    for i, channel in enumerate(channels):
        if not isinstance(channel, Mapping):
            continue
        kinds = [kind for kind in CHANNEL_KINDS if channel.get(kind) is not None]
        if len(kinds) != 1:
            yield Problem(
                f"spec.delivery.channels[{i}]",
                "set exactly one of webhook, slack and teams"
                + (f" (found {', '.join(kinds)})" if kinds else ""),
            )
        hook = channel.get("webhook")
        url = hook.get("url") if isinstance(hook, Mapping) else None
        if isinstance(url, str) and (message := webhook_url_problem(url)):
            yield Problem(f"spec.delivery.channels[{i}].webhook.url", message)
        teams = channel.get("teams")
        host = teams.get("host") if isinstance(teams, Mapping) else None
        if isinstance(host, str) and (message := teams_host_problem(host)):
            yield Problem(f"spec.delivery.channels[{i}].teams.host", message)
