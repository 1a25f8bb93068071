"""The ScheduledReport resource as pydantic models: the one source of truth.

The CRD in crds/ is generated from these models (`tidings crd`), the renderer and the operator
parse specs with them, and the docs table of fields is generated from the same descriptions.
Structural rules (enums, lengths, item counts, CEL) live here so the apiserver can enforce them
even without the webhook; semantic rules (cron syntax, IANA zones, address syntax) live in
`tidings.validation`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tidings import sendwhen

GROUP = "tidings.dev"
VERSION = "v1alpha1"
KIND = "ScheduledReport"
PLURAL = "scheduledreports"
SINGULAR = "scheduledreport"
SHORT_NAMES = ["sr"]
CATEGORIES = ["tidings"]

MAX_RECIPIENTS = 50
MAX_OWNERS = 10  # spec.owners: told when the report fails for good or is Disabled
MAX_HISTORY = 20
MAX_COUNTED = 32
# The spec travels to each run in its pod template annotation (limited by the API to 256 KiB).
MAX_SPEC_BYTES = 240 * 1024
MAX_INLINE_ROWS = 5000
MAX_FILTER_VALUES = 50
# The macros the Kubernetes CronJob controller accepts (robfig/cron's descriptors, exact and
# lower-case), as the five fields they stand for. `@every <duration>` is left out: it counts from
# when the controller last started, so no NEXT could be computed for it.
SCHEDULE_MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_RETENTION_DAYS = 3650


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, not ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )


# ---------------------------------------------------------------------------------------- spec


class ReportType(StrEnum):
    CHANGES_SUMMARY = "changes_summary"
    INCIDENTS_SUMMARY = "incidents_summary"
    DORA_SNAPSHOT = "dora_snapshot"
    AUDIT_LOG = "audit_log"
    CUSTOM_QUERY = "custom_query"
    COMPLIANCE_READINESS = "compliance_readiness"
    EXECUTIVE_SUMMARY = "executive_summary"
    RISK_REPORT = "risk_report"
    AUDIT_REPORT = "audit_report"
    MSP_CLIENT_REPORT = "msp_client_report"


# Meridian scopes these reports to one compliance program (spec.program is required); audit
# reports cross programs, so a program there would hide findings (spec.program is refused).
PROGRAM_SCOPED_TYPES = (
    ReportType.COMPLIANCE_READINESS,
    ReportType.EXECUTIVE_SUMMARY,
    ReportType.RISK_REPORT,
    ReportType.MSP_CLIENT_REPORT,
)
PROGRAM_REFUSED_TYPES = (ReportType.AUDIT_REPORT,)
# Why, in the words validation and the CRD's CEL rules both use.
PROGRAM_REQUIRED_WHY = (
    "the program-scoped types ("
    + ", ".join(PROGRAM_SCOPED_TYPES)
    + ") report on one compliance program, so name it, e.g. program: soc2"
)
PROGRAM_REFUSED_WHY = "audit findings cross programs, so audit reports always cover every program"


K8sName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Name of an object in the report's namespace.",
    ),
]
SecretKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key inside the Secret's data.",
    ),
]


class SecretKeyRef(_Model):
    """A key of a Secret in the report's namespace. Secrets are referenced, never inlined."""

    name: K8sName = Field(description="Name of the Secret in the report's namespace.")
    key: SecretKey = Field(description="Key inside the Secret whose value is used.")


class SecretRef(_Model):
    """A whole Secret in the report's namespace."""

    name: K8sName = Field(description="Name of the Secret in the report's namespace.")


class ConfigMapKeyRef(_Model):
    """A key of a ConfigMap in the report's namespace."""

    name: K8sName = Field(description="Name of the ConfigMap in the report's namespace.")
    key: SecretKey = Field(description="Key inside the ConfigMap's data.")


class InlineSource(_Model):
    """Rows given directly in the spec: for small, static data and for trying Tidings out.
    The whole spec, rows included, may be at most 240 KiB as YAML: each run carries it in its
    pod template. Larger data belongs behind an sql or http source."""

    rows: list[dict[str, Any]] = Field(
        max_length=MAX_INLINE_ROWS,
        description="The rows, each an object of column name to value.",
        json_schema_extra={
            "items": {
                "type": "object",
                "description": "One row: column name to value (string, number, boolean or null).",
                "x-kubernetes-preserve-unknown-fields": True,
            }
        },
    )


class SqlSource(_Model):
    """Rows from a SQL query. The connection URL comes from a Secret, never from the spec."""

    connection_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db."
    )
    query: str = Field(
        min_length=1,
        max_length=20000,
        description=(
            "SELECT statement. Bound parameters :window_start, :window_end, :program and "
            ":status, :tags, :assignee, :team (the filter values) are supplied; values are "
            "never interpolated."
        ),
    )


