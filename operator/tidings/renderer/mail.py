"""Email: build the message (pure) and send it over SMTP (I/O), classifying every failure.

- Bcc recipients are in the envelope only, never in a header.
- The Message-ID is derived from the report's UID and scheduled window, so a repeated run for
  the same window produces the same Message-ID (mail clients collapse duplicates).
- TLS modes are explicit: `starttls` fails when the server does not offer STARTTLS, never falls
  back to plain text; `tls` is implicit TLS (SMTPS). Certificates are verified.
- The size guard counts the encoded message (base64 adds about a third) and the server's
  advertised SIZE, and fails with AttachmentTooLarge before anything is sent.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

from tidings.renderer.result import (
    AttachmentTooLarge,
    DeliveryDeferred,
    DeliveryRefused,
    TidingsError,
    redact,
)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_SMTP_SECRET_DIR = "/etc/tidings/smtp"
TLS_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    tls: str = "none"
    sender: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise DeliveryRefused(
                "no SMTP relay configured: set TIDINGS_SMTP_HOST (or --smtp-host), or "
                "spec.delivery.smtpSecretRef"
            )
        if self.tls not in TLS_MODES:
            raise DeliveryRefused(f"SMTP tls {self.tls!r} must be one of {', '.join(TLS_MODES)}")
        if not 0 < self.port < 65536:
            raise DeliveryRefused(f"SMTP port {self.port} is not a TCP port")
        if "@" not in parseaddr(self.sender)[1]:
            raise DeliveryRefused(
                f"SMTP sender {self.sender!r} is not an address: "
                "set TIDINGS_SMTP_FROM or --smtp-from"
            )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def settings_from_environment(
    env: Mapping[str, str] | None = None, secret_dir: Path | None = None
) -> SmtpSettings:
    return settings_from_values(environment_values(env, secret_dir))


def environment_values(
    env: Mapping[str, str] | None = None, secret_dir: Path | None = None
) -> dict[str, str | None]:
    """The namespace's SMTP Secret (mounted directory with a `host` file) replaces the platform
    relay entirely; otherwise the platform relay comes from TIDINGS_SMTP_* variables."""
    env = os.environ if env is None else env
    directory = secret_dir or Path(env.get("TIDINGS_SMTP_SECRET_DIR") or DEFAULT_SMTP_SECRET_DIR)
    if (directory / "host").is_file():

        def read(key: str) -> str | None:
            path = directory / key
            return path.read_text(encoding="utf-8").strip() if path.is_file() else None

        values = {key: read(key) for key in ("host", "port", "from", "username", "password", "tls")}
        values["timeout"] = env.get("TIDINGS_SMTP_TIMEOUT")
        values["ca_file"] = env.get("TIDINGS_SMTP_CA_FILE")
    else:
        password = env.get("TIDINGS_SMTP_PASSWORD")
        password_file = env.get("TIDINGS_SMTP_PASSWORD_FILE")
        if not password and password_file:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        values = {
            "host": env.get("TIDINGS_SMTP_HOST"),
            "port": env.get("TIDINGS_SMTP_PORT"),
            "from": env.get("TIDINGS_SMTP_FROM"),
            "username": env.get("TIDINGS_SMTP_USERNAME"),
            "password": password,
            "tls": env.get("TIDINGS_SMTP_TLS"),
            "timeout": env.get("TIDINGS_SMTP_TIMEOUT"),
            "ca_file": env.get("TIDINGS_SMTP_CA_FILE"),
        }
    return values


def settings_from_values(values: Mapping[str, str | None]) -> SmtpSettings:
    """SmtpSettings from strings (environment, Secret files or CLI flags); empty means default."""
    try:
        port = int(values.get("port") or 25)
        timeout = float(values.get("timeout") or 30)
    except ValueError as error:
        raise DeliveryRefused(f"SMTP port/timeout is not a number: {error}") from None
    return SmtpSettings(
        host=(values.get("host") or "").strip(),
        port=port,
        tls=(values.get("tls") or "none").strip().lower(),
        sender=(values.get("from") or "").strip(),
        username=values.get("username") or None,
        password=values.get("password") or None,
        timeout=timeout,
        ca_file=values.get("ca_file") or None,
    )


# -------------------------------------------------------------------------------------- build


def message_id(uid: str, scheduled: datetime, start: datetime, end: datetime, domain: str) -> str:
    """Stable per report and window: retries and duplicate Jobs reuse it."""
    key = "|".join([uid, scheduled.isoformat(), start.isoformat(), end.isoformat()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<tidings.{digest}@{domain or 'tidings.invalid'}>"


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    text: str,
    html: str,
    attachments: Sequence[Attachment],
    msg_id: str,
    date: datetime,
) -> EmailMessage:
    """The message with headers To/Cc (never Bcc), a text and an HTML part, and attachments."""
    message = EmailMessage(policy=policy.default)
    message["From"] = sender
    if to:
        message["To"] = [Address(addr_spec=a) for a in to]
    if cc:
        message["Cc"] = [Address(addr_spec=a) for a in cc]
    if not to and not cc:
        # Only Bcc recipients: an empty group keeps the headers valid without revealing anyone.
        message["To"] = "undisclosed-recipients:;"
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = msg_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for item in attachments:
        message.add_attachment(
            item.content, maintype=item.maintype, subtype=item.subtype, filename=item.filename
        )
    return message


def encode(message: EmailMessage) -> bytes:
    """The bytes that go over the wire (CRLF line ends, base64 attachments)."""
    return message.as_bytes(policy=policy.SMTP)


def check_size(size: int, limit: int, what: str = "the size guard") -> None:
    if limit and size > limit:
        raise AttachmentTooLarge(
            f"AttachmentTooLarge: the encoded message is {size:,} bytes, over {what} of "
            f"{limit:,} bytes; nothing was sent (fewer rows, spec.delivery.attachCsv: false, or "
            "a larger TIDINGS_MAX_MESSAGE_BYTES)"
        )


# --------------------------------------------------------------------------------------- send


@dataclass
class SendResult:
    accepted: list[str]
    rejected: dict[str, str]  # address -> "550 reason"
    size: int


def send(
    data: bytes,
    recipients: Sequence[str],
    settings: SmtpSettings,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SendResult:
    """Send to every recipient in one transaction. Delivered if at least one is accepted; the
    refused ones are reported. Raises DeliveryDeferred (retry may help) or DeliveryRefused."""
    check_size(len(data), max_bytes)
    envelope_from = parseaddr(settings.sender)[1]
    secrets = [settings.password]
    try:
        connection = _connect(settings)
        try:
            size_limit = int(connection.esmtp_features.get("size", "0").split()[0] or 0)
            check_size(len(data), size_limit, f"the SIZE limit of {settings.host}")
            if settings.username:
                connection.login(settings.username, settings.password or "")
            refused = connection.sendmail(envelope_from, list(recipients), data)
        finally:
            _quit(connection)
    except TidingsError:
        raise
    except smtplib.SMTPRecipientsRefused as error:
        raise _all_refused(error.recipients) from None
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryRefused(
            f"SMTP authentication refused by {settings.where}: {_reply(error, secrets)}"
        ) from None
    except smtplib.SMTPResponseException as error:
        # Connect greeting, MAIL FROM or DATA refused: the code decides.
        kind = DeliveryRefused if error.smtp_code >= 500 else DeliveryDeferred
        raise kind(f"SMTP {settings.where} refused the message: {_reply(error, secrets)}") from None
    except (ssl.SSLError, ssl.CertificateError) as error:
        raise DeliveryRefused(
            f"TLS handshake with {settings.where} failed ({settings.tls}): {error}"
        ) from None
    except TimeoutError:
        raise DeliveryDeferred(
            f"SMTP {settings.where} did not answer within {settings.timeout:g}s"
        ) from None
    except smtplib.SMTPServerDisconnected as error:
        if isinstance(error.__context__, TimeoutError):  # smtplib re-raises a read timeout so
            raise DeliveryDeferred(
                f"SMTP {settings.where} did not answer within {settings.timeout:g}s"
            ) from None
        raise DeliveryDeferred(f"SMTP {settings.where} closed the connection: {error}") from None
    except smtplib.SMTPException as error:  # e.g. no AUTH method in common
        raise DeliveryRefused(f"SMTP {settings.where}: {redact(str(error), secrets)}") from None
    except OSError as error:  # refused, unreachable, name resolution
        raise DeliveryDeferred(f"cannot connect to SMTP {settings.where}: {error}") from None
    rejected = {addr: _code_text(code, text) for addr, (code, text) in refused.items()}
    accepted = [r for r in recipients if r not in refused]
    return SendResult(accepted=accepted, rejected=rejected, size=len(data))


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Connected, greeted, EHLO'd and (for starttls) upgraded; certificates verified against the
    host name, so the constructors get the host (smtplib uses it as the TLS server name)."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.tls == "tls":
        connection: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        connection.ehlo_or_helo_if_needed()
        if settings.tls == "starttls":
            if not connection.has_extn("starttls"):
                raise DeliveryRefused(
                    f"SMTP {settings.where} does not offer STARTTLS, which is required "
                    "(tls: starttls); refusing to send in plain text"
                )
            connection.starttls(context=context)
            connection.ehlo()
    except BaseException:
        connection.close()
        raise
    return connection


def _quit(connection: smtplib.SMTP) -> None:
    """After DATA was accepted, a failing QUIT must not turn delivery into failure."""
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _all_refused(refused: Mapping[str, tuple[int, bytes]]) -> TidingsError:
    details = "; ".join(f"{a}: {_code_text(c, t)}" for a, (c, t) in refused.items())
    if all(code >= 500 for code, _ in refused.values()):
        return DeliveryRefused(f"every recipient was refused: {details}")
    return DeliveryDeferred(f"every recipient was refused, some temporarily: {details}")


def _code_text(code: int, text: bytes | str) -> str:
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(message.split())}"


def _reply(error: smtplib.SMTPResponseException, secrets: list[str | None]) -> str:
    return redact(_code_text(error.smtp_code, error.smtp_error), secrets)
