"""The delivery relay's probe of the platform relay (relay/probe.py) against real SMTP servers
on loopback: STARTTLS and AUTH as configured pass; a refused login, a server without STARTTLS,
a closed port and an untrusted certificate each fail at their step, never quoting the password;
and doctor's verdict on the published result (kubectl_plugin/doctor.relay_verdict)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from tests.support.pki import Pki
from tests.support.smtp_servers import Recorder, start_smtp

from tidings.kubectl_plugin import FAIL, OK
from tidings.kubectl_plugin.doctor import relay_verdict
from tidings.relay.probe import probe
from tidings.renderer.mail import SmtpSettings
from tidings_dev.procs import free_port

PASSWORD = "platform-secret-42"
NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def _settings(port: int, pki: Pki, **kwargs: Any) -> SmtpSettings:
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "tls": "starttls",
        "sender": "reports@example.com",
        "username": "relay",
        "password": PASSWORD,
        "timeout": 5,
        "ca_file": str(pki.ca),
    }
    return SmtpSettings(**{**base, **kwargs})


@pytest.fixture
def starttls_server(pki: Pki):
    controller, server = start_smtp(
        Recorder(),
        authenticator=_authenticator,
        tls_context=pki.server_context(),
        require_starttls=True,
    )
    yield server
    controller.stop()


def test_starttls_and_auth_pass_and_send_nothing(starttls_server: Any, pki: Pki) -> None:
    found = probe(_settings(starttls_server.port, pki))
    assert (found.ok, found.step, found.detail) == (True, "quit", "EHLO, STARTTLS, logged in")
    assert starttls_server.recorder.messages == []


def test_each_failure_names_its_step(starttls_server: Any, pki: Pki) -> None:
    wrong = probe(_settings(starttls_server.port, pki, password="wrong-password-7"))
    assert (wrong.ok, wrong.step) == (False, "auth") and "535" in wrong.detail
    assert "wrong-password-7" not in wrong.detail
    untrusted = probe(_settings(starttls_server.port, pki, ca_file=str(pki.other_ca)))
    assert (untrusted.ok, untrusted.step) == (False, "starttls")
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.detail
    closed = probe(_settings(free_port(), pki))
    assert (closed.ok, closed.step) == (False, "connect")
    assert "ConnectionRefusedError" in closed.detail


def test_a_server_without_starttls_fails_when_it_is_required(pki: Pki) -> None:
    controller, server = start_smtp(Recorder(), auth_require_tls=False)
    try:
        found = probe(_settings(server.port, pki, username=None, password=None))
        plain = probe(_settings(server.port, pki, tls="none", username=None, password=None))
    finally:
        controller.stop()
    assert (found.ok, found.step) == (False, "starttls")
    assert "STARTTLS is not offered" in found.detail
    assert (plain.ok, plain.detail) == (True, "EHLO")  # as configured: no TLS, no login


def _data(**changes: str) -> dict[str, str]:
    data = {
        "checkedAt": "2026-12-02T09:29:30Z",
        "ok": "true",
        "step": "quit",
        "detail": "EHLO, STARTTLS, logged in",
        "upstream": "smtp.example.com:587",
        "tls": "starttls",
        "auth": "login",
        "intervalSeconds": "60",
        "replica": "tidings-relay-abc",
    }
    return {**data, **changes}


def test_doctor_verdict_on_the_published_probe() -> None:
    def verdict(data: dict[str, str] | None, now: datetime = NOW) -> Any:
        return relay_verdict(data, "tidings", "tidings-relay", "2/2 Ready;", now)

    good = verdict(_data())
    assert good.state == OK and "smtp.example.com:587: EHLO, STARTTLS, logged in" in good.line()
    auth = verdict(_data(ok="false", step="auth", detail="the login was refused (535)"))
    assert auth.state == FAIL
    assert "failed at auth" in auth.line() and "-> check username and password" in auth.line()
    assert "smtp.credentialsSecret" in auth.fix and "in tidings" in auth.fix
    starttls = verdict(_data(ok="false", step="starttls", detail="STARTTLS is not offered"))
    assert "-> check smtp.tls" in starttls.line()
    stale = verdict(_data(), NOW + timedelta(minutes=10))
    assert stale.state == FAIL and "no replica is probing" in stale.line()
    assert "kubectl -n tidings logs deployment/tidings-relay" in stale.fix
    missing = verdict(None)
    assert missing.state == FAIL and "no probe of the platform relay published" in missing.line()
