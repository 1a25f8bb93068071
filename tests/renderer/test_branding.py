"""Branding and mail settings: platform variables, the namespace's ConfigMap (a mounted
directory), their precedence, and what reaches the mail and the PDF; the SMTP relay's private
CA from the platform variable and from the namespace SMTP Secret. Delivered to real SMTP
servers on loopback by `tidings run`, as the pod runs it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from tests.support.examples import load_example
from tests.support.pki import Pki
from tests.support.renderer_cli import parse, pdf_text, run_pod
from tests.support.smtp_servers import Recorder, SmtpServer, start_smtp

from tidings import branding
from tidings.branding import BrandingError, resolve
from tidings.renderer.result import EX_DATAERR, EX_OK

LOGOS = Path(__file__).with_name("branding")
ACME = (LOGOS / "acme.png").read_bytes()
TEAM = (LOGOS / "team.png").read_bytes()
PLATFORM = {
    "TIDINGS_BRAND_LOGO": "data:image/png;base64," + base64.b64encode(ACME).decode(),
    "TIDINGS_BRAND_ACCENT_COLOR": "#8e44ad",
    "TIDINGS_BRAND_FOOTER_TEXT": "ACME Corp · internal",
    "TIDINGS_MAIL_FROM_NAME": "ACME Reports",
    "TIDINGS_MAIL_REPLY_TO": "reports-help@example.com",
    "TIDINGS_MAX_PDF_ROWS": "3",
}


def namespace_dir(tmp_path: Path, **keys: bytes | str) -> Path:
    """The ConfigMap tidings-branding as the kubelet mounts it: one file per key."""
    directory = tmp_path / "branding"
    directory.mkdir()
    for key, value in keys.items():
        data = value.encode() if isinstance(value, str) else value
        (directory / key.replace("_", ".")).write_bytes(data)
    return directory


def deliver(tmp_path: Path, smtp: SmtpServer, env: dict[str, str]) -> tuple[Any, dict]:
    report = load_example("incidents_summary")
    env = {
        "TIDINGS_SCHEDULED_TIME": "2024-05-13T09:00:00+02:00",
        "TIDINGS_BRANDING_DIR": str(tmp_path / "no-branding"),
        **env,
    }
    done, result = run_pod(tmp_path, report, smtp.env(**env))
    assert result is not None, done.stderr
    return done, result


def test_platform_branding_reaches_the_mail_and_the_pdf(smtp: SmtpServer, tmp_path: Path) -> None:
    done, result = deliver(tmp_path, smtp, PLATFORM)
    assert done.returncode == EX_OK, result["error"]
    message = parse(smtp.recorder.messages[-1].content)
    # The From setting has a display name ("Tidings"): it wins over the platform's fromName.
    assert message["From"] == "Tidings <reports@example.com>"
    assert message["Reply-To"] == "reports-help@example.com"
    html_part = message.get_body(("html",))
    html = html_part.get_content()
    assert 'src="cid:logo@tidings"' in html
    assert "#8e44ad" in html and "#2f6fb0" not in html
    assert "ACME Corp · internal · Sent by Tidings" in html
    related = [p for p in message.walk() if p.get("Content-ID") == "<logo@tidings>"]
    assert len(related) == 1 and related[0].get_content() == ACME
    assert related[0].get_content_disposition() == "inline"
    pdf = next(p for p in message.iter_attachments() if p.get_filename().endswith(".pdf"))
    text = " ".join(pdf_text(pdf.get_content(), tmp_path).split())
    assert "ACME Corp · internal" in text
    assert "Showing the first 3 of" in text  # TIDINGS_MAX_PDF_ROWS reached the renderer


def test_the_namespace_configmap_overrides_key_by_key(smtp: SmtpServer, tmp_path: Path) -> None:
    directory = namespace_dir(
        tmp_path,
        logo_png=TEAM,
        accentColor="#2e7d4f",
        fromName="Team Payments",
        maxPdfRows="2",
    )
    env = {**PLATFORM, "TIDINGS_BRANDING_DIR": str(directory)}
    done, result = deliver(tmp_path, smtp, env)
    assert done.returncode == EX_OK, result["error"]
    message = parse(smtp.recorder.messages[-1].content)
    # The namespace's fromName beats the display name written in the From setting.
    assert message["From"] == "Team Payments <reports@example.com>"
    assert message["Reply-To"] == "reports-help@example.com"  # not overridden: the platform's
    html = message.get_body(("html",)).get_content()
    assert "#2e7d4f" in html and "#8e44ad" not in html
    assert "ACME Corp · internal" in html  # footer text: the platform's
    (logo,) = [p for p in message.walk() if p.get("Content-ID") == "<logo@tidings>"]
    assert logo.get_content() == TEAM
    pdf = next(p for p in message.iter_attachments() if p.get_filename().endswith(".pdf"))
    assert "Showing the first 2 of" in " ".join(pdf_text(pdf.get_content(), tmp_path).split())


def test_a_bad_namespace_value_is_exit_65_naming_the_key(smtp: SmtpServer, tmp_path: Path) -> None:
    directory = namespace_dir(tmp_path, accentColor="red; background: url(x)")
    done, result = deliver(tmp_path, smtp, {"TIDINGS_BRANDING_DIR": str(directory)})
    assert done.returncode == EX_DATAERR
    assert result["error"].startswith(
        "ConfigMap tidings-branding key accentColor: must be a colour like #2f6fb0"
    )
    assert smtp.recorder.messages == []


def test_platform_ca_and_namespace_secret_ca_verify_a_private_relay(
    pki: Pki, tmp_path: Path
) -> None:
    controller, server = start_smtp(Recorder(), ssl_context=pki.server_context())
    pem = pki.ca.read_text()
    try:
        # Without the CA, the relay's certificate is not trusted...
        done, result = deliver(tmp_path / "none", server, {"TIDINGS_SMTP_TLS": "tls"})
        assert "CERTIFICATE_VERIFY_FAILED" in result["error"]
        # ...with the chart's CA (TIDINGS_SMTP_CA_PEM) it is...
        env = {"TIDINGS_SMTP_TLS": "tls", "TIDINGS_SMTP_CA_PEM": pem}
        done, result = deliver(tmp_path / "platform", server, env)
        assert done.returncode == EX_OK, result["error"]
        # ...and with the namespace SMTP Secret's ca.crt, for the namespace's own relay.
        secret = tmp_path / "smtp-secret"
        secret.mkdir()
        files = {"host": "127.0.0.1", "port": str(server.port), "tls": "tls", "ca.crt": pem}
        files["from"] = "team@example.com"
        for key, value in files.items():
            (secret / key).write_text(value)
        done, result = deliver(tmp_path / "ns", server, {"TIDINGS_SMTP_SECRET_DIR": str(secret)})
        assert done.returncode == EX_OK, result["error"]
    finally:
        controller.stop()
    assert len(server.recorder.messages) == 2


@pytest.fixture(autouse=True)
def _own_dirs(tmp_path: Path) -> None:
    for name in ("none", "platform", "ns"):
        (tmp_path / name).mkdir()


# ------------------------------------------------------------------------------- pure rules


def test_precedence_is_namespace_then_platform_then_built_in() -> None:
    built_in = resolve({}, {})
    assert (built_in.logo, built_in.accent_color, built_in.max_pdf_rows) == (None, "#2f6fb0", 500)
    platform = resolve(PLATFORM, {})
    assert platform.logo is not None and platform.logo.content == ACME
    assert (platform.accent_color, platform.max_pdf_rows) == ("#8e44ad", 3)
    assert not platform.from_name_from_namespace
    mixed = resolve(PLATFORM, {"logo.svg": b"<svg/>", "replyTo": b"team@example.com"})
    assert mixed.logo is not None and mixed.logo.mime == "image/svg+xml"
    assert (mixed.reply_to, mixed.accent_color) == ("team@example.com", "#8e44ad")


@pytest.mark.parametrize(
    ("env", "namespace", "message"),
    [
        (
            {"TIDINGS_BRAND_ACCENT_COLOR": "blue"},
            {},
            "TIDINGS_BRAND_ACCENT_COLOR: must be a colour",
        ),
        ({}, {"footerText": b"two\nlines"}, "key footerText: must be one line"),
        ({}, {"replyTo": b"A <a@example.com>"}, "key replyTo: must be a bare address"),
        ({}, {"maxPdfRows": b"0"}, "key maxPdfRows: must be a whole number from 1 to 20,000"),
        ({"TIDINGS_BRAND_LOGO": "https://x/logo.png"}, {}, "TIDINGS_BRAND_LOGO: must be a data:"),
        ({}, {"logo.bmp": b"BM"}, "name it logo.png"),
        ({}, {"logo.png": b"x", "logo.svg": b"y"}, "one logo key only"),
        ({}, {"logo.png": b"x" * (branding.MAX_LOGO_BYTES + 1)}, "over 96 KiB"),
    ],
)
def test_bad_values_name_where_they_came_from(env: dict, namespace: dict, message: str) -> None:
    with pytest.raises(BrandingError, match=message.replace("(", r"\(")):
        resolve(env, namespace)


def test_footer_text_cannot_break_out_of_the_css_string() -> None:
    escaped = branding.css_string('a"; } </style><script>x</script> ·')
    assert '"' not in escaped and "<" not in escaped and "}" not in escaped
    assert escaped.startswith("a\\22 ")


def test_pod_env_passes_only_what_is_set() -> None:
    assert branding.pod_env(
        {"TIDINGS_BRAND_ACCENT_COLOR": "#000000", "TIDINGS_MAIL_REPLY_TO": ""}
    ) == [{"name": "TIDINGS_BRAND_ACCENT_COLOR", "value": "#000000"}]
    volume, mount = branding.pod_volume()
    assert volume["configMap"] == {"name": "tidings-branding", "optional": True}
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/tidings/branding", True)
