"""One run, end to end: report object -> rows -> filtered rows -> Report -> PDF (or text) ->
email -> RunResult. Shared by `tidings render`, `tidings send` and `tidings run`.

Transient failures (source unreachable, SMTP 4xx/timeouts) are retried inside the run with
exponential backoff, within spec.failurePolicy.retries and timeoutSeconds; permanent ones end it
at once. Rendering happens once: a retry resends the same bytes with the same Message-ID.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from tidings import branding, models, sendwhen
from tidings.branding import Branding, BrandingError, Logo, logo_from_data_uri
from tidings.contract import EX_SOFTWARE, EX_TEMPFAIL, TEST_SUBJECT_PREFIX
from tidings.renderer import channels, delivery, filters, reports, templating, text
from tidings.renderer.channels import run as channel_run
from tidings.renderer.datafiles import csv_attachment, xlsx_attachment
from tidings.renderer.deadline import DeadlineExceeded, budget, enforced
from tidings.renderer.deadline import remaining as deadline_remaining
from tidings.renderer.mail import (
    DEFAULT_MAX_BYTES,
    Attachment,
    SmtpSettings,
    build_message,
    encode,
    message_id,
    transmit,
)
from tidings.renderer.reports.fmt import window_span, window_stem
from tidings.renderer.result import (
    TRANSIENT,
    InputError,
    RunResult,
    RunTimedOut,
    TidingsError,
    failed,
    redact,
    sort_addresses,
)
from tidings.renderer.sources import QueryParams, load_rows
from tidings.schedule import compute_window, parse_rfc3339, rfc3339, scheduled_time_from_job_name
from tidings.schedule import zone as parse_zone

log = logging.getLogger("tidings.renderer")

DEFAULT_MAX_PDF_ROWS = branding.DEFAULT_MAX_PDF_ROWS
LOGO_CID = "logo@tidings"

T = TypeVar("T")


# --------------------------------------------------------------------------- the report object


def parse_report(data: Any) -> models.ScheduledReport:
    """A ScheduledReport from parsed YAML/JSON, or InputError (exit 65) listing every problem
    with its field path, using the same rules as admission when tidings.validation is present."""
    if not isinstance(data, Mapping) or "spec" not in data:
        raise InputError("the file is not a ScheduledReport object (no spec)")
    if data.get("kind", models.KIND) != models.KIND:
        raise InputError(f"kind {data.get('kind')!r} is not {models.KIND}")
    problems = _validation_problems(data["spec"])
    try:
        report = models.ScheduledReport.model_validate(data)
    except pydantic.ValidationError as error:
        problems = problems or [
            f"{_path(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)
        ]
        raise InputError("invalid ScheduledReport: " + "; ".join(problems)) from None
    if problems:
        raise InputError("invalid ScheduledReport: " + "; ".join(problems))
    return report


def _validation_problems(spec: Any) -> list[str]:
    try:
        from tidings.validation import validate_spec
    except ImportError:
        return []
    return [str(problem) for problem in validate_spec(spec).errors]


def _path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def load_report(path: Path) -> models.ScheduledReport:
    """The first ScheduledReport in a YAML (or JSON) file, parsed as the API server would see
    it (unquoted dates stay strings)."""
    from tidings.documents import load_documents

    try:
        documents = load_documents(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path} is not valid YAML: {error}") from None
    for document in documents:
        if isinstance(document, Mapping) and document.get("kind", models.KIND) == models.KIND:
            return parse_report(document)
    raise InputError(f"{path} holds no {models.KIND} object")


def int_setting(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number renderer setting from the environment; a bad value is configuration
    (exit 65), not a crash."""
    value = env.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{name}={value!r} must be a whole number") from None