class HttpSource(_Model):
    """Rows from a JSON document fetched with GET."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^https?://",
        description=(
            "http(s) URL of the JSON document. Query parameters may be included; with "
            "spec.program set, program=<program> is added."
        ),
    )
    rows_path: str = Field(
        default="",
        max_length=256,
        description=(
            "Dotted path to the list of rows inside the document, e.g. data.items; "
            "empty means the document itself is the list."
        ),
    )
    auth_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key whose value is sent as the Authorization header.",
    )


class Source(_Model):
    """Where the report's rows come from: exactly one of inline, sql, http."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.inline), has(self.sql), has(self.http)]"
                    ".filter(x, x).size() == 1",
                    "message": "exactly one of inline, sql or http must be set",
                }
            ]
        }
    )

    inline: InlineSource | None = Field(default=None, description="Rows given in the spec.")
    sql: SqlSource | None = Field(default=None, description="Rows from a SQL query.")
    http: HttpSource | None = Field(default=None, description="Rows from a JSON endpoint.")


class PreviousPeriod(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


class Window(_Model):
    """The data window, relative to the scheduled fire time in the report's time zone.
    Exactly one of last, previous or from/to."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.last), has(self.previous), has(self.from) || has(self.to)]"
                    ".filter(x, x).size() == 1",
                    "message": "exactly one of last, previous or from/to must be set",
                },
                {
                    "rule": "has(self.from) == has(self.to)",
                    "message": "from and to must be set together",
                },
            ]
        }
    )

    last: str | None = Field(
        default=None,
        max_length=8,
        pattern=r"^[1-9][0-9]{0,3}[dh]$",
        description="A rolling window ending at the fire time: Nd (days) or Nh (hours), e.g. 7d.",
    )
    previous: PreviousPeriod | None = Field(
        default=None,
        description="The previous full calendar week (Monday to Monday), month or quarter.",
    )
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=64,
        description="Fixed start, an ISO 8601 date or date-time (inclusive).",
    )
    to: str | None = Field(
        default=None,
        max_length=64,
        description="Fixed end, an ISO 8601 date or date-time (exclusive).",
    )


FilterValue = Annotated[
    str, Field(min_length=1, max_length=128, description="A value to match, exactly.")
]


class Filters(_Model):
    """Which rows the report shows; the same keys an interactive list view would offer.
    An empty list means no filtering on that key."""

    status: list[FilterValue] = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="Keep rows whose status is one of these.",
    )
    tags: list[FilterValue] = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="Keep rows that carry at least one of these tags.",
    )
    assignee: list[FilterValue] = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="Keep rows assigned to one of these people.",
    )
    team: list[FilterValue] = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="Keep rows whose team is one of these.",
    )
    window: Window = Field(
        default_factory=lambda: Window(last="7d"),
        description="The data window; default the last 7 days.",
    )


ColumnName = Annotated[
    str,
    Field(min_length=1, max_length=128, description="A column name of the rows, as written."),
]


class AggregateFunction(StrEnum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"


class Aggregate(_Model):
    """One figure per group: count of rows, or count, sum, avg, min or max of a column."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.function == 'count' || has(self.column)",
                    "message": "sum, avg, min and max need a column",
                    "fieldPath": ".column",
                }
            ]
        }
    )

    function: AggregateFunction = Field(description="count, sum, avg, min or max.")
    column: ColumnName | None = Field(
        default=None,
        description=(
            "The numeric column to aggregate; with count, rows where it has a value are "
            "counted. The result's column is named function(column), e.g. sum(cost_eur)."
        ),
    )


class Rollup(_Model):
    """Group the rows by named columns and show one row per group with its aggregates."""

    group_by: list[ColumnName] = Field(
        min_length=1, max_length=10, description="Columns whose values form a group."
    )
    aggregates: list[Aggregate] = Field(
        default_factory=lambda: [Aggregate(function=AggregateFunction.COUNT)],
        min_length=1,
        max_length=20,
        description="What to compute per group; default a count of rows.",
    )


class QueryChart(_Model):
    """What the chart plots."""

    column: ColumnName = Field(
        description=(
            "Numeric column to plot: per period over the time column when the rows have "
            "`time`, otherwise as bars by the first text column."
        )
    )
    function: AggregateFunction = Field(
        default=AggregateFunction.SUM,
        description="How the column's values of one period combine; default sum.",
    )


class ColumnLabel(_Model):
    """A header for one column."""

    column: ColumnName = Field(description="The column (or aggregate, e.g. sum(cost_eur)).")
    label: str = Field(min_length=1, max_length=128, description="The header shown for it.")


class CustomQuery(_Model):
    """Options of reportType custom_query."""

    rollup: Rollup | None = Field(
        default=None, description="Group by named columns with count, sum, avg, min, max."
    )
    chart: QueryChart | None = Field(
        default=None, description="The numeric column the chart plots; default a row count."
    )
    column_labels: list[ColumnLabel] = Field(
        default_factory=list,
        max_length=100,
        description="Headers by column; columns not listed keep their names as written.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["column"],
        },
    )


Address = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        description="A bare email address (name@example.com): no display name, ASCII only.",
    ),
]
# A recipient entry: an address, or `@name` for the RecipientGroup `name` of the namespace.
Recipient = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        description="A bare email address (name@example.com), or @name for the RecipientGroup "
        "of that name in the report's namespace, expanded when each run starts.",
    ),
]

# The three lists as one CEL list; absent lists count as empty. (The optional-chaining form,
# self.?to.orValue([]), hides maxItems from the apiserver's cost estimate and gets refused.)
_ALL_RECIPIENTS = (
    "((has(self.to) ? self.to : []) + (has(self.cc) ? self.cc : []) "
    "+ (has(self.bcc) ? self.bcc : []))"
)


