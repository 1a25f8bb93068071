"""Email: build the message (pure) and send it over SMTP (I/O), classifying every failure.

- Bcc recipients are in the envelope only, never in a header.
- The Message-ID is derived from the report's UID and scheduled window, so a repeated run for
  the same window produces the same Message-ID (mail clients collapse duplicates).
- TLS modes are explicit: `starttls` fails when the server does not offer STARTTLS, never falls
  back to plain text; `tls` is implicit TLS (SMTPS). Certificates are verified.
- The size guard counts the encoded message (base64 adds about a third) and the server's
  advertised SIZE, and fails with AttachmentTooLarge before anything is sent.
- Through the delivery relay (docs/relay.md) the password is the pod's projected
  service-account token, read from TIDINGS_RELAY_TOKEN_DIR at each connection (the kubelet
  rotates it).
"""

from __future__ import annotations

import hashlib
import os
import re
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

from tidings.contract import RELAY_TOKEN_DIR_ENV
from tidings.renderer.deadline import DeadlineExceeded
from tidings.renderer.result import (
    AttachmentTooLarge,
    DeliveryDeferred,
    DeliveryRefused,
    InputError,
    TidingsError,
    redact,
)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_SMTP_SECRET_DIR = "/etc/tidings/smtp"
RELAY_USERNAME = "pod-token"  # the relay ignores it: the token says who the pod is
TLS_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send. Every problem here is configuration, fixed by a person: an
    InputError (exit 65) naming the setting, never a retry."""

    host: str
    port: int = 25
    tls: str = "none"
    sender: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    ca_file: str | None = None
    ca_data: str | None = None  # PEM certificates trusted besides the system's (private CAs)
    allow_plain_auth: bool = False
    origin: str = "TIDINGS_SMTP_* settings"  # where these came from, for messages
    token_file: str | None = None  # the relay token, the password at each connection

    def __post_init__(self) -> None:
        if not self.host:
            raise InputError(
                "no SMTP relay configured: set TIDINGS_SMTP_HOST (or --smtp-host), or "
                "spec.delivery.smtpSecretRef"
            )
        if self.tls not in TLS_MODES:
            raise InputError(
                f"SMTP tls {self.tls!r} ({self.origin}) must be one of {', '.join(TLS_MODES)}"
            )
        if not 0 < self.port < 65536:
            raise InputError(f"SMTP port {self.port} ({self.origin}) is not a TCP port")
        if problem := sender_problem(self.sender):
            raise InputError(f"SMTP from {self.sender!r} ({self.origin}): {problem}")
        # A relay token is short-lived and good for the relay's audience only (docs/relay.md).
        plain_ok = self.allow_plain_auth or self.token_file is not None
        if self.username and self.tls == "none" and not plain_ok:
            raise InputError(
                f"SMTP AUTH over a plain-text connection would expose the password "
                f"({self.origin}): use tls starttls or tls, or allow it explicitly with "
                "TIDINGS_SMTP_ALLOW_PLAIN_AUTH=true (Secret key allow_plain_auth)"
            )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def sender_problem(sender: str) -> str | None:
    """Rule for the From value: one line; an ASCII address (the SMTP envelope carries it as
    is), optionally with a display name, which may be any text."""
    if any(ord(c) < 32 or ord(c) == 127 for c in sender):
        return "must be one line without control characters (header injection)"
    address = parseaddr(sender)[1]
    if "@" not in address:
        return "is not an address: set TIDINGS_SMTP_FROM, --smtp-from or the Secret's `from`"
    if not address.isascii():
        return "the address must be ASCII (a display name may use any characters)"
    return None


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
            if not path.is_file():
                return None
            try:
                return path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                raise InputError(f"the namespace SMTP Secret's {key}: {error}") from None

        keys = ("host", "port", "from", "username", "password", "tls", "allow_plain_auth")
        values = {key: read(key) for key in keys}
        values["timeout"] = env.get("TIDINGS_SMTP_TIMEOUT")
        values["ca_file"] = env.get("TIDINGS_SMTP_CA_FILE")
        # The namespace relay's private CA, beside the platform's (which may sign it too).
        pems = (env.get("TIDINGS_SMTP_CA_PEM"), read("ca.crt"))
        values["ca_data"] = "\n".join(p for p in pems if p) or None
        values["origin"] = "the namespace SMTP Secret (spec.delivery.smtpSecretRef)"
    else:
        values = platform_values(env)
    return values


def platform_values(env: Mapping[str, str]) -> dict[str, str | None]:
    """The platform relay from TIDINGS_SMTP_* variables (the delivery relay's own upstream uses
    these too)."""
    password = env.get("TIDINGS_SMTP_PASSWORD")
    password_file = env.get("TIDINGS_SMTP_PASSWORD_FILE")
    if not password and password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"TIDINGS_SMTP_PASSWORD_FILE: {error}") from None
    token_dir = env.get(RELAY_TOKEN_DIR_ENV)
    values = {
        "token_file": str(Path(token_dir) / "token") if token_dir else None,
        "username": env.get("TIDINGS_SMTP_USERNAME") or (RELAY_USERNAME if token_dir else None),
        "host": env.get("TIDINGS_SMTP_HOST"),
        "port": env.get("TIDINGS_SMTP_PORT"),
        "from": env.get("TIDINGS_SMTP_FROM"),
        "password": password,
        "tls": env.get("TIDINGS_SMTP_TLS"),
        "timeout": env.get("TIDINGS_SMTP_TIMEOUT"),
        "ca_file": env.get("TIDINGS_SMTP_CA_FILE"),
        "ca_data": env.get("TIDINGS_SMTP_CA_PEM"),
        "allow_plain_auth": env.get("TIDINGS_SMTP_ALLOW_PLAIN_AUTH"),
    }
    return values


def settings_from_values(values: Mapping[str, str | None]) -> SmtpSettings:
    """SmtpSettings from strings (environment, Secret files or CLI flags); empty means default."""
    try:
        port = int(values.get("port") or 25)
        timeout = float(values.get("timeout") or 30)
    except ValueError as error:
        raise InputError(f"SMTP port/timeout is not a number: {error}") from None
    return SmtpSettings(
        host=(values.get("host") or "").strip(),
        port=port,
        tls=(values.get("tls") or "none").strip().lower(),
        sender=(values.get("from") or "").strip(),
        username=values.get("username") or None,
        password=values.get("password") or None,
        timeout=timeout,
        ca_file=values.get("ca_file") or None,
        ca_data=values.get("ca_data") or None,
        allow_plain_auth=(values.get("allow_plain_auth") or "").strip().lower()
        in ("1", "true", "yes"),
        origin=values.get("origin") or SmtpSettings.origin,
        token_file=values.get("token_file") or None,
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
    reply_to: str = "",
    inline: Sequence[tuple[str, bytes, str, str]] = (),
) -> EmailMessage:
    """The message with headers To/Cc (never Bcc), a text and an HTML part, and attachments.
    `inline` are (content-id, bytes, maintype, subtype) parts the HTML shows as cid: images."""
    message = EmailMessage(policy=policy.default)
    message["From"] = sender
    if reply_to:
        message["Reply-To"] = reply_to
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
    html_part = message.get_payload()[1]
    for cid, content, maintype, subtype in inline:
        html_part.add_related(
            content, maintype=maintype, subtype=subtype, cid=f"<{cid}>", disposition="inline"
        )
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
class Transaction:
    """One SMTP transaction: what RCPT said per recipient, and how DATA ended."""

    accepted: list[str]  # RCPT accepted; delivered if `confirmed`
    temporary: dict[str, str] = field(default_factory=dict)  # RCPT 4xx: address -> "451 ..."
    permanent: dict[str, str] = field(default_factory=dict)  # RCPT 5xx
    confirmed: bool = False  # the server answered 250 to the end of DATA
    unconfirmed: str = ""  # why not, when the whole message went out but no answer came back

    @property
    def transmitted(self) -> bool:
        """The whole message reached the server: it may have been delivered."""
        return self.confirmed or bool(self.unconfirmed)


def transmit(
    data: bytes,
    recipients: Sequence[str],
    settings: SmtpSettings,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Transaction:
    """One transaction to `recipients`. Raises DeliveryDeferred or DeliveryRefused only when the
    message was certainly not transmitted in full; once the final "." has been handed to the
    socket, a lost or missing reply is an unconfirmed Transaction, never an error to retry."""
    check_size(len(data), max_bytes)
    envelope_from = parseaddr(settings.sender)[1]
    secrets = [settings.password]
    try:
        connection = _connect(settings)
        try:
            size_limit = int(connection.esmtp_features.get("size", "0").split()[0] or 0)
            check_size(len(data), size_limit, f"the SIZE limit of {settings.host}")
            _login(connection, settings, secrets)
            return _transaction(connection, envelope_from, recipients, data, settings)
        finally:
            _quit(connection)
    except TidingsError:
        raise
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


def open_session(settings: SmtpSettings) -> smtplib.SMTP:
    """A connection ready for MAIL FROM: greeted, upgraded as `tls` says, logged in. For callers
    that run the transaction themselves (the delivery relay's upstream); smtplib and ssl errors
    are theirs to classify."""
    connection = _connect(settings)
    try:
        _login(connection, settings, [settings.password])
    except BaseException:
        connection.close()
        raise
    return connection


def _login(connection: smtplib.SMTP, settings: SmtpSettings, secrets: list[str | None]) -> None:
    """AUTH with the password, or with the relay token as it is now; `secrets` gets the value
    used, so error messages mask it."""
    if not settings.username:
        return
    password = settings.password or ""
    if settings.token_file:
        try:
            password = Path(settings.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"the relay token {settings.token_file}: {error}") from None
        secrets.append(password)
    connection.login(settings.username, password)


def _transaction(
    connection: smtplib.SMTP,
    envelope_from: str,
    recipients: Sequence[str],
    data: bytes,
    settings: SmtpSettings,
) -> Transaction:
    code, reply = connection.mail(envelope_from)
    if code != 250:
        raise smtplib.SMTPResponseException(code, reply)
    result = Transaction(accepted=[])
    for address in recipients:
        code, reply = connection.rcpt(address)
        if code in (250, 251):
            result.accepted.append(address)
        elif code >= 500:
            result.permanent[address] = _code_text(code, reply)
        else:
            result.temporary[address] = _code_text(code, reply)
    if not result.accepted:
        connection.rset()
        return result
    code, reply = connection.docmd("DATA")
    if code != 354:
        raise smtplib.SMTPResponseException(code, reply)
    try:
        connection.send(data_payload(data))  # SMTPServerDisconnected: the "." never left
    except DeadlineExceeded:
        # Perhaps mid-send, perhaps not: counted as transmitted, the safe side for duplicates.
        result.unconfirmed = f"the run's deadline came before {settings.where} confirmed"
    else:
        try:
            code, reply = connection.getreply()
            if not 200 <= code < 600:
                result.unconfirmed = f"{settings.where} answered the end of DATA unreadably"
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            timed_out = isinstance(error.__context__, TimeoutError)
            why = "gave no answer in time" if timed_out else "closed the connection"
            result.unconfirmed = f"{settings.where} took the whole message, then {why}"
        except DeadlineExceeded:
            result.unconfirmed = f"the run's deadline came before {settings.where} confirmed"
    if result.unconfirmed:
        connection.close()
        return result
    if code != 250:
        # An explicit "not accepted" after DATA: nothing was delivered, a retry is safe.
        raise smtplib.SMTPResponseException(code, reply)
    result.confirmed = True
    return result


_DOT_LINE = re.compile(rb"(?m)^\.")


def data_payload(data: bytes) -> bytes:
    """The message as sent after DATA's 354: dot-stuffed and ended by the lone "."."""
    payload = _DOT_LINE.sub(b"..", data)
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Connected, greeted, EHLO'd and (for starttls) upgraded; certificates verified against the
    host name, so the constructors get the host (smtplib uses it as the TLS server name)."""
    try:
        context = ssl.create_default_context(cafile=settings.ca_file, cadata=settings.ca_data)
    except (ssl.SSLError, OSError) as error:
        raise InputError(
            f"the SMTP CA certificate ({settings.origin}: TIDINGS_SMTP_CA_FILE, "
            f"TIDINGS_SMTP_CA_PEM or the Secret's ca.crt) cannot be used: {error}"
        ) from None
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


def _code_text(code: int, text: bytes | str) -> str:
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(message.split())}"


def _reply(error: smtplib.SMTPResponseException, secrets: list[str | None]) -> str:
    return redact(_code_text(error.smtp_code, error.smtp_error), secrets)