def branding_from_environment(env: Mapping[str, str]) -> Branding:
    """The run's branding (namespace ConfigMap over platform variables); a bad value is
    configuration (exit 65) naming the key or variable."""
    try:
        return branding.from_environment(env)
    except BrandingError as error:
        raise InputError(str(error)) from None
    except OSError as error:
        raise InputError(f"cannot read {branding.MOUNT_PATH}: {error.strerror}") from None


def scheduled_time(env: Mapping[str, str], now: datetime) -> datetime:
    """$TIDINGS_SCHEDULED_TIME, else the minutes in a CronJob-made Job name, else now."""
    stamp = env.get("TIDINGS_SCHEDULED_TIME")
    if stamp:
        try:
            return parse_rfc3339(stamp)
        except ValueError as error:
            raise InputError(f"TIDINGS_SCHEDULED_TIME: {error}") from None
    from_name = scheduled_time_from_job_name(env.get("TIDINGS_JOB_NAME", ""))
    return from_name or now


def resend_list(env: Mapping[str, str]) -> frozenset[str] | None:
    """$TIDINGS_RESEND_RECIPIENTS (comma-separated), None when unset."""
    text = env.get("TIDINGS_RESEND_RECIPIENTS")
    if text is None:
        return None
    return frozenset(a.strip() for a in text.split(",") if a.strip())


def logo_data_uri(path: Path | None) -> str | None:
    """The logo embedded as a data: URI (the PDF fetcher loads nothing else)."""
    if path is None:
        return None
    mime = mimetypes.guess_type(path.name)[0] or ""
    if mime not in ("image/png", "image/jpeg", "image/svg+xml", "image/gif"):
        raise InputError(f"logo {path.name}: use a PNG, JPEG, GIF or SVG file")
    try:
        content = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read logo {path}: {error.strerror}") from None
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


# ----------------------------------------------------------------------------------- rendering


@dataclass
class Options:
    """Everything a run needs besides the report object and the scheduled time."""

    secret_dir: Path | None = None
    custom_template: str | None = None
    logo: str | None = None  # a data: URI (--logo, TIDINGS_LOGO_FILE); the branding's wins
    branding: Branding = field(default_factory=Branding)
    max_pdf_rows: int = DEFAULT_MAX_PDF_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    force_text: str | None = None  # a reason: render text even if WeasyPrint is there
    test_recipient: str | None = None  # a test send: to this address only, "[TEST]" subject
    # A resend (TIDINGS_RESEND_RECIPIENTS): only those of to/cc/bcc listed here.
    resend_to: frozenset[str] | None = None
    retries: int | None = None  # None: spec.failurePolicy.retries
    timeout: float | None = None  # seconds for the whole run; None: budget(timeoutSeconds)
    last_rows_digest: str | None = None  # the last delivered run's (sendWhen mode changed)

    def logo_image(self) -> Logo | None:
        if self.branding.logo is not None:
            return self.branding.logo
        try:
            return logo_from_data_uri(self.logo, "logo") if self.logo else None
        except BrandingError as error:
            raise InputError(str(error)) from None

    def retries_for(self, sr: models.ScheduledReport) -> int:
        return sr.spec.failure_policy.retries if self.retries is None else self.retries

    def deadline_for(self, sr: models.ScheduledReport) -> float:
        """The run's deadline as a time.monotonic() value, counted from now."""
        seconds = budget(sr.spec.failure_policy.timeout_seconds)
        return time.monotonic() + (seconds if self.timeout is None else self.timeout)