class Recipients(_Model):
    """Who receives the report. People need no cluster access: they just get the email."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"size{_ALL_RECIPIENTS} <= {MAX_RECIPIENTS}",
                    "message": f"at most {MAX_RECIPIENTS} recipients across to, cc and bcc",
                },
                {
                    "rule": f"size{_ALL_RECIPIENTS} >= 1",
                    "message": "at least one recipient is required",
                },
                {
                    "rule": f"{_ALL_RECIPIENTS}.all(a, "
                    f"{_ALL_RECIPIENTS}.exists_one(b, b.lowerAscii() == a.lowerAscii()))",
                    "message": "an address may appear only once across to, cc and bcc",
                },
            ]
        }
    )

    # list-type set: the apiserver itself refuses an exact duplicate inside one list.
    to: list[Recipient] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="To: addresses and @groups.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    cc: list[Recipient] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Cc: addresses and @groups.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    bcc: list[Recipient] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Bcc: addresses and @groups; in the envelope only, never in the headers.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class AttachmentKind(StrEnum):
    """pdf (the report), csv (all rows, gzip) or xlsx (all rows, a spreadsheet)."""

    PDF = "pdf"
    CSV = "csv"
    XLSX = "xlsx"


class PageSize(StrEnum):
    A4 = "A4"
    LETTER = "Letter"


class Orientation(StrEnum):
    """auto: landscape when the detail table has more than WIDE_TABLE_COLUMNS columns."""

    AUTO = "auto"
    PORTRAIT = "portrait"
    LANDSCAPE = "landscape"


# More table columns than this do not fit A4 or Letter portrait at the report's type size.
WIDE_TABLE_COLUMNS = 8


class Page(_Model):
    """The PDF's paper."""

    size: PageSize = Field(default=PageSize.A4, description="A4 or Letter.")
    orientation: Orientation = Field(
        default=Orientation.AUTO,
        description=(
            "portrait, landscape, or auto (the default): landscape when the detail table shows "
            f"more than {WIDE_TABLE_COLUMNS} columns, else portrait."
        ),
    )


class PdfVariant(StrEnum):
    """An archival or accessible PDF, as WeasyPrint writes it."""

    PDF_A_3B = "pdf/a-3b"
    PDF_UA_1 = "pdf/ua-1"


class SendMode(StrEnum):
    """When a run sends (spec.delivery.sendWhen.mode)."""

    ALWAYS = sendwhen.ALWAYS
    NON_EMPTY = sendwhen.NON_EMPTY
    EMPTY = sendwhen.EMPTY
    CHANGED = sendwhen.CHANGED
    THRESHOLD = sendwhen.THRESHOLD


class SendWhen(_Model):
    """Whether a run's window is worth sending. A run that sends nothing ends Skipped, with
    the reason: neither a delivery nor a failure."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.mode != 'threshold' || has(self.threshold)",
                    "message": "mode threshold needs threshold, a condition such as rows > 0",
                    "fieldPath": ".threshold",
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": "self.mode == 'threshold' || !has(self.threshold)",
                    "message": "threshold is only for mode threshold",
                    "fieldPath": ".threshold",
                    "reason": "FieldValueForbidden",
                },
            ]
        }
    )

    mode: SendMode = Field(
        default=SendMode.ALWAYS,
        description=(
            "always (the default); nonEmpty: only a window with rows (skipIfEmpty is its older "
            "form); empty: only a window without rows (an alert that something stopped); "
            "changed: only when the rows differ from the last delivered run's (the first run "
            "sends); threshold: only when the threshold condition holds."
        ),
    )
    threshold: str | None = Field(
        default=None,
        min_length=1,
        max_length=sendwhen.MAX_THRESHOLD_CHARS,
        description=(
            "For mode threshold: a condition over the report's summary figures, e.g. "
            "overdue > 0 and open >= 5. Comparisons > >= < <= == != between a figure and a "
            "number (or two figures), joined with and, or, not and parentheses; a figure "
            "without a value in the window makes its comparisons false. Figures by "
            f"reportType: {sendwhen.figures_doc()}."
        ),
    )


MAX_CHANNELS = 4


class ChannelAttachments(StrEnum):
    """Whether a channel carries the report's files."""

    NONE = "none"
    MULTIPART = "multipart"


class WebhookChannel(_Model):
    """An HTTPS POST of the run's JSON summary, signed with HMAC-SHA256."""

    url: str = Field(
        min_length=9,
        max_length=2048,
        description=(
            "The https:// URL to POST to. An external destination: adding or changing it needs "
            "the schedule verb unless its host is on the platform's allowed channel hosts. The "
            "renderer's network guard applies to it and to every redirect (307/308 only)."
        ),
    )
    signing_secret_ref: SecretKeyRef = Field(
        description=(
            "The HMAC-SHA256 key: a key of a Secret in the report's namespace. The signature "
            "of the exact body is sent as X-Tidings-Signature: sha256=<hex>."
        )
    )
    attachments: ChannelAttachments = Field(
        default=ChannelAttachments.NONE,
        description=(
            "none (the default): the JSON summary alone; multipart: a multipart/form-data body "
            "with the summary as its first part and each attached file as a part."
        ),
    )


