"""Branding and mail settings of a run: logo, accent colour, footer text, From display name,
Reply-To, the PDF row limit and a private CA for the SMTP relay.

Where each value comes from, highest first (one key at a time):
1. the namespace's ConfigMap `tidings-branding` (keys below), mounted into every renderer pod
   of that namespace at /etc/tidings/branding, optional: the namespace's own choice;
2. the platform defaults: chart values -> the operator's TIDINGS_* variables -> copied into
   each renderer pod's environment by the operator (`pod_env`);
3. the built-in defaults (Tidings blue, no logo, no footer text, no Reply-To, 500 PDF rows).

The SMTP CA is not here: it belongs to a relay, so the platform relay's comes from the chart
(TIDINGS_SMTP_CA_PEM) and a namespace relay's from its SMTP Secret (key `ca.crt`), see
renderer/mail.py. Pure except `from_environment`, which reads the mounted directory.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAMESPACE_CONFIGMAP = "tidings-branding"
MOUNT_PATH = "/etc/tidings/branding"
DEFAULT_ACCENT = "#2f6fb0"
DEFAULT_MAX_PDF_ROWS = 500
MAX_PDF_ROWS_LIMIT = 20_000
MAX_LOGO_BYTES = 96 * 1024  # it travels in an environment variable (128 KiB each at most)
MAX_TEXT = 200

# ConfigMap key -> platform variable (what the chart sets on the operator and the operator copies
# into each renderer pod). The logo's ConfigMap key carries its type: logo.png, logo.svg, ...
KEYS: dict[str, str] = {
    "accentColor": "TIDINGS_BRAND_ACCENT_COLOR",
    "footerText": "TIDINGS_BRAND_FOOTER_TEXT",
    "fromName": "TIDINGS_MAIL_FROM_NAME",
    "replyTo": "TIDINGS_MAIL_REPLY_TO",
    "maxPdfRows": "TIDINGS_MAX_PDF_ROWS",
}
LOGO_ENV = "TIDINGS_BRAND_LOGO"  # a data: URI
LOGO_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "svg": "image/svg+xml",
}
# Everything the operator hands on to the renderer pod (the run contract, docs/renderer.md).
PLATFORM_ENV = (LOGO_ENV, *KEYS.values(), "TIDINGS_SMTP_CA_PEM")

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DATA_URI = re.compile(r"^data:(image/(?:png|jpeg|gif|svg\+xml));base64,([A-Za-z0-9+/=\s]+)$")


class BrandingError(ValueError):
    """A setting has a value that cannot be used; the message names where it came from."""


@dataclass(frozen=True)
class Logo:
    mime: str
    content: bytes

    @property
    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.content).decode()}"

    @property
    def subtype(self) -> str:
        return self.mime.split("/", 1)[1]


@dataclass(frozen=True)
class Branding:
    logo: Logo | None = None
    accent_color: str = DEFAULT_ACCENT
    footer_text: str = ""
    from_name: str = ""
    from_name_from_namespace: bool = False  # it then beats a display name in the From setting
    reply_to: str = ""
    max_pdf_rows: int = DEFAULT_MAX_PDF_ROWS


# ------------------------------------------------------------------------------ the rules


def text_problem(value: str) -> str | None:
    if _CONTROL.search(value):
        return "must be one line without control characters"
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters"
    return None


def _check(key: str, value: str, where: str) -> str:
    value = value.strip()
    problem: str | None = None
    if key == "accentColor" and not _COLOUR.match(value):
        problem = "must be a colour like #2f6fb0"
    elif key in ("footerText", "fromName"):
        problem = text_problem(value)
    elif key == "replyTo":
        from tidings.validation import address_problem  # the recipients' rule

        problem = address_problem(value)
    elif key == "maxPdfRows" and not (value.isdigit() and 1 <= int(value) <= MAX_PDF_ROWS_LIMIT):
        problem = f"must be a whole number from 1 to {MAX_PDF_ROWS_LIMIT:,}"
    if problem:
        raise BrandingError(f"{where}: {problem} (got {value[:60]!r})")
    return value


def logo_from_data_uri(uri: str, where: str) -> Logo:
    match = _DATA_URI.match(uri.strip())
    if not match:
        raise BrandingError(
            f"{where}: must be a data: URI of a PNG, JPEG, GIF or SVG image "
            "(data:image/png;base64,...)"
        )
    try:
        content = base64.b64decode("".join(match[2].split()), validate=True)
    except binascii.Error:
        raise BrandingError(f"{where}: the base64 data is not valid") from None
    return _logo(match[1], content, where)


def _logo(mime: str, content: bytes, where: str) -> Logo:
    if len(content) > MAX_LOGO_BYTES:
        raise BrandingError(f"{where}: the logo is over {MAX_LOGO_BYTES // 1024} KiB")
    if not content:
        raise BrandingError(f"{where}: the logo is empty")
    return Logo(mime, content)


def check_platform(env: Mapping[str, str]) -> None:
    """The operator's start-up check of the platform values (BrandingError names the variable)."""
    resolve(env, {})