@dataclass
class Rendered:
    report: reports.Report
    scheduled: datetime
    window: tuple[datetime, datetime]
    html: str
    document: Attachment | None  # None when the PDF is not attached (and was not rendered)
    renderer: str | None  # pdf | text | None
    fallback_reason: str | None
    data: list[Attachment]  # the full-data files: csv, xlsx, as spec.delivery.attachments says
    subject: str
    text_body: str
    html_body: str
    logo: Logo | None = None  # shown in the HTML body as the inline part LOGO_CID
    rows: int = 0
    pages: int | None = None  # of the PDF
    rows_digest: str | None = None

    @property
    def attachments(self) -> list[Attachment]:
        return ([self.document] if self.document else []) + self.data

    def result_fields(self) -> dict[str, Any]:
        return {
            "scheduled_time": rfc3339(self.scheduled),
            "window_start": rfc3339(self.window[0]),
            "window_end": rfc3339(self.window[1]),
            "renderer": self.renderer,
            "rows": self.rows,
            "pages": self.pages,
            "rows_digest": self.rows_digest,
            "attachments": [
                {
                    "name": a.filename,
                    "bytes": len(a.content),
                    "sha256": hashlib.sha256(a.content).hexdigest(),
                }
                for a in self.attachments
            ],
        }


def render(
    sr: models.ScheduledReport,
    scheduled: datetime,
    options: Options,
    deadline: float,
    stage: list[str] | None = None,
    *,
    for_delivery: bool = False,
) -> Rendered:
    """Load, filter, summarize and render; nothing is sent. `stage[0]` tracks the step, for
    the message when the deadline interrupts it. `for_delivery` renders only what is attached
    (a preview always renders the PDF) and raises NotSent when spec.delivery.sendWhen (or
    skipIfEmpty) says this window is not sent."""
    stage = stage if stage is not None else [""]
    spec = sr.spec
    tz = parse_zone(spec.time_zone)
    try:
        window = compute_window(spec.filters.window, scheduled, spec.time_zone)
    except (ValueError, OverflowError) as error:
        raise InputError(window_error(error)) from None
    if spec.template_ref is not None and options.custom_template is None:
        raise InputError(
            f"spec.templateRef: the custom template ({spec.template_ref.name}/"
            f"{spec.template_ref.key}) is not available here"
        )
    params = QueryParams(
        window_start=window[0].astimezone(UTC),
        window_end=window[1].astimezone(UTC),
        status=list(spec.filters.status),
        tags=list(spec.filters.tags),
        assignee=list(spec.filters.assignee),
        team=list(spec.filters.team),
        program=spec.program,
    )
    stage[0] = "loading the data source"
    rows = retrying(
        lambda: load_rows(spec.source, params, options.secret_dir, deadline),
        options.retries_for(sr),
        deadline,
        options.sleep,
        "data source",
    )
    report_type = str(spec.report_type)
    kind = reports.KINDS[report_type]
    filters.check_columns(rows, kind.required, f"reportType {report_type}")
    kept = filters.apply_filters(
        rows,
        spec.filters,
        window,
        reports.time_column_for(report_type, rows),
        tz,
        program=spec.program,
        program_column_required=spec.source.inline is not None,
    )
    report = reports.build_report(
        report_type=report_type,
        title=spec.title,
        name=sr.metadata.name,
        namespace=sr.metadata.namespace,
        rows=kept,
        ctx=reports.Context(tz=tz, start=window[0], end=window[1], scheduled=scheduled),
        generated_at=options.now(),
        max_table_rows=options.max_pdf_rows,
        spec=spec,
        source_columns=dict.fromkeys(key for row in rows for key in row),
        page_size=str(spec.delivery.page.size),
        orientation=str(spec.delivery.page.orientation),
    )
    # Only sendWhen mode changed compares digests: other runs' result lines stay as they were.
    changed_mode = spec.delivery.send_mode() == sendwhen.CHANGED
    digest = sendwhen.rows_digest(kept) if changed_mode else None
    # A test send shows what the mail looks like, so it goes out whatever sendWhen says.
    if for_delivery and options.test_recipient is None:
        check_send_when(sr, report, len(kept), digest or "", options.last_rows_digest)
    kinds = spec.delivery.attachment_kinds()
    files = data_files_phrase(kinds)
    stage[0] = "rendering the template"
    logo = options.logo_image()
    html = templating.render_html(
        report,
        custom_template=options.custom_template,
        logo=logo.data_uri if logo else None,
        data_files=files,
        brand=options.branding,
    )
    # The window, not the send date, names the files: two windows never share a name.
    stem = f"{sr.metadata.name}-{window_stem(window[0], window[1], tz)}"
    document, renderer, reason, pages = None, None, None, None
    if "pdf" in kinds or not for_delivery:
        stage[0] = "rendering the PDF"
        variant = spec.delivery.pdf_variant
        document, renderer, reason, pages = _document(
            html, report, stem, options.force_text, files, str(variant) if variant else None, tz
        )
    stage[0] = "writing the data files"
    suffixes = {"csv": "csv.gz", "xlsx": "xlsx"}
    data = [data_file(report, k, f"{stem}.{suffixes[k]}", tz) for k in kinds if k in suffixes]
    return Rendered(
        report=report,
        scheduled=scheduled,
        window=window,
        html=html,
        document=document,
        renderer=renderer,
        fallback_reason=reason,
        data=data,
        subject=(TEST_SUBJECT_PREFIX if options.test_recipient else "")
        + templating.subject(
            spec.delivery.subject_template,
            title=spec.title,
            date=f"{scheduled.astimezone(tz):%Y-%m-%d}",
            window=window_span(window[0], window[1], tz),
        ),
        text_body=text.render_text(report, data_files=files),
        html_body=templating.render_email_html(
            report,
            attachment_name=document.filename if document else None,
            data_files=files,
            brand=options.branding,
            logo_cid=LOGO_CID if logo else None,
        ),
        logo=logo,
        rows=len(kept),
        pages=pages,
        rows_digest=digest,
    )


