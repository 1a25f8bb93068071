"""The platform relay, one transaction at a time, step by step so the front can answer each
RCPT with the upstream's own reply. Connection, TLS modes, CA and login are
tidings.renderer.mail's. Blocking: the front runs these in a worker thread.

Replies handed back never quote the upstream's answer to AUTH (a relay may echo the AUTH blob)
and are masked for the platform password.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.utils import parseaddr

from tidings.renderer import mail
from tidings.renderer.result import TidingsError, redact

log = logging.getLogger("tidings.relay")

Reply = tuple[int, str]


class Unconfirmed(Exception):
    """The whole message went upstream but no reply came back: it may have been delivered."""


class UpstreamSession:
    """One connection to the platform relay for one relayed transaction."""

    def __init__(self, settings: mail.SmtpSettings) -> None:
        self.settings = settings
        self.connection: smtplib.SMTP | None = None

    def rcpt(self, address: str) -> Reply:
        """The upstream's reply to RCPT TO:<address>, connecting (and MAIL FROM) on first use."""
        try:
            if self.connection is None:
                self.connection = mail.open_session(self.settings)
                code, text = self.connection.mail(parseaddr(self.settings.sender)[1])
                if code != 250:
                    self.close()
                    return code, self._text(text)
            code, text = self.connection.rcpt(address)
            return code, self._text(text)
        except smtplib.SMTPAuthenticationError as error:
            log.error("the platform relay refused the relay's login: %d", error.smtp_code)
            self.close()
            return 451, "4.7.0 the platform relay refused this relay's login; try later"
        except smtplib.SMTPResponseException as error:
            self.close()
            return error.smtp_code, self._text(error.smtp_error)
        except (OSError, ssl.SSLError, smtplib.SMTPException, TidingsError) as error:
            log.warning("platform relay %s: %s", self.settings.where, self._text(str(error)))
            self.close()
            return 451, f"4.4.1 the platform relay {self.settings.where} cannot be reached"

    def data(self, content: bytes) -> Reply:
        """DATA with `content`. Raises Unconfirmed when it went out in full without a reply; any
        other failure means nothing was delivered (the returned code says so)."""
        connection = self.connection
        if connection is None:
            return 451, "4.4.1 no upstream transaction open"
        try:
            code, text = connection.docmd("DATA")
            if code != 354:
                return code, self._text(text)
            connection.send(mail.data_payload(content))
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            log.warning("platform relay %s during DATA: %s", self.settings.where, error)
            return 451, "4.4.2 the platform relay closed the connection before the message"
        try:
            code, text = connection.getreply()
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise Unconfirmed(str(error)) from None
        self.quit()
        return code, self._text(text)

    def quit(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (OSError, smtplib.SMTPException):
                self.connection.close()
            self.connection = None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _text(self, text: bytes | str) -> str:
        value = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return redact(" ".join(value.split()), [self.settings.password])[:400]