SLACK_CHANNEL_PATTERN = r"^[CGD][A-Z0-9]{6,20}$"
HOST_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"


class SlackChannel(_Model):
    """A message in a Slack channel with the run's summary and its files (Slack's external
    upload flow: files.getUploadURLExternal, the upload, files.completeUploadExternal)."""

    channel: str = Field(
        pattern=SLACK_CHANNEL_PATTERN,
        max_length=21,
        description=(
            "The channel's ID, e.g. C0123ABCD (channel details in Slack), not its name; the "
            "bot must be a member. An external destination: adding or changing it needs the "
            "schedule verb unless slack.com is on the platform's allowed channel hosts."
        ),
    )
    token_secret_ref: SecretKeyRef = Field(
        description=(
            "The bot token (xoxb-..., scopes files:write and chat:write): a key of a Secret "
            "in the report's namespace."
        )
    )


class TeamsChannel(_Model):
    """An Adaptive Card with the run's summary, posted to a Teams workflow webhook."""

    host: str = Field(
        min_length=1,
        max_length=253,
        pattern=HOST_PATTERN,
        description=(
            "The workflow URL's host, e.g. prod-12.westeurope.logic.azure.com: the destination "
            "admitted (adding or changing it needs the schedule verb unless it is on the "
            "platform's allowed channel hosts). A URL in the Secret for any other host is "
            "refused."
        ),
    )
    url_secret_ref: SecretKeyRef = Field(
        description=(
            "The workflow's https:// URL (it carries its own signature, so it is a "
            "credential): a key of a Secret in the report's namespace."
        )
    )


class Channel(_Model):
    """One destination besides email; exactly one kind is set."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.webhook), has(self.slack), has(self.teams)]"
                    ".filter(x, x).size() == 1",
                    "message": "set exactly one of webhook, slack and teams",
                }
            ]
        }
    )

    webhook: WebhookChannel | None = Field(
        default=None, description="An HTTPS POST of the JSON summary, signed."
    )
    slack: SlackChannel | None = Field(
        default=None, description="A Slack message with the summary and the report's files."
    )
    teams: TeamsChannel | None = Field(
        default=None, description="A Microsoft Teams Adaptive Card with the summary."
    )


class Delivery(_Model):
    """How the report is sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.attachments) && has(self.attachCsv) && self.attachCsv)",
                    "message": "attachCsv is the older form of attachments: with attachments "
                    "set, list csv there and drop attachCsv",
                    "fieldPath": ".attachCsv",
                },
                {
                    "rule": "!(has(self.skipIfEmpty) && self.skipIfEmpty && has(self.sendWhen) "
                    "&& self.sendWhen.mode != 'nonEmpty')",
                    "message": "skipIfEmpty is the older form of sendWhen mode nonEmpty: with "
                    "sendWhen set, drop skipIfEmpty",
                    "fieldPath": ".skipIfEmpty",
                },
            ]
        }
    )

    subject_template: str = Field(
        default="[Tidings] {name} — {date}",
        min_length=1,
        max_length=200,
        description=(
            "Subject line; {name} is the report's title, {date} the scheduled date (the send "
            "date) and {window} the data window, e.g. 6\u201312 May 2024. No other placeholders."
        ),
    )
    smtp_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "This namespace's SMTP override: a Secret with keys host, port, from and optionally "
            "username, password, tls (none|starttls|tls). Without it the platform relay is used."
        ),
    )
    attach_csv: bool = Field(
        default=False,
        description=(
            "Also attach the filtered rows as a (gzip-compressed) CSV file. The older form of "
            "attachments: [pdf, csv]; not allowed together with attachments."
        ),
    )
    attachments: list[AttachmentKind] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description=(
            "Files attached to the mail, any of pdf (the report), csv (every filtered row, "
            "gzip-compressed) and xlsx (every filtered row as a spreadsheet: typed cells, "
            "header row, frozen panes, filter buttons). Default [pdf], or [pdf, csv] with "
            "attachCsv."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    skip_if_empty: bool = Field(
        default=False,
        description=(
            "Send nothing when the window has no rows. The run's outcome is Skipped: it is "
            "not a failure and not a delivery, so consecutiveFailures and lastSentAt stay. "
            "The older form of sendWhen mode nonEmpty."
        ),
    )
    channels: list[Channel] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CHANNELS,
        description=(
            "Destinations besides the recipients' email, each reached once per run with the "
            "run's summary (docs/channels.md). The run is Delivered when every destination "
            "took it, partially delivered when some did."
        ),
    )
    send_when: SendWhen | None = Field(
        default=None,
        description="When a run sends: always (unset), nonEmpty, empty, changed or threshold.",
    )

    def send_mode(self) -> str:
        """sendWhen's mode, with skipIfEmpty read as its newer form."""
        if self.send_when is not None:
            return str(self.send_when.mode)
        return sendwhen.NON_EMPTY if self.skip_if_empty else sendwhen.ALWAYS

    page: Page = Field(default_factory=Page, description="The PDF's paper size and orientation.")
    pdf_variant: PdfVariant | None = Field(
        default=None,
        description=(
            "pdf/a-3b: an archival PDF/A-3b with every filtered row embedded as a CSV file "
            "associated with the document (AFRelationship Data), so the one file is the "
            "evidence; pdf/ua-1: a tagged, accessible PDF/UA-1. Unset: a plain PDF."
        ),
    )

    def attachment_kinds(self) -> list[str]:
        """What is attached, with attachCsv read as its newer form."""
        if self.attachments:
            return [str(kind) for kind in self.attachments]
        return ["pdf", "csv"] if self.attach_csv else ["pdf"]

    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description=(
            "Days to keep each run's ReportDelivery record, counted from the run's end, also "
            "after the report is deleted. Unset: the platform default (90 days). The "
            "platform maximum (operator setting) caps it."
        ),
    )