def data_file(report: reports.Report, kind: str, filename: str, tz: Any) -> Attachment:
    """Every filtered row as `kind` (csv or xlsx), typed by the report type's row schema."""
    if kind == "csv":
        return csv_attachment(report.rows, filename, tz, report.csv_columns)
    types = {c.key: c.type for c in reports.KINDS[report.report_type].schema}
    return xlsx_attachment(report.rows, filename, tz, report.csv_columns, types)


class NotSent(Exception):
    """spec.delivery.sendWhen (or skipIfEmpty) says this window is not sent; why, in words."""


def check_send_when(
    sr: models.ScheduledReport,
    report: reports.Report,
    rows: int,
    digest: str,
    last_digest: str | None,
) -> None:
    """NotSent when the report's sendWhen keeps this window back."""
    delivery = sr.spec.delivery
    if delivery.send_when is None and delivery.skip_if_empty:
        if report.empty:  # the older form keeps its older message
            raise NotSent(f"{report.empty_message} (spec.delivery.skipIfEmpty)")
        return
    mode = delivery.send_mode()
    figures = sendwhen.figure_values(
        report.report_type, rows, ((f.label, f.value) for f in report.figures)
    )
    try:
        decision = sendwhen.decide(
            mode,
            rows=0 if report.empty else rows,
            empty_message=report.empty_message,
            digest=digest,
            last_digest=last_digest,
            threshold=delivery.send_when.threshold if delivery.send_when else None,
            figures=figures,
        )
    except sendwhen.ThresholdError as error:  # admission refuses these; a file may not have
        raise InputError(f"spec.delivery.sendWhen.threshold: {error}") from None
    if not decision.send:
        raise NotSent(decision.reason)


def data_files_phrase(kinds: list[str]) -> str:
    """How the text names the full-data attachments: "" when there are none."""
    names = {"csv": "CSV file", "xlsx": "spreadsheet (xlsx)"}
    return " and ".join(names[k] for k in kinds if k in names)


def window_error(error: Exception) -> str:
    if isinstance(error, OverflowError):
        return "filters.window: a bound is outside the dates this renderer can compute with"
    return str(error)


