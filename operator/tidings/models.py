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

GROUP = "tidings.dev"
VERSION = "v1alpha1"
KIND = "ScheduledReport"
PLURAL = "scheduledreports"
SINGULAR = "scheduledreport"
SHORT_NAMES = ["sr"]
CATEGORIES = ["tidings"]

MAX_RECIPIENTS = 50
MAX_HISTORY = 20
MAX_COUNTED = 32
# The spec travels to each run in its pod template annotation (limited by the API to 256 KiB).
MAX_SPEC_BYTES = 240 * 1024
MAX_INLINE_ROWS = 5000
MAX_FILTER_VALUES = 50


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
            "SELECT statement. Bound parameters :window_start, :window_end and :status, :tags, "
            ":assignee (the filter values) are supplied; values are never interpolated."
        ),
    )


class HttpSource(_Model):
    """Rows from a JSON document fetched with GET."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^https?://",
        description="http(s) URL of the JSON document. Query parameters may be included.",
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
    window: Window = Field(
        default_factory=lambda: Window(last="7d"),
        description="The data window; default the last 7 days.",
    )


Address = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        description="A bare email address (name@example.com): no display name, ASCII only.",
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
    to: list[Address] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="To: addresses.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    cc: list[Address] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Cc: addresses.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    bcc: list[Address] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS,
        description="Bcc: addresses; in the envelope only, never in the headers.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class Delivery(_Model):
    """How the report is sent."""

    subject_template: str = Field(
        default="[Tidings] {name} — {date}",
        min_length=1,
        max_length=200,
        description=(
            "Subject line; {name} is the report's title and {date} the scheduled date. "
            "No other placeholders."
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
        default=False, description="Also attach the filtered rows as a (gzip-compressed) CSV file."
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


class ScheduledReportSpec(_Model):
    """What the user wants: which data, filtered how, rendered as which report, sent when and to
    whom. Written only by the user; the operator never changes it."""

    title: str = Field(
        min_length=1, max_length=200, description="Report title, shown in the PDF and subject."
    )
    report_type: ReportType = Field(description="Which built-in report layout to render.")
    source: Source = Field(description="Where the rows come from: exactly one kind.")
    filters: Filters = Field(default_factory=Filters, description="Row filters and data window.")
    schedule: str = Field(
        default="",
        max_length=100,
        description=(
            "Five-field cron expression (minute hour day-of-month month day-of-week) evaluated "
            "in timeZone. Empty or absent means manual runs only."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self == '' || self.trim().split(' ').filter(f, f != '').size() == 5",
                    "message": "schedule must have exactly five space-separated fields",
                }
            ]
        },
    )
    time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone the schedule and the data window are computed in.",
    )
    suspend: bool = Field(default=False, description="true pauses the report (phase Paused).")
    recipients: Recipients = Field(description="Who receives the report; at most 50 in all.")
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
    outcome: Outcome = Field(description="Delivered or Failed.")
    recipients_accepted: int = Field(default=0, description="Recipients the SMTP server accepted.")
    recipients_rejected: int = Field(default=0, description="Recipients the SMTP server refused.")
    bytes: int = Field(default=0, description="Size of the sent message in bytes.")
    renderer: Renderer | None = Field(
        default=None, description="pdf, or text when WeasyPrint was unavailable."
    )
    error: str = Field(default="", max_length=1024, description="Why the run failed, if it did.")


class ScheduledReportStatus(_Model):
    """What the operator observed. Written only by the operator."""

    # A live object written by an older operator may still carry fields dropped since.
    model_config = ConfigDict(extra="ignore")

    phase: Phase | None = Field(
        default=None, description="Summary for display: Active, Paused, Disabled, Invalid, Manual."
    )
    next_send_at: str | None = Field(default=None, description="Next scheduled run (RFC 3339).")
    last_sent_at: str | None = Field(
        default=None, description="When the last delivered run was accepted by SMTP."
    )
    last_attempt_at: str | None = Field(default=None, description="When the last run ended.")
    consecutive_failures: int = Field(default=0, description="Failed runs since the last success.")
    last_error: str = Field(
        default="", max_length=1024, description="Why the last failed run failed."
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