class FailurePolicy(_Model):
    """What happens when runs fail."""

    disable_after: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive failed runs after which the report is Disabled.",
    )
    retries: int = Field(
        default=4,
        ge=0,
        le=10,
        description="Retries inside one run for transient failures, with exponential backoff.",
    )
    timeout_seconds: int = Field(
        default=600,
        ge=30,
        le=86400,
        description="Deadline for one run, retries included.",
    )


def _no_schema_default(schema: dict[str, Any]) -> None:
    """Drop the field's default from the generated schema (the model keeps it)."""
    schema.pop("default", None)


class ScheduledReportSpec(_Model):
    """What the user wants: which data, filtered how, rendered as which report, sent when and to
    whom. Written only by the user; the operator never changes it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(self.reportType in ["
                    + ", ".join(f"'{t}'" for t in PROGRAM_SCOPED_TYPES)
                    + "]) || has(self.program)",
                    "message": f"program is required for this reportType: {PROGRAM_REQUIRED_WHY}",
                    "fieldPath": ".program",
                    "reason": "FieldValueRequired",
                },
                {
                    "rule": "!(self.reportType in ["
                    + ", ".join(f"'{t}'" for t in PROGRAM_REFUSED_TYPES)
                    + "]) || !has(self.program)",
                    "message": "program must not be set for this reportType: "
                    + PROGRAM_REFUSED_WHY,
                    "fieldPath": ".program",
                    "reason": "FieldValueForbidden",
                },
                {
                    "rule": "self.reportType == 'custom_query' || !has(self.customQuery)",
                    "message": "customQuery is only for reportType custom_query",
                    "fieldPath": ".customQuery",
                    "reason": "FieldValueForbidden",
                },
            ]
        }
    )

    title: str = Field(
        min_length=1, max_length=200, description="Report title, shown in the PDF and subject."
    )
    report_type: ReportType = Field(description="Which built-in report layout to render.")
    source: Source = Field(description="Where the rows come from: exactly one kind.")
    program: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description=(
            "The compliance program the report is scoped to: sql binds it as :program, http "
            "gets it as the query parameter program, and rows with a program column are "
            "filtered on it. Required for compliance_readiness, executive_summary, "
            "risk_report and msp_client_report; refused for audit_report, which crosses "
            "programs."
        ),
    )
    custom_query: CustomQuery | None = Field(
        default=None,
        description="Roll-up, chart and column labels of reportType custom_query.",
    )
    filters: Filters = Field(default_factory=Filters, description="Row filters and data window.")
    schedule: str = Field(
        default="",
        max_length=100,
        description=(
            "Five-field cron expression (minute hour day-of-month month day-of-week) or a macro "
            "(@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually), evaluated "
            "in timeZone. Empty or absent means manual runs only."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": (
                        "self == '' || self.trim() in ["
                        + ", ".join(f"'{m}'" for m in SCHEDULE_MACROS)
                        + "] || self.trim().split(' ').filter(f, f != '').size() == 5"
                    ),
                    "message": "schedule must have exactly five space-separated fields or be "
                    "one of the macros @hourly, @daily, @weekly, @monthly, @yearly",
                }
            ]
        },
    )
    time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone the schedule and the data window are computed in. Absent: "
        "the namespace's annotation tidings.dev/default-time-zone, else UTC (status.timeZone "
        "shows the zone in effect).",
        # No default in the CRD: an absent zone must stay absent to follow the namespace's.
        json_schema_extra=_no_schema_default,
    )
    suspend: bool = Field(default=False, description="true pauses the report (phase Paused).")
    recipients: Recipients = Field(description="Who receives the report; at most 50 in all.")
    owners: list[Address] = Field(
        default_factory=list,
        max_length=MAX_OWNERS,
        description="Who is told by mail, through the delivery relay, when a run fails "
        "permanently, recipients are refused (rate-limited per report) and always when the "
        "report turns Disabled. Bare addresses like recipients; outside the allowed domains "
        "they need the schedule verb.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    delivery: Delivery = Field(default_factory=Delivery, description="Subject, SMTP, attachments.")
    failure_policy: FailurePolicy = Field(
        default_factory=FailurePolicy, description="Retries, timeout and auto-disable."
    )
    template_ref: ConfigMapKeyRef | None = Field(
        default=None,
        description=(
            "Custom Jinja2 template from a ConfigMap key, rendered in a sandbox instead of the "
            "built-in layout for reportType."
        ),
    )


# -------------------------------------------------------------------------------------- status


class Phase(StrEnum):
    ACTIVE = "Active"
    PAUSED = "Paused"
    DISABLED = "Disabled"
    INVALID = "Invalid"
    MANUAL = "Manual"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(_Model):
    """A Kubernetes-style condition."""

    type: str = Field(max_length=64, description="Ready or Delivered.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(default="", max_length=64, description="CamelCase reason, for machines.")
    message: str = Field(default="", max_length=2048, description="Explanation, for humans.")
    last_transition_time: str | None = Field(
        default=None, description="When status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None, description="The spec generation this condition was computed from."
    )


class Outcome(StrEnum):
    DELIVERED = "Delivered"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class Renderer(StrEnum):
    PDF = "pdf"
    TEXT = "text"


class HistoryEntry(_Model):
    """One run of the report, newest first in status.history."""

    job_name: str = Field(max_length=253, description="The Job that ran.")
    scheduled_time: str | None = Field(
        default=None, description="The scheduled fire time this run reported on (RFC 3339)."
    )
    window_start: str | None = Field(default=None, description="Data window start (RFC 3339).")
    window_end: str | None = Field(default=None, description="Data window end (RFC 3339).")
    finished_at: str | None = Field(default=None, description="When the run ended (RFC 3339).")
    outcome: Outcome = Field(description="Delivered, Failed or Skipped (skipIfEmpty).")
    recipients_accepted: int = Field(default=0, description="Recipients the SMTP server accepted.")
    recipients_rejected: int = Field(default=0, description="Recipients the SMTP server refused.")
    bytes: int = Field(default=0, description="Size of the sent message in bytes.")
    renderer: Renderer | None = Field(
        default=None, description="pdf, or text when WeasyPrint was unavailable."
    )
    error: str = Field(default="", max_length=1024, description="Why the run failed, if it did.")
    test_recipient: str | None = Field(
        default=None,
        max_length=254,
        description=(
            "Set for a test send (tidings.dev/send-test): the one address it went to. A test "
            "changes nothing else in status."
        ),
    )
    message_id: str = Field(
        default="",
        max_length=998,
        description="The Message-ID header of the email, to look up in the relay's log.",
    )
    channels: list[
        Annotated[str, Field(max_length=300, description="One channel: its name and outcome.")]
    ] = Field(
        default_factory=list,
        max_length=MAX_CHANNELS,
        description="Each channel's outcome, e.g. webhook[0] accepted (replies: the record).",
    )
    owner_notice: str | None = Field(
        default=None,
        max_length=512,
        description="What this run told spec.owners: pending (owed, written with the count), "
        "sent (kind, to how many), rate-limited, or not sent and why. Never changes the "
        "counters.",
    )


class ScheduledReportStatus(_Model):
    """What the operator observed. Written only by the operator."""

    # A live object written by an older operator may still carry fields dropped since.
    model_config = ConfigDict(extra="ignore")

    phase: Phase | None = Field(
        default=None, description="Summary for display: Active, Paused, Disabled, Invalid, Manual."
    )
    next_send_at: str | None = Field(default=None, description="Next scheduled run (RFC 3339).")
    next_send_local: str | None = Field(
        default=None,
        max_length=64,
        description="nextSendAt as a wall time in spec.timeZone, e.g. Mon 2026-12-07 09:00 CET "
        "(the NEXT column).",
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="The zone the schedule runs in: spec.timeZone, else the namespace's "
        "default (annotation tidings.dev/default-time-zone), else UTC (the TZ column).",
    )
    owner_notice_sent_at: str | None = Field(
        default=None,
        description="When the last notice to spec.owners was accepted by the relay (RFC 3339): "
        "the per-report rate limit counts from it, across operator restarts.",
    )
    last_sent_at: str | None = Field(
        default=None, description="When the last delivered run was accepted by SMTP."
    )
    last_attempt_at: str | None = Field(default=None, description="When the last run ended.")
    consecutive_failures: int = Field(default=0, description="Failed runs since the last success.")
    last_error: str = Field(
        default="", max_length=1024, description="Why the last failed run failed."
    )
    last_error_brief: str = Field(
        default="", max_length=64, description="lastError's first line, cut short (-o wide)."
    )
    recipient_count: int = Field(default=0, description="To, Cc and Bcc addresses in the spec.")
    recipient_summary: str = Field(
        default="",
        max_length=320,
        description="The one recipient's address, else how many there are (the RECIPIENTS column).",
    )
    delivery_format: str = Field(
        default="",
        max_length=64,
        description="What is attached, e.g. pdf, pdf+csv or pdf/a-3b+xlsx (the FORMAT column).",
    )
    observed_generation: int | None = Field(
        default=None, description="The spec generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        description="Ready and Delivered conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    history: list[HistoryEntry] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description=f"Delivery log: the last {MAX_HISTORY} runs, newest first.",
    )
    run_now_handled: str = Field(
        default="",
        max_length=253,
        description="Digest (sha256:...) of the last tidings.dev/run-now value acted on.",
    )
    reactivate_handled: str = Field(
        default="",
        max_length=253,
        description="Digest (sha256:...) of the last tidings.dev/reactivate value acted on.",
    )
    counted_jobs: list[Annotated[str, Field(max_length=64, description="A Job uid.")]] = Field(
        default_factory=list,
        max_length=MAX_COUNTED,
        description=f"UIDs of the last {MAX_COUNTED} Jobs whose outcome was counted, newest "
        "first: with each Job's counted mark, the record that makes counting exactly-once.",
    )
    test_send_handled: str = Field(
        default="",
        max_length=253,
        description="Digest (sha256:...) of the tidings.dev/send-test value acted on; cleared "
        "when the annotation goes.",
    )
    test_send_count: int = Field(default=0, description="Test sends started (names their Jobs).")
    last_rows_digest: str | None = Field(
        default=None,
        pattern=sendwhen.DIGEST_PATTERN,
        description="rowsDigest of the last delivered run's ReportDelivery, handed to the next "
        "run for sendWhen mode changed.",
    )
    run_at_handled: str = Field(
        default="",
        max_length=253,
        description="Digest (sha256:...) of the last tidings.dev/run-at value acted on.",
    )
    resend_handled: str = Field(
        default="",
        max_length=253,
        description="Digest (sha256:...) of the last tidings.dev/resend value acted on.",
    )


class ObjectMeta(BaseModel):
    """The parts of metadata the renderer and CLI use; everything else is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(default="report", max_length=253)
    namespace: str = Field(default="default", max_length=63)
    uid: str = ""
    annotations: dict[str, str] = Field(default_factory=dict)