def _document(
    html: str,
    report: reports.Report,
    stem: str,
    force_text: str | None,
    data_files: str,
    variant: str | None = None,
    tz: Any = None,
) -> tuple[Attachment, str, str | None, int | None]:
    """The PDF and its page count, or the text fallback with the reason WeasyPrint could not
    be used. A PDF/A-3b carries every filtered row as an embedded CSV associated with it."""
    from tidings.renderer.pdf import EmbeddedFile, PdfUnavailable, render_pdf_pages

    reason = force_text
    if reason is None:
        embedded = []
        if variant == "pdf/a-3b":
            embedded.append(
                EmbeddedFile(f"{stem}.csv", csv_text(report, tz), "The report's rows (CSV)")
            )
        try:
            pdf, pages = render_pdf_pages(html, variant=variant, embedded=embedded)
            return Attachment(f"{stem}.pdf", pdf, "application", "pdf"), "pdf", None, pages
        except PdfUnavailable as error:
            reason = str(error)
    log.warning("PDF renderer unavailable, attaching plain text: %s", reason)
    body = text.render_text(report, fallback_reason=reason, data_files=data_files)
    return Attachment(f"{stem}.txt", body.encode(), "text", "plain"), "text", reason, None


def csv_text(report: reports.Report, tz: Any) -> bytes:
    """The rows as the CSV attachment has them, uncompressed (a PDF compresses its streams)."""
    import gzip

    return gzip.decompress(
        csv_attachment(report.rows, "rows.csv.gz", tz, report.csv_columns).content
    )


# ------------------------------------------------------------------------------------ delivery


def retrying(
    action: Callable[[], T],
    retries: int,
    deadline: float,
    sleep: Callable[[float], None],
    what: str,
) -> T:
    """Run action; retry transient TidingsErrors with exponential backoff (2 s, 4 s, ... capped
    at 60 s) while retries and time remain. The last error is raised as is."""
    attempt = 0
    while True:
        try:
            return action()
        except TidingsError as error:
            delay = delivery.backoff(attempt + 1)
            if (
                error.failure != TRANSIENT
                or attempt >= retries
                or deadline_remaining(deadline) <= delay
            ):
                raise
            attempt += 1
            log.warning("%s: %s; retry %d/%d in %.0fs", what, error, attempt, retries, delay)
            sleep(delay)


def _narrowed(recipients: models.Recipients, only: frozenset[str]) -> models.Recipients:
    """The lists with only the addresses in `only` (never one that is not on them)."""
    lists = {
        name: [a for a in getattr(recipients, name) if a in only] for name in ("to", "cc", "bcc")
    }
    if not any(lists.values()):
        raise InputError(
            "TIDINGS_RESEND_RECIPIENTS: none of the addresses to resend to is on the report"
        )
    return recipients.model_copy(update=lists)