# ---------------------------------------------------------------------------------- resolve


def resolve(env: Mapping[str, str], namespace: Mapping[str, bytes]) -> Branding:
    """The run's branding: each namespace ConfigMap key over its platform variable over the
    built-in default. `namespace` maps the ConfigMap's keys to their bytes."""
    values: dict[str, Any] = {}
    from_namespace: set[str] = set()
    for key, variable in KEYS.items():
        if key in namespace:
            where = f"ConfigMap {NAMESPACE_CONFIGMAP} key {key}"
            try:
                text = namespace[key].decode("utf-8")
            except UnicodeDecodeError:
                raise BrandingError(f"{where}: must be UTF-8 text") from None
            values[key] = _check(key, text, where)
            from_namespace.add(key)
        elif (env.get(variable) or "").strip():
            values[key] = _check(key, env[variable], variable)
    logo = None
    logo_keys = sorted(k for k in namespace if k.startswith("logo."))
    if len(logo_keys) > 1:
        raise BrandingError(
            f"ConfigMap {NAMESPACE_CONFIGMAP}: one logo key only, found {', '.join(logo_keys)}"
        )
    if logo_keys:
        key = logo_keys[0]
        suffix = key.removeprefix("logo.").lower()
        where = f"ConfigMap {NAMESPACE_CONFIGMAP} key {key}"
        if suffix not in LOGO_TYPES:
            raise BrandingError(f"{where}: name it logo.png, logo.jpg, logo.gif or logo.svg")
        logo = _logo(LOGO_TYPES[suffix], namespace[key], where)
    elif (env.get(LOGO_ENV) or "").strip():
        logo = logo_from_data_uri(env[LOGO_ENV], LOGO_ENV)
    return Branding(
        logo=logo,
        accent_color=values.get("accentColor", DEFAULT_ACCENT),
        footer_text=values.get("footerText", ""),
        from_name=values.get("fromName", ""),
        from_name_from_namespace="fromName" in from_namespace,
        reply_to=values.get("replyTo", ""),
        max_pdf_rows=int(values.get("maxPdfRows", DEFAULT_MAX_PDF_ROWS)),
    )


def read_directory(directory: Path) -> dict[str, bytes]:
    """The mounted ConfigMap's keys (a missing or empty directory: no override). The kubelet's
    `..data` links and dot files are not keys."""
    if not directory.is_dir():
        return {}
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if not path.name.startswith(".") and path.is_file()
    }


def from_environment(env: Mapping[str, str]) -> Branding:
    """In the renderer pod: the platform variables and the mounted namespace ConfigMap
    ($TIDINGS_BRANDING_DIR, default /etc/tidings/branding)."""
    return resolve(env, read_directory(Path(env.get("TIDINGS_BRANDING_DIR") or MOUNT_PATH)))


# --------------------------------------------------------------------- the pod (operator side)


def pod_env(platform: Mapping[str, str]) -> list[dict[str, str]]:
    """The platform values the operator copies into each renderer pod, as env entries."""
    return [
        {"name": name, "value": platform[name]}
        for name in PLATFORM_ENV
        if (platform.get(name) or "").strip()
    ]


def pod_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of the namespace's ConfigMap. Optional, so a namespace without one runs
    with the platform defaults; the operator itself never reads it."""
    volume = {
        "name": "branding",
        "configMap": {"name": NAMESPACE_CONFIGMAP, "optional": True},
    }
    return volume, {"name": "branding", "mountPath": MOUNT_PATH, "readOnly": True}


def css_string(text: str) -> str:
    """`text` as the inside of a CSS string: every character but letters, digits and spaces as
    an escape, so nothing in it can end the string or the <style> element."""
    return "".join(c if c.isalnum() or c == " " else f"\\{ord(c):x} " for c in text)