class ScheduledReport(BaseModel):
    """A whole ScheduledReport object, as applied with kubectl or read from a file."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_version: str = Field(default=f"{GROUP}/{VERSION}", alias="apiVersion")
    kind: str = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ScheduledReportSpec
    status: ScheduledReportStatus | None = None


# ------------------------------------------------------------------------------ ReportDelivery

DELIVERY_KIND = "ReportDelivery"
DELIVERY_PLURAL = "reportdeliveries"
DELIVERY_SINGULAR = "reportdelivery"
DELIVERY_SHORT_NAMES = ["rd"]
MAX_ADDRESS = 320


class Trigger(StrEnum):
    SCHEDULE = "Schedule"
    RUN_NOW = "RunNow"
    TEST = "Test"
    RERUN = "Rerun"  # tidings.dev/run-at: a chosen past window
    RESEND = "Resend"  # tidings.dev/resend: a record's window, to whom it did not reach


class DeliveredReport(_Model):
    """The report this run belonged to, as it was then (the report may be gone since)."""

    name: str = Field(max_length=253, description="The ScheduledReport's name.")
    uid: str = Field(max_length=64, description="The ScheduledReport's uid.")
    title: str = Field(default="", max_length=200, description="spec.title at the time.")
    type: str = Field(default="", max_length=64, description="spec.reportType at the time.")


class RefusedAddress(_Model):
    address: str = Field(max_length=MAX_ADDRESS, description="The refused address.")
    reply: str = Field(default="", max_length=1024, description="The SMTP reply or reason.")


class AddressList(_Model):
    """One of To, Cc or Bcc: whom the run was for, who accepted the message, who was refused."""

    intended: list[Annotated[str, Field(max_length=MAX_ADDRESS)]] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Whom the run was scheduled to send to: this list of the spec its Job "
        "carried (a @group as written), or the test address of a test send.",
    )
    accepted: list[Annotated[str, Field(max_length=MAX_ADDRESS)]] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Addresses the SMTP server accepted.",
    )
    refused: list[RefusedAddress] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Addresses refused, with the reply.",
    )


class DeliveredRecipients(_Model):
    """Counts (the SENT TO and REFUSED columns) and the addresses of each list. Bcc appears
    here and never in a mail header."""

    accepted: int = Field(default=0, ge=0, description="Recipients the SMTP server accepted.")
    refused: int = Field(default=0, ge=0, description="Recipients refused.")
    omitted: int = Field(
        default=0,
        ge=0,
        description=(
            "Addresses not listed below because the run's result did not fit the 4 KiB "
            "termination message (docs/records.md); they are still counted above."
        ),
    )
    to: AddressList = Field(default_factory=AddressList, description="To: addresses.")
    cc: AddressList = Field(default_factory=AddressList, description="Cc: addresses.")
    bcc: AddressList = Field(default_factory=AddressList, description="Bcc: addresses.")


class DeliveredAttachment(_Model):
    name: str = Field(max_length=255, description="File name.")
    bytes: int = Field(ge=0, description="Size in bytes, before transfer encoding.")
    sha256: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the content (hex).")


class ChannelResult(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"


class DeliveredChannel(_Model):
    """What one channel (spec.delivery.channels) did in the run."""

    name: str = Field(max_length=32, description="The channel, e.g. webhook[0].")
    type: str = Field(max_length=16, description="webhook, slack or teams.")
    destination: str = Field(default="", max_length=253, description="The destination's host.")
    outcome: ChannelResult = Field(description="accepted or refused.")
    failure: str | None = Field(
        default=None,
        json_schema_extra={"enum": ["transient", "permanent"]},
        description="transient or permanent, when refused.",
    )
    reply: str = Field(
        default="", max_length=1024, description="The destination's answer, or why it failed."
    )
    attempts: int = Field(default=0, ge=0, description="Requests the run made to it.")
    idempotency_key: str = Field(
        default="",
        max_length=64,
        description="Idempotency-Key: the same for every attempt at this report and window.",
    )


class ReportDeliverySpec(_Model):
    """What one finished run did. Written once by the operator; never changed."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self == oldSelf",
                    "message": "a ReportDelivery is a record of a run and cannot be changed",
                }
            ]
        }
    )

    report: DeliveredReport = Field(description="The report that ran.")
    job_name: str = Field(max_length=63, description="The Job that ran.")
    job_uid: str = Field(
        max_length=64, description="The Job's uid (the record's name is made from it)."
    )
    trigger: Trigger = Field(
        description="Schedule, RunNow (tidings.dev/run-now), Test, Rerun (tidings.dev/run-at) "
        "or Resend (tidings.dev/resend)."
    )
    rerun_at: str | None = Field(
        default=None,
        max_length=64,
        description="Rerun: the fire time asked for (RFC 3339); the window is computed as if "
        "the report had fired then.",
    )
    resend_of: str | None = Field(
        default=None,
        max_length=253,
        description="Resend: the ReportDelivery whose window was mailed again, to the "
        "recipients that run did not reach.",
    )
    scheduled_time: str | None = Field(
        default=None, description="The scheduled fire time (RFC 3339)."
    )
    window_start: str | None = Field(default=None, description="Data window start (RFC 3339).")
    window_end: str | None = Field(default=None, description="Data window end (RFC 3339).")
    window: str = Field(
        default="", max_length=64, description="The data window, for display (WINDOW column)."
    )
    started_at: str | None = Field(default=None, description="When the Job started (RFC 3339).")
    finished_at: str = Field(description="When the run ended (RFC 3339); retention counts from it.")
    outcome: Outcome = Field(description="Delivered, Failed or Skipped.")
    failure: str | None = Field(
        default=None,
        json_schema_extra={
            "enum": ["transient", "permanent", "timeout", "notStarted", "cancelled"]
        },
        description="transient, permanent, timeout, notStarted or cancelled, when the run failed.",
    )
    attempts: int = Field(default=0, ge=0, description="SMTP transactions the run started.")
    error: str = Field(
        default="", max_length=1024, description="Why the run failed, or who is missing."
    )
    message_id: str = Field(
        default="", max_length=998, description="The email's Message-ID header."
    )
    recipients: DeliveredRecipients = Field(
        default_factory=DeliveredRecipients, description="Who was sent the report."
    )
    renderer: Renderer | None = Field(
        default=None, description="pdf, or text when WeasyPrint was unavailable."
    )
    bytes: int = Field(default=0, ge=0, description="Size of the sent message (SIZE column).")
    attachments: list[DeliveredAttachment] = Field(
        default_factory=list, max_length=4, description="The attached files."
    )
    rows: int | None = Field(default=None, ge=0, description="Rows in the report after filters.")
    pages: int | None = Field(default=None, ge=0, description="Pages of the PDF.")
    rows_digest: str | None = Field(
        default=None,
        pattern=sendwhen.DIGEST_PATTERN,
        description="sha256 of the window's rows: what sendWhen mode changed compares.",
    )
    channels: list[DeliveredChannel] = Field(
        default_factory=list,
        max_length=MAX_CHANNELS,
        description="Each channel's outcome (spec.delivery.channels), besides the email.",
    )
    retention_days: int = Field(
        ge=1,
        le=MAX_RETENTION_DAYS,
        description=(
            "Days to keep this record after finishedAt: the report's "
            "spec.delivery.retentionDays or the platform default, as it was at the run."
        ),
    )