def deliver(
    sr: models.ScheduledReport,
    rendered: Rendered,
    settings: SmtpSettings,
    options: Options,
    deadline: float,
) -> RunResult:
    """Build the message and send it (delivery.py decides retries and resends). Delivered when
    at least one recipient has it; who is missing, and why, is in `error`."""
    recipients = sr.spec.recipients
    if options.test_recipient:  # to the tester only: nobody on the report's lists
        recipients = models.Recipients(to=[options.test_recipient])
    elif options.resend_to is not None:  # a resend: the report's own lists, narrowed
        recipients = _narrowed(recipients, options.resend_to)
    domain = settings.sender.rpartition("@")[2].strip(" >")
    key = sr.metadata.uid or f"{sr.metadata.namespace}/{sr.metadata.name}"
    msg_id = message_id(
        # A test's Message-ID differs, so mail clients never fold it into the real report.
        f"test|{options.test_recipient}|{key}" if options.test_recipient else key,
        rendered.scheduled,
        rendered.window[0],
        rendered.window[1],
        domain,
    )
    attachments = rendered.attachments
    brand = options.branding
    try:
        message = build_message(
            sender=branded_sender(settings.sender, brand),
            reply_to=brand.reply_to,
            inline=[(LOGO_CID, rendered.logo.content, "image", rendered.logo.subtype)]
            if rendered.logo
            else [],
            to=recipients.to,
            cc=recipients.cc,
            subject=rendered.subject,
            text=rendered.text_body,
            html=rendered.html_body,
            attachments=attachments,
            msg_id=msg_id,
            date=options.now(),
        )
        data = encode(message)
    except (ValueError, TypeError) as error:  # a header the email package refuses
        raise InputError(f"the message cannot be built: {error}") from None
    everyone = [*recipients.to, *recipients.cc, *recipients.bcc]
    done = delivery.Delivery()

    def fields() -> dict[str, Any]:
        return dict(
            recipients_accepted=len(done.accepted),
            recipients_rejected=len(done.refused),
            bytes=len(data),
            message_id=msg_id,
            attempts=done.attempts,
            addresses=sort_addresses(
                {"to": recipients.to, "cc": recipients.cc, "bcc": recipients.bcc},
                done.accepted,
                done.refused,
            ),
            **rendered.result_fields(),
        )

    try:
        delivery.deliver(
            lambda pending: transmit(data, pending, settings, options.max_bytes),
            everyone,
            options.retries_for(sr),
            deadline,
            options.sleep,
            lambda message: log.warning("SMTP: %s", message),
            done,
        )
    except TidingsError as error:  # nobody received it: the refusals still go in the record
        return failed(error, **fields())
    note = delivery_note(done, len(everyone))
    if not done.accepted:  # only unconfirmed copies: maybe delivered, never confirmed
        return RunResult(
            outcome="Failed",
            failure=TRANSIENT,
            error=f"delivery unconfirmed, not sent again: {note}; check whether it arrived",
            exit_code=EX_TEMPFAIL,
            **fields(),
        )
    return RunResult(outcome="Delivered", error=note, **fields())


def channel_summary(
    sr: models.ScheduledReport, rendered: Rendered, mail_outcome: str, mailed: int = 0
) -> channels.Summary:
    """What the channels say about this run."""
    report = rendered.report
    return channels.Summary(
        namespace=sr.metadata.namespace,
        report=sr.metadata.name,
        report_uid=sr.metadata.uid or "",
        title=sr.spec.title,
        report_type=report.report_type,
        scheduled=rfc3339(rendered.scheduled),
        window_start=rfc3339(rendered.window[0]),
        window_end=rfc3339(rendered.window[1]),
        rows=rendered.rows,
        figures=sendwhen.figure_values(
            report.report_type, rendered.rows, ((f.label, f.value) for f in report.figures)
        ),
        outcome=mail_outcome,
        attachments=rendered.attachments,
        mailed=mailed,
        run=os.environ.get("TIDINGS_JOB_NAME", ""),
    )


def branded_sender(sender: str, brand: Branding) -> str:
    """From with the display name: the namespace's fromName, else the one written in the From
    setting in use, else the platform's fromName."""
    name, address = parseaddr(sender)
    chosen = brand.from_name if brand.from_name_from_namespace else name or brand.from_name
    return formataddr((chosen, address)) if chosen else sender


def delivery_note(done: delivery.Delivery, total: int) -> str:
    """One line for `error` and status: who is missing and why, and any unknown outcome."""
    parts = []
    if done.missing and done.accepted:
        parts.append(f"partially delivered to {len(done.accepted)} of {total}")
    if done.refused:
        parts.append(
            "not delivered to: " + ", ".join(f"{a}: {why}" for a, why in done.refused.items())
        )
    if done.unconfirmed:
        parts.append("unconfirmed for: " + ", ".join(done.unconfirmed))
    parts.extend(done.notes)
    return "; ".join(parts)


