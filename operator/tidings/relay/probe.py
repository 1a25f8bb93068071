"""The relay's probe of the platform relay: connect, EHLO, STARTTLS when `smtp.tls` is
starttls (or TLS from the first byte for tls), AUTH when credentials are set, QUIT; no mail
is sent. Every TIDINGS_RELAY_PROBE_INTERVAL_SECONDS the result goes to a ConfigMap of the
relay's namespace (contract.RELAY_PROBE_COMPONENT), where `kubectl tidings doctor` reads it:
the relay holds the credentials, the user running doctor does not. Nothing written quotes the
password or the upstream's answer to AUTH (a relay may echo the AUTH blob).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tidings.contract import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    RELAY_PROBE_COMPONENT,
)
from tidings.renderer import mail
from tidings.renderer.result import redact
from tidings.schedule import rfc3339


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    step: str  # the step that failed, or "quit" when every one passed
    detail: str
    upstream: str
    tls: str
    auth: bool

    def data(self, now: datetime, interval: int, replica: str) -> dict[str, str]:
        return {
            "checkedAt": rfc3339(now),
            "ok": "true" if self.ok else "false",
            "step": self.step,
            "detail": self.detail[:500],
            "upstream": self.upstream,
            "tls": self.tls,
            "auth": "login" if self.auth else "none",
            "intervalSeconds": str(interval),
            "replica": replica,
        }


def probe(settings: mail.SmtpSettings) -> ProbeResult:
    """Each step in turn; the first that fails is named with why. Blocking."""
    where = f"{settings.host}:{settings.port}"
    auth = bool(settings.username)

    def result(ok: bool, step: str, detail: str) -> ProbeResult:
        text = redact(" ".join(detail.split()), [settings.password])
        return ProbeResult(ok, step, text, where, settings.tls, auth)

    step = "connect"
    connection: smtplib.SMTP | None = None
    try:
        context = ssl.create_default_context(cafile=settings.ca_file, cadata=settings.ca_data)
        if settings.tls == "tls":
            connection = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        step = "ehlo"
        code, _ = connection.ehlo()
        if code != 250:
            return result(False, step, f"EHLO answered {code}")
        if settings.tls == "starttls":
            step = "starttls"
            if not connection.has_extn("starttls"):
                return result(False, step, "STARTTLS is not offered, and smtp.tls is starttls")
            connection.starttls(context=context)
            connection.ehlo()
        if auth:
            step = "auth"
            try:
                connection.login(settings.username or "", settings.password or "")
            except smtplib.SMTPAuthenticationError as error:
                return result(False, step, f"the login was refused ({error.smtp_code})")
        step = "quit"
        connection.quit()
        connection = None
    except TimeoutError:
        return result(False, step, f"no answer within {settings.timeout:.0f}s")
    except smtplib.SMTPResponseException as error:
        # The code only: the text may quote what was sent (an AUTH blob).
        return result(False, step, f"{type(error).__name__} {error.smtp_code}")
    except (OSError, ssl.SSLError, smtplib.SMTPException) as error:
        return result(False, step, f"{type(error).__name__}: {error}")
    finally:
        if connection is not None:
            connection.close()
    login = ", logged in" if auth else ""
    tls = {"starttls": ", STARTTLS", "tls": ", TLS"}.get(settings.tls, "")
    return result(True, step, f"EHLO{tls}{login}")


class ProbePublisher:
    """Writes each result to one ConfigMap of `namespace` (created on first use)."""

    def __init__(
        self,
        core: client.CoreV1Api,
        namespace: str,
        name: str,
        replica: str,
        interval: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.core, self.namespace, self.name = core, namespace, name
        self.replica, self.interval, self.now = replica, interval, now

    def publish(self, found: ProbeResult) -> None:
        data = found.data(self.now(), self.interval, self.replica)
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=self.name,
                labels={MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: RELAY_PROBE_COMPONENT},
            ),
            data=data,
        )
        try:
            self.core.create_namespaced_config_map(self.namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            # Every replica probes the same upstream: the latest result wins.
            self.core.replace_namespaced_config_map(self.name, self.namespace, body)