class ReportDelivery(BaseModel):
    """A whole ReportDelivery object."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_version: str = Field(default=f"{GROUP}/{VERSION}", alias="apiVersion")
    kind: str = DELIVERY_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ReportDeliverySpec


# ------------------------------------------------------------------------------ RecipientGroup

GROUP_KIND = "RecipientGroup"
GROUP_PLURAL = "recipientgroups"
GROUP_SINGULAR = "recipientgroup"
GROUP_SHORT_NAMES = ["rg"]


class RecipientGroupSpec(_Model):
    """Addresses a report names as @NAME in to, cc or bcc; each run sends to the members the
    group has when it starts."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.addresses.all(a, "
                    "self.addresses.exists_one(b, b.lowerAscii() == a.lowerAscii()))",
                    "message": "an address may appear only once in a group",
                }
            ]
        }
    )

    description: str = Field(
        default="", max_length=200, description="What the group is for (the DESCRIPTION column)."
    )
    addresses: list[Address] = Field(
        min_length=1,
        max_length=MAX_RECIPIENTS,
        description="The members: bare addresses, at most 50; a report's to, cc and bcc hold "
        "at most 50 addresses once its groups are expanded.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class RecipientGroup(BaseModel):
    """A whole RecipientGroup object."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_version: str = Field(default=f"{GROUP}/{VERSION}", alias="apiVersion")
    kind: str = GROUP_KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RecipientGroupSpec