def execute(
    sr: models.ScheduledReport,
    scheduled: datetime,
    options: Options,
    settings: Callable[[], SmtpSettings],
) -> RunResult:
    """A whole run within its deadline; every failure becomes a RunResult with its exit code
    (never raises for a TidingsError). `settings` is called only when there is something to
    send."""
    deadline = options.deadline_for(sr)
    fields: dict[str, Any] = {"scheduled_time": rfc3339(scheduled)}
    stage = ["computing the window"]
    try:
        with enforced(deadline):
            try:
                window = compute_window(sr.spec.filters.window, scheduled, sr.spec.time_zone)
                fields.update(window_start=rfc3339(window[0]), window_end=rfc3339(window[1]))
            except (ValueError, OverflowError) as error:
                raise InputError(window_error(error)) from None
            try:
                rendered = render(sr, scheduled, options, deadline, stage, for_delivery=True)
            except NotSent as why:
                return RunResult(outcome="Skipped", error=f"nothing sent: {why}", **fields)
            fields.update(rendered.result_fields())
            # Read before anything is sent: a missing key must not stop the run after the mail.
            # A resend is for the mail recipients its run missed: the channels had their post
            # then (Slack and Teams have no idempotency key, so a repost would show twice).
            skip_channels = options.test_recipient or options.resend_to is not None
            hooks = [] if skip_channels else channel_run.channels_for(sr)
            stage[0] = "sending over SMTP"
            mail = deliver(sr, rendered, settings(), options, deadline)
            if not hooks:
                return mail
            stage[0] = "posting to the channels"
            retries = options.retries_for(sr)
            summary = channel_summary(sr, rendered, mail.outcome, mail.recipients_accepted)
            done = channels.deliver_all(hooks, summary, retries, deadline, options.sleep)
            return channel_run.combine(mail, done)
    except TidingsError as error:
        return failed(error, **fields)
    except DeadlineExceeded:
        limit = sr.spec.failure_policy.timeout_seconds
        return failed(
            RunTimedOut(
                f"the run reached its deadline while {stage[0]} and was stopped "
                f"(failurePolicy.timeoutSeconds {limit}s, less a reserve to report in time)"
            ),
            **fields,
        )


def internal_error(error: BaseException, secrets: list[str | None]) -> RunResult:
    """An unexpected exception as a result: exit 1, transient (a retry may well work). Only the
    exception's type and first line are kept, with any known secret value masked."""
    log.exception("internal error")
    first = (str(error).strip().splitlines() or [""])[0]
    return RunResult(
        outcome="Failed",
        failure=TRANSIENT,
        error=redact(f"internal error: {type(error).__name__}: {first}", secrets)[:1000],
        exit_code=EX_SOFTWARE,
    )


def known_secrets(env: Mapping[str, str]) -> list[str | None]:
    """Secret values this process may have seen, to mask in an unexpected error's message."""
    found: list[str | None] = [env.get("TIDINGS_SMTP_PASSWORD")]
    smtp_dir = Path(env.get("TIDINGS_SMTP_SECRET_DIR") or "/etc/tidings/smtp")
    files = [
        Path(env.get("TIDINGS_SOURCE_SECRET_DIR") or "/etc/tidings/source") / "value",
        smtp_dir / "password",
        Path(env.get("TIDINGS_SMTP_PASSWORD_FILE") or smtp_dir / "password"),
    ]
    for path in files:
        try:
            found.append(path.read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue
    return found


def write_result(result: RunResult, path: str | None = None) -> None:
    """The JSON line to $TIDINGS_RESULT_PATH (default /dev/termination-log) and to stdout. Failing
    to write it never changes the run's outcome."""
    line = result.to_json()
    print(line, flush=True)
    target = path or os.environ.get("TIDINGS_RESULT_PATH") or "/dev/termination-log"
    try:
        Path(target).write_text(line + "\n", encoding="utf-8")
    except OSError as error:
        log.warning("could not write the result to %s: %s", target, error.strerror)
