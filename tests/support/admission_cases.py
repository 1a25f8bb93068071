"""A shared table of ScheduledReport specs: invalid ones, each breaking one rule, and valid ones.

The unit tests run `validate_spec` over it, the cluster tests send it to a real apiserver with
and without the webhook, so the rules are checked the same way at every layer.

Each invalid case names the field path the rejection message must contain, a fragment of
validate_spec's rule text, and whether the CRD schema alone (types, enums, lengths, CEL) rejects
it (`schema=True`) or only the webhook does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tidings.models import PROGRAM_SCOPED_TYPES

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

BASE: dict[str, Any] = {
    "title": "Payments completed changes — weekly",
    "reportType": "changes_summary",
    "source": {
        "sql": {
            "connectionSecretRef": {"name": "changes-db", "key": "url"},
            "query": "SELECT id, title, status FROM changes "
            "WHERE completed_at >= :window_start AND completed_at < :window_end",
        }
    },
    "filters": {"status": ["completed"], "tags": ["payments"], "window": {"last": "7d"}},
    "schedule": "0 9 * * 1",
    "timeZone": "Europe/Berlin",
    "recipients": {"to": ["ciso@example.com"], "cc": ["payments-leads@example.com"]},
    "delivery": {"subjectTemplate": "[Tidings] {name} — {date}"},
    "failurePolicy": {"disableAfter": 3, "retries": 4, "timeoutSeconds": 600},
}

DROP = object()  # as a value in `changed`: remove that key


def changed(changes: dict[str, Any], base: dict[str, Any] = BASE) -> dict[str, Any]:
    """A copy of `base` with dotted paths replaced (or removed with DROP)."""
    spec = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        if value is DROP:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return spec


@dataclass(frozen=True)
class Invalid:
    id: str
    spec: dict[str, Any]
    path: str  # field path the rejection must name
    rule: str  # fragment of validate_spec's message for that path
    schema: bool = False  # the CRD schema rejects it without the webhook
    # Unknown fields never reach the webhook: the apiserver prunes them, or with kubectl's
    # default --validate=strict refuses them with 400 BadRequest (not 422) naming the field.
    code: int = 422


@dataclass(frozen=True)
class Valid:
    id: str
    spec: dict[str, Any]
    warning: str = ""  # fragment of the admission warning it must get, if any
    tags: tuple[str, ...] = field(default=())


def _addresses(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(n)]


SQL = "spec.source.sql"
WINDOW = "spec.filters.window"

INVALID: list[Invalid] = [
    # -- program scope: the CRD's CEL rules catch these on their own, the webhook says why
    Invalid(
        "program-missing-for-risk-report",
        changed({"reportType": "risk_report", "source": {"inline": {"rows": []}}}),
        "spec.program",
        "program-scoped types",
        True,
    ),
    Invalid(
        "program-missing-for-msp-client-report",
        changed({"reportType": "msp_client_report"}),
        "spec.program",
        "is required for reportType msp_client_report",
        True,
    ),
    Invalid(
        "program-on-audit-report",
        changed({"reportType": "audit_report", "program": "soc2"}),
        "spec.program",
        "audit findings cross programs",
        True,
    ),
    Invalid("program-empty", changed({"program": ""}), "spec.program", "must not be empty", True),
    Invalid(
        "program-two-lines",
        changed({"program": "soc2\nBcc: x@example.com"}),
        "spec.program",
        "one line",
    ),
    Invalid(
        "team-filter-not-a-list",
        changed({"filters.team": "payments"}),
        "spec.filters.team",
        "must be a list",
        True,
    ),
    Invalid(
        "custom-query-on-another-type",
        changed({"customQuery": {"chart": {"column": "x"}}}),
        "spec.customQuery",
        "only for reportType custom_query",
        True,
    ),
    Invalid(
        "custom-query-sum-without-column",
        changed(
            {
                "reportType": "custom_query",
                "customQuery": {"rollup": {"groupBy": ["t"], "aggregates": [{"function": "sum"}]}},
            }
        ),
        "spec.customQuery.rollup.aggregates[0].column",
        "is required for sum",
        True,
    ),
    Invalid(
        "custom-query-unknown-function",
        changed(
            {
                "reportType": "custom_query",
                "customQuery": {"rollup": {"groupBy": ["t"], "aggregates": [{"function": "p95"}]}},
            }
        ),
        "spec.customQuery.rollup.aggregates[0].function",
        "must be one of",
        True,
    ),
    # -- structure: the CRD schema catches these on its own
    Invalid("title-missing", changed({"title": DROP}), "spec.title", "required", True),
    Invalid("title-empty", changed({"title": ""}), "spec.title", "must not be empty", True),
    Invalid("title-too-long", changed({"title": "x" * 201}), "spec.title", "at most 200", True),
    Invalid("title-not-string", changed({"title": 42}), "spec.title", "must be a string", True),
    Invalid(
        "report-type-unknown",
        changed({"reportType": "weekly_digest"}),
        "spec.reportType",
        "must be one of",
        True,
    ),
    Invalid("source-missing", changed({"source": DROP}), "spec.source", "required", True),
    Invalid("source-no-kind", changed({"source": {}}), "spec.source", "exactly one", True),
    Invalid(
        "source-two-kinds",
        changed({"source.inline": {"rows": [{"id": 1}]}}),
        "spec.source",
        "exactly one",
        True,
    ),
    Invalid(
        "sql-query-missing", changed({"source.sql.query": DROP}), f"{SQL}.query", "required", True
    ),
    Invalid("sql-query-empty", changed({"source.sql.query": ""}), f"{SQL}.query", "empty", True),
    Invalid(
        "sql-secret-ref-missing",
        changed({"source.sql.connectionSecretRef": DROP}),
        f"{SQL}.connectionSecretRef",
        "required",
        True,
    ),
    Invalid(
        "secret-ref-other-namespace",
        changed({"source.sql.connectionSecretRef.namespace": "other-team"}),
        f"{SQL}.connectionSecretRef.namespace",
        "by name only",
        True,
        400,
    ),
    Invalid(
        "secret-ref-name-invalid",
        changed({"source.sql.connectionSecretRef.name": "Changes_DB"}),
        f"{SQL}.connectionSecretRef.name",
        "Kubernetes object name",
        True,
    ),
    Invalid(
        "secret-key-invalid",
        changed({"source.sql.connectionSecretRef.key": "db/url"}),
        f"{SQL}.connectionSecretRef.key",
        "Secret or ConfigMap key",
        True,
    ),
    Invalid(
        "sql-inline-connection-url",
        changed({"source.sql.connectionUrl": "postgresql://u:pw@db/changes"}),
        f"{SQL}.connectionUrl",
        "unknown field",
        True,
        400,
    ),
    Invalid(
        "http-url-not-http",
        changed({"source": {"http": {"url": "ftp://files.example.com/changes.json"}}}),
        "spec.source.http.url",
        "http:// or https://",
        True,
    ),
    Invalid(
        "http-auth-ref-without-key",
        changed(
            {
                "source": {
                    "http": {
                        "url": "https://api.example.com/changes",
                        "authSecretRef": {"name": "api-token"},
                    }
                }
            }
        ),
        "spec.source.http.authSecretRef.key",
        "required",
        True,
    ),
    Invalid(
        "inline-too-many-rows",
        changed({"source": {"inline": {"rows": [{"n": i} for i in range(5001)]}}}),
        "spec.source.inline.rows",
        "at most 5000 items",
        True,
    ),
    Invalid(
        "inline-row-not-object",
        changed({"source": {"inline": {"rows": ["id,title"]}}}),
        "spec.source.inline.rows[0]",
        "object",
        True,
    ),
    Invalid(
        "schedule-four-fields",
        changed({"schedule": "0 9 * *"}),
        "spec.schedule",
        "exactly five",
        True,
    ),
    Invalid(
        "schedule-six-fields-seconds",
        changed({"schedule": "0 0 9 * * 1"}),
        "spec.schedule",
        "exactly five",
        True,
    ),
    Invalid(
        "schedule-macro-every", changed({"schedule": "@every 1h"}), "spec.schedule", "macro", True
    ),
    Invalid(
        "schedule-macro-case", changed({"schedule": "@Weekly"}), "spec.schedule", "lower-case", True
    ),
    Invalid(
        "schedule-too-long",
        changed({"schedule": "0 9 * * " + ",".join(["1"] * 60)}),
        "spec.schedule",
        "at most 100",
        True,
    ),
    Invalid("time-zone-empty", changed({"timeZone": ""}), "spec.timeZone", "empty", True),
    Invalid("suspend-not-bool", changed({"suspend": "yes"}), "spec.suspend", "true or false", True),
    Invalid(
        "recipients-missing", changed({"recipients": DROP}), "spec.recipients", "required", True
    ),
    Invalid(
        "recipients-none",
        changed({"recipients": {"to": [], "cc": []}}),
        "spec.recipients",
        "at least one recipient",
        True,
    ),
    Invalid(
        "recipients-over-50-in-all",
        changed({"recipients": {"to": _addresses(30, "to"), "cc": _addresses(21, "cc")}}),
        "spec.recipients",
        "at most 50 recipients",
        True,
    ),
    Invalid(
        "recipients-to-over-50",
        changed({"recipients": {"to": _addresses(51, "to")}}),
        "spec.recipients.to",
        "at most 50 items",
        True,
    ),
    Invalid(
        "recipient-duplicate-in-list",
        changed({"recipients": {"to": ["ciso@example.com", "ciso@example.com"]}}),
        "spec.recipients.to[1]",
        "only once",
        True,
    ),
    Invalid(
        "recipient-duplicate-across-lists",
        changed({"recipients": {"to": ["ciso@example.com"], "bcc": ["CISO@example.com"]}}),
        # The schema's CEL rule names the list object; the webhook names the second entry.
        "spec.recipients",
        "only once",
        True,
    ),
    Invalid(
        "recipient-too-short",
        changed({"recipients.to": ["a@"]}),
        "spec.recipients.to[0]",
        "at least 3",
        True,
    ),
    Invalid(
        "subject-empty",
        changed({"delivery.subjectTemplate": ""}),
        "spec.delivery.subjectTemplate",
        "empty",
        True,
    ),
    Invalid(
        "subject-too-long",
        changed({"delivery.subjectTemplate": "{name} {date} " + "x" * 200}),
        "spec.delivery.subjectTemplate",
        "at most 200",
        True,
    ),
    Invalid(
        "smtp-secret-ref-with-key",
        changed({"delivery.smtpSecretRef": {"name": "team-smtp", "key": "password"}}),
        "spec.delivery.smtpSecretRef.key",
        "by name only",
        True,
        400,
    ),
    Invalid(
        "attach-csv-not-bool",
        changed({"delivery.attachCsv": "no"}),
        "spec.delivery.attachCsv",
        "true or false",
        True,
    ),
    Invalid(
        "attach-csv-with-attachments",
        changed({"delivery.attachCsv": True, "delivery.attachments": ["pdf", "xlsx"]}),
        "spec.delivery.attachCsv",
        "older form of attachments",
        True,
    ),
    Invalid(
        "attachment-kind-unknown",
        changed({"delivery.attachments": ["pdf", "docx"]}),
        "spec.delivery.attachments[1]",
        "must be one of",
        True,
    ),
    Invalid(
        "attachments-repeated",
        changed({"delivery.attachments": ["csv", "csv"]}),
        "spec.delivery.attachments",
        "more than once",
        True,
    ),
    Invalid(
        "disable-after-zero",
        changed({"failurePolicy.disableAfter": 0}),
        "spec.failurePolicy.disableAfter",
        "at least 1",
        True,
    ),
    Invalid(
        "retries-negative",
        changed({"failurePolicy.retries": -1}),
        "spec.failurePolicy.retries",
        "at least 0",
        True,
    ),
    Invalid(
        "retries-too-many",
        changed({"failurePolicy.retries": 11}),
        "spec.failurePolicy.retries",
        "at most 10",
        True,
    ),
    Invalid(
        "timeout-too-short",
        changed({"failurePolicy.timeoutSeconds": 5}),
        "spec.failurePolicy.timeoutSeconds",
        "at least 30",
        True,
    ),
    Invalid(
        "timeout-over-a-day",
        changed({"failurePolicy.timeoutSeconds": 86401}),
        "spec.failurePolicy.timeoutSeconds",
        "at most 86400",
        True,
    ),
    Invalid(
        "timeout-not-integer",
        changed({"failurePolicy.timeoutSeconds": "10m"}),
        "spec.failurePolicy.timeoutSeconds",
        "integer",
        True,
    ),
    Invalid(
        "window-two-kinds",
        changed({"filters.window": {"last": "7d", "previous": "week"}}),
        WINDOW,
        "exactly one of last, previous or from/to",
        True,
    ),
    Invalid(
        "window-from-without-to",
        changed({"filters.window": {"from": "2025-01-01"}}),
        WINDOW,
        "from and to must be set together",
        True,
    ),
    Invalid(
        "window-last-weeks",
        changed({"filters.window": {"last": "2w"}}),
        f"{WINDOW}.last",
        "days or hours",
        True,
    ),
    Invalid(
        "window-previous-year",
        changed({"filters.window": {"previous": "year"}}),
        f"{WINDOW}.previous",
        "must be one of",
        True,
    ),
    Invalid(
        "filter-value-empty",
        changed({"filters.status": [""]}),
        "spec.filters.status[0]",
        "empty",
        True,
    ),
    Invalid(
        "filter-too-many-values",
        changed({"filters.tags": [f"tag-{i}" for i in range(51)]}),
        "spec.filters.tags",
        "at most 50 items",
        True,
    ),
    Invalid(
        "unknown-field",
        changed({"recipient": ["ciso@example.com"]}),
        "spec.recipient",
        "unknown",
        True,
        400,
    ),
    Invalid(
        "template-ref-without-key",
        changed({"templateRef": {"name": "board-template"}}),
        "spec.templateRef.key",
        "required",
        True,
    ),
    # -- semantics: only the webhook (and validate_spec) knows these
    Invalid(
        "schedule-tz-prefix",
        changed({"schedule": "CRON_TZ=UTC 9 * * 1"}),
        "spec.schedule",
        "TZ=",
    ),
    Invalid(
        "schedule-minute-60", changed({"schedule": "60 9 * * 1"}), "spec.schedule", "minute field"
    ),
    Invalid("schedule-hour-24", changed({"schedule": "0 24 * * 1"}), "spec.schedule", "hour field"),
    Invalid(
        "schedule-day-of-month-0",
        changed({"schedule": "0 9 0 * *"}),
        "spec.schedule",
        "day-of-month field",
    ),
    Invalid(
        "schedule-month-13", changed({"schedule": "0 9 1 13 *"}), "spec.schedule", "month field"
    ),
    Invalid(
        # croniter takes 7 for Sunday; the CronJob controller does not.
        "schedule-sunday-as-7",
        changed({"schedule": "0 9 * * 7"}),
        "spec.schedule",
        "day-of-week field",
    ),
    Invalid(
        "schedule-unknown-day-name",
        changed({"schedule": "0 9 * * FUN"}),
        "spec.schedule",
        "day-of-week field",
    ),
    Invalid(
        "schedule-quartz-last-day",
        changed({"schedule": "0 9 L * *"}),
        "spec.schedule",
        "day-of-month field",
    ),
    Invalid(
        "schedule-nth-weekday",
        changed({"schedule": "0 9 * * 1#2"}),
        "spec.schedule",
        "day-of-week field",
    ),
    Invalid("schedule-step-zero", changed({"schedule": "*/0 9 * * *"}), "spec.schedule", "step"),
    Invalid(
        "schedule-backwards-range",
        changed({"schedule": "0 17-9 * * *"}),
        "spec.schedule",
        "backwards",
    ),
    Invalid(
        "schedule-never-fires",
        changed({"schedule": "0 9 30 2 *"}),
        "spec.schedule",
        "never fires",
    ),
    Invalid(
        "time-zone-misspelt",
        changed({"timeZone": "Europe/Berln"}),
        "spec.timeZone",
        "did you mean Europe/Berlin",
    ),
    Invalid("time-zone-abbreviation", changed({"timeZone": "CEST"}), "spec.timeZone", "IANA"),
    Invalid("time-zone-local", changed({"timeZone": "Local"}), "spec.timeZone", "IANA"),
    Invalid("time-zone-offset", changed({"timeZone": "+02:00"}), "spec.timeZone", "IANA"),
    # -- spec.owners: the recipients' address rule, at most 10
    Invalid(
        "owner-display-name",
        changed({"owners": ["Owner <owner@example.com>"]}),
        "spec.owners[0]",
        "no display name",
    ),
    Invalid(
        "owner-header-injection",
        changed({"owners": ["owner@example.com\r\nBcc: spy@evil.test"]}),
        "spec.owners[0]",
        "header injection",
    ),
    Invalid(
        "owner-duplicate-in-another-case",
        changed({"owners": ["owner@example.com", "Owner@example.com"]}),
        "spec.owners[1]",
        "duplicates spec.owners[0]",
    ),
    Invalid(
        "owners-over-10",
        changed({"owners": _addresses(11, "owner")}),
        "spec.owners",
        "at most 10 items",
        True,
    ),
    Invalid(
        "recipient-display-name",
        changed({"recipients.to": ["CISO <ciso@example.com>"]}),
        "spec.recipients.to[0]",
        "no display name",
    ),
    Invalid(
        "recipient-header-injection",
        changed({"recipients.to": ["ciso@example.com\r\nBcc: spy@evil.test"]}),
        "spec.recipients.to[0]",
        "header injection",
    ),
    Invalid(
        "recipient-list-in-one-entry",
        changed({"recipients.to": ["ciso@example.com,spy@evil.test"]}),
        "spec.recipients.to[0]",
        "lists",
    ),
    Invalid(
        "recipient-no-at",
        changed({"recipients.to": ["ciso.example.com"]}),
        "spec.recipients.to[0]",
        "not a valid email address",
    ),
    Invalid(
        "recipient-dotless-domain",
        changed({"recipients.cc": ["root@localhost"]}),
        "spec.recipients.cc[0]",
        "not a valid email address",
    ),
    Invalid(
        "recipient-double-dot",
        changed({"recipients.bcc": ["first..last@example.com"]}),
        "spec.recipients.bcc[0]",
        "not a valid email address",
    ),
    Invalid(
        "recipient-non-ascii",
        changed({"recipients.to": ["chloé@example.com"]}),
        "spec.recipients.to[0]",
        "ASCII",
    ),
    Invalid(
        "recipient-quoted-local-part",
        changed({"recipients.to": ['"ciso@corp"@example.com']}),
        "spec.recipients.to[0]",
        "quotes",
    ),
    Invalid(
        "recipient-domain-literal",
        changed({"recipients.to": ["ciso@[192.0.2.1]"]}),
        "spec.recipients.to[0]",
        "bare address",
    ),
    Invalid(
        "recipient-encoded-word",
        changed({"recipients.to": ["=?utf-8?q?ciso?=@example.com"]}),
        "spec.recipients.to[0]",
        "encoded-words",
    ),
    Invalid(
        "subject-unknown-placeholder",
        changed({"delivery.subjectTemplate": "{name} for {team} — {date}"}),
        "spec.delivery.subjectTemplate",
        "unknown placeholder {team}",
    ),
    Invalid(
        "subject-format-spec",
        changed({"delivery.subjectTemplate": "{name} — {date:%Y-%m-%d}"}),
        "spec.delivery.subjectTemplate",
        "no format",
    ),
    Invalid(
        "subject-attribute-access",
        changed({"delivery.subjectTemplate": "{name.__class__} {date}"}),
        "spec.delivery.subjectTemplate",
        "unknown placeholder",
    ),
    Invalid(
        "subject-unbalanced-brace",
        changed({"delivery.subjectTemplate": "Report {name — {date}"}),
        "spec.delivery.subjectTemplate",
        "literal braces",
    ),
    Invalid(
        "subject-header-injection",
        changed({"delivery.subjectTemplate": "{name}\r\nBcc: spy@evil.test"}),
        "spec.delivery.subjectTemplate",
        "header injection",
    ),
    Invalid(
        "title-line-break",
        changed({"title": "Weekly\nBcc: spy@evil.test"}),
        "spec.title",
        "control characters",
    ),
    Invalid(
        "sql-not-select",
        changed({"source.sql.query": "DELETE FROM changes WHERE completed_at < :window_start"}),
        f"{SQL}.query",
        "SELECT",
    ),
    Invalid(
        "sql-two-statements",
        changed({"source.sql.query": "SELECT 1; DROP TABLE changes"}),
        f"{SQL}.query",
        "single statement",
    ),
    Invalid(
        "http-url-with-credentials",
        changed({"source": {"http": {"url": "https://bot:s3cret@api.example.com/changes"}}}),
        "spec.source.http.url",
        "credentials",
    ),
    Invalid(
        "http-url-without-host",
        changed({"source": {"http": {"url": "https:///changes.json"}}}),
        "spec.source.http.url",
        "with a host",
    ),
    Invalid(
        "window-from-not-a-date",
        changed({"filters.window": {"from": "last tuesday", "to": "2025-01-01"}}),
        f"{WINDOW}.from",
        "ISO 8601",
    ),
    Invalid(
        "window-ends-before-it-starts",
        changed({"filters.window": {"from": "2025-02-01", "to": "2025-01-01"}}),
        f"{WINDOW}.to",
        "after from",
    ),  # The fault campaign's cases: each was accepted, then failed (or did harm) at run time.
    Invalid(
        "sql-semicolon-after-dollar-quote",
        changed({"source.sql.query": "SELECT $$'$$ AS a; UPDATE canary SET v='x'; SELECT '$$'"}),
        f"{SQL}.query",
        "single statement",
    ),
    Invalid(
        "sql-semicolon-after-e-string",
        changed({"source.sql.query": "SELECT E'\\'' AS a; UPDATE canary SET v='x'; SELECT ''''"}),
        f"{SQL}.query",
        "single statement",
    ),
    Invalid(
        "sql-unclosed-nested-comment",
        changed({"source.sql.query": "SELECT 1 /* a /* b */ ; UPDATE canary SET v='x'"}),
        f"{SQL}.query",
        "is not closed",
    ),
    Invalid(
        "sql-unknown-parameter",
        changed({"source.sql.query": "SELECT * FROM changes WHERE owner = :owner"}),
        f"{SQL}.query",
        "unknown parameter(s) :owner",
    ),
    Invalid(
        "sql-copy-behind-a-carriage-return-comment",
        changed(
            {"source.sql.query": "-- weekly\r COPY changes TO PROGRAM 'id' /*\nSELECT 1 -- */"}
        ),
        f"{SQL}.query",
        "not COPY",
    ),
    Invalid(
        "sql-data-modifying-with",
        changed(
            {"source.sql.query": "WITH d AS (DELETE FROM changes RETURNING *) SELECT * FROM d"}
        ),
        f"{SQL}.query",
        "must only read",
    ),
    Invalid(
        "http-url-nat64-metadata-address",
        changed({"source": {"http": {"url": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"}}}),
        "spec.source.http.url",
        "must not point at",
    ),
    Invalid(
        "http-url-octal-ipv4",
        changed({"source": {"http": {"url": "http://0177.0.0.1/rows"}}}),
        "spec.source.http.url",
        "four decimal numbers",
    ),
    Invalid(
        "http-url-metadata-address",
        changed({"source": {"http": {"url": "http://169.254.169.254/latest/meta-data/"}}}),
        "spec.source.http.url",
        "link-local or cloud metadata",
    ),
    Invalid(
        "window-year-one",
        changed({"filters.window": {"from": "0001-01-01", "to": "0001-01-02"}}),
        f"{WINDOW}.from",
        "between the years 1900 and 9998",
    ),
    Invalid(
        "window-offset-from-after-local-to",
        changed(
            {
                "filters.window": {"from": "2025-01-01T12:00:00-05:00", "to": "2025-01-01T15:00"},
                "timeZone": "UTC",
            }
        ),
        f"{WINDOW}.to",
        "after from",
    ),
]

# spec.delivery.sendWhen (issue 25): a threshold is parsed and its figures checked by the webhook;
# the schema's CEL ties threshold to its mode and skipIfEmpty to nonEmpty.
_THRESHOLD = "spec.delivery.sendWhen.threshold"


_SLACK = {"slack": {"channel": "C0123ABCD", "tokenSecretRef": {"name": "bot", "key": "token"}}}


def _teams(host: str) -> dict[str, Any]:
    return {"teams": {"host": host, "urlSecretRef": {"name": "flow", "key": "url"}}}


def _hook(url: str) -> dict[str, Any]:
    return {"url": url, "signingSecretRef": {"name": "hook-key", "key": "key"}}


INVALID += [
    Invalid(
        "send-when-threshold-syntax",
        changed({"delivery.sendWhen": {"mode": "threshold", "threshold": "overdue >"}}),
        _THRESHOLD,
        "expected a figure name or a number at column 10, found the end",
    ),
    Invalid(
        "send-when-threshold-python",
        changed({"delivery.sendWhen": {"mode": "threshold", "threshold": "__import__('os')"}}),
        _THRESHOLD,
        "unexpected character",
    ),
    Invalid(
        "send-when-threshold-unknown-figure",
        changed({"delivery.sendWhen": {"mode": "threshold", "threshold": "overdue > 0"}}),
        _THRESHOLD,
        "overdue is not a figure of reportType changes_summary",
    ),
    Invalid(
        "send-when-threshold-missing",
        changed({"delivery.sendWhen": {"mode": "threshold"}}),
        _THRESHOLD,
        "is required for mode threshold",
        schema=True,
    ),
    Invalid(
        "send-when-threshold-without-its-mode",
        changed({"delivery.sendWhen": {"mode": "changed", "threshold": "rows > 0"}}),
        _THRESHOLD,
        "is only for mode threshold",
        schema=True,
    ),
    Invalid(
        "channel-webhook-plain-http",
        changed({"delivery.channels": [{"webhook": _hook("http://hooks.example.com/x")}]}),
        "spec.delivery.channels[0].webhook.url",
        "must be an https:// URL",
    ),
    Invalid(
        "channel-webhook-credentials",
        changed({"delivery.channels": [{"webhook": _hook("https://u:p@hooks.example.com/")}]}),
        "spec.delivery.channels[0].webhook.url",
        "must not contain credentials",
    ),
    Invalid(
        "channel-webhook-metadata-address",
        changed({"delivery.channels": [{"webhook": _hook("https://169.254.169.254/hook")}]}),
        "spec.delivery.channels[0].webhook.url",
        "a link-local or cloud metadata address",
    ),
    Invalid(
        "channel-without-a-kind",
        changed({"delivery.channels": [{}]}),
        "spec.delivery.channels[0]",
        "set exactly one of webhook, slack and teams",
        schema=True,
    ),
    Invalid(
        "channel-two-kinds",
        changed(
            {"delivery.channels": [{"webhook": _hook("https://hooks.example.com/"), **_SLACK}]}
        ),
        "spec.delivery.channels[0]",
        "set exactly one of webhook, slack and teams",
        schema=True,
    ),
    Invalid(
        "channel-slack-name-not-id",
        changed({"delivery.channels": [{"slack": {**_SLACK["slack"], "channel": "#general"}}]}),
        "spec.delivery.channels[0].slack.channel",
        "must match ^[CGD][A-Z0-9]",
        schema=True,
    ),
    Invalid(
        "channel-teams-host-is-a-url",
        changed({"delivery.channels": [_teams("https://prod-1.westeurope.logic.azure.com/x")]}),
        "spec.delivery.channels[0].teams.host",
        "must match ^[a-z0-9]",
        schema=True,
    ),
    Invalid(
        "channel-teams-metadata-host",
        changed({"delivery.channels": [_teams("169.254.169.254")]}),
        "spec.delivery.channels[0].teams.host",
        "a link-local or cloud metadata address",
    ),
    Invalid(
        "send-when-contradicts-skip-if-empty",
        changed({"delivery.skipIfEmpty": True, "delivery.sendWhen": {"mode": "empty"}}),
        "spec.delivery.skipIfEmpty",
        "contradicts mode empty",
        schema=True,
    ),
]

_REPORT_TYPES = {
    "changes_summary": {"sql": BASE["source"]["sql"]},
    "incidents_summary": {
        "http": {
            "url": "https://incidents.example.com/api/incidents?state=resolved",
            "rowsPath": "data.items",
            "authSecretRef": {"name": "incidents-api", "key": "token"},
        }
    },
    "dora_snapshot": {"inline": {"rows": [{"metric": "deploy_frequency", "value": 14}]}},
    "audit_log": {
        "sql": {
            "connectionSecretRef": {"name": "audit-db", "key": "url"},
            "query": "-- who changed what\n"
            "WITH recent AS (SELECT * FROM audit) SELECT * FROM recent;",
        }
    },
    "custom_query": {
        "sql": {
            "connectionSecretRef": {"name": "warehouse", "key": "url"},
            "query": "SELECT 'a;b' AS note, $$:c; d$$ AS e, count(*) FROM events "
            "WHERE ts >= :window_start AND ts::date < (:window_end)::date",
        }
    },
    "compliance_readiness": {"inline": {"rows": [{"control": "AC-2", "status": "met"}]}},
    "executive_summary": {"http": {"url": "http://metrics.internal:8080/summary.json"}},
    "risk_report": {"inline": {"rows": []}},
    "audit_report": {"inline": {"rows": [{"finding": "MFA", "severity": "high", "open": True}]}},
    "msp_client_report": {"http": {"url": "https://msp.example.com/clients.json"}},
}

VALID: list[Valid] = [
    Valid(
        f"type-{kind}",
        changed(
            {"reportType": kind, "source": source}
            | ({"program": "soc2"} if kind in PROGRAM_SCOPED_TYPES else {})
        ),
    )
    for kind, source in _REPORT_TYPES.items()
] + [
    Valid("program-optional-elsewhere", changed({"program": "Payments PCI DSS"})),
    Valid(
        "channels-slack-and-teams",
        changed({"delivery.channels": [_SLACK, _teams("prod-12.westeurope.logic.azure.com")]}),
    ),
    Valid("owners", changed({"owners": ["owner@example.com", "deputy@example.com"]})),
    Valid("schedule-null-is-manual", changed({"schedule": None})),  # the apiserver drops it
    Valid("team-filter", changed({"filters.team": ["payments", "checkout"]})),
    Valid(
        "custom-query-rollup",
        changed(
            {
                "reportType": "custom_query",
                "customQuery": {
                    "rollup": {
                        "groupBy": ["team"],
                        "aggregates": [{"function": "count"}, {"function": "sum", "column": "x"}],
                    },
                    "chart": {"column": "x", "function": "avg"},
                    "columnLabels": [{"column": "sum(x)", "label": "Total X"}],
                },
            }
        ),
    ),
    Valid("manual-only", changed({"schedule": DROP})),
    Valid("schedule-macro-weekly", changed({"schedule": "@weekly"})),
    Valid("attachments-all", changed({"delivery.attachments": ["pdf", "csv", "xlsx"]})),
    Valid("attachments-xlsx-only", changed({"delivery.attachments": ["xlsx"]})),
    Valid("skip-if-empty", changed({"delivery.skipIfEmpty": True})),
    Valid("send-when-changed", changed({"delivery.sendWhen": {"mode": "changed"}})),
    Valid(
        "channel-webhook",
        changed(
            {
                "delivery.channels": [
                    {
                        "webhook": {
                            "url": "https://hooks.example.com/tidings",
                            "signingSecretRef": {"name": "hook-key", "key": "key"},
                            "attachments": "multipart",
                        }
                    }
                ]
            }
        ),
    ),
    Valid("send-when-empty", changed({"delivery.sendWhen": {"mode": "empty"}})),
    Valid(
        "send-when-non-empty-with-its-older-form",
        changed({"delivery.skipIfEmpty": True, "delivery.sendWhen": {"mode": "nonEmpty"}}),
    ),
    Valid(
        "send-when-threshold",
        changed(
            {
                "delivery.sendWhen": {
                    "mode": "threshold",
                    "threshold": "failedOrRolledBack > 0 or (successRate < 90 and rows >= 5)",
                }
            }
        ),
    ),
    Valid("schedule-macro-annually", changed({"schedule": "@annually"})),
    Valid("schedule-empty", changed({"schedule": ""})),
    Valid("minimal", {k: BASE[k] for k in ("title", "reportType", "source", "recipients")}),
    Valid("weekday-names-and-steps", changed({"schedule": "*/30 8-17 * JAN-JUN MON-FRI"})),
    Valid("schedule-lists-and-question-mark", changed({"schedule": "0 6,18 ? * 0,6"})),
    Valid("leap-day", changed({"schedule": "0 9 29 2 *"})),
    Valid(
        "fifty-recipients",
        changed(
            {
                "recipients": {
                    "to": _addresses(20, "to"),
                    "cc": _addresses(20, "cc"),
                    "bcc": _addresses(10, "bcc"),
                }
            }
        ),
    ),
    Valid("bcc-only", changed({"recipients": {"bcc": ["auditors+q1@example.co.uk"]}})),
    Valid("previous-month", changed({"filters.window": {"previous": "month"}, "timeZone": "UTC"})),
    Valid(
        "fixed-window",
        changed({"filters.window": {"from": "2025-01-01", "to": "2025-04-01T00:00:00+02:00"}}),
    ),
    Valid(
        "fixed-window-offset-and-local",
        changed(
            {
                "filters.window": {"from": "2025-01-01T12:00:00-05:00", "to": "2025-01-01T18:00"},
                "timeZone": "UTC",
            }
        ),
    ),
    Valid("paused", changed({"suspend": True, "timeZone": "America/Argentina/Buenos_Aires"})),
    Valid(
        "custom-template-and-smtp",
        changed(
            {
                "templateRef": {"name": "board-template", "key": "template.html.j2"},
                "delivery": {
                    "subjectTemplate": "{{Board}} {name} ({date})",
                    "smtpSecretRef": {"name": "team-smtp"},
                    "attachCsv": True,
                },
            }
        ),
    ),
    Valid(
        "subject-without-date",
        changed({"delivery.subjectTemplate": "[Tidings] {name}"}),
        warning="no {date} or {window} placeholder",
    ),
]


def example_specs() -> list[Valid]:
    """The renderer's examples/*.yaml (one valid report per reportType), when present."""
    found = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "ScheduledReport":
                found.append(Valid(f"example-{path.stem}-{doc['metadata']['name']}", doc["spec"]))
    return found
