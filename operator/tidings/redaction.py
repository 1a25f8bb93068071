"""Masking secret values in text a peer may echo back: status, Events, records and logs.

A relay or server that refuses a login may quote what it was sent, and what it was sent is
encoded: AUTH PLAIN is base64 of "authzid\\0user\\0password", AUTH LOGIN base64 of the user and
of the password, HTTP Basic base64 of "user:password". So besides each secret as written,
`redact` masks:

- every base64 run of the text (standard or urlsafe alphabet, with or without padding) that
  decodes to bytes containing a secret, or that has the shape of an AUTH PLAIN blob (two NUL
  separators): the whole run goes, not only the secret's part of it;
- the base64 of a secret at each of the three alignments it can have inside a longer encoded
  stream, so a run cut short (a reply truncated by the peer) still loses the secret's part;
- the base64 forms of `encoded` values: names that are not secret as text (an SMTP user) but
  whose encoding in a reply shows an echoed login.

Pure: no I/O, no logging. Secrets shorter than MIN_SECRET characters are left alone, as they
would mask ordinary words.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET = 4
# A base64 run: at least 8 characters of either alphabet, padding included.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _b64_forms(raw: bytes) -> set[str]:
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return {standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")}


def _aligned_cores(raw: bytes) -> set[str]:
    """The characters of base64 that depend only on `raw`, for each of the 3 byte offsets it
    may sit at inside a longer stream (both alphabets)."""
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // 6)  # the first character with no bit of the prefix
        end = 8 * (offset + len(raw)) // 6  # the last one with no bit of what follows
        core = encoded[start:end]
        if len(core) >= MIN_SECRET:
            cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def _decoded(run: str) -> bytes | None:
    text = run.rstrip("=")
    padded = text + "=" * (-len(text) % 4)
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_auth_plain(raw: bytes) -> bool:
    return raw.count(b"\0") == 2 and not raw.startswith(b"\0\0")


def redact(text: str, secrets: Iterable[str | None], encoded: Iterable[str | None] = ()) -> str:
    """`text` with every secret, every base64 run that carries one (or is an AUTH PLAIN blob),
    and the base64 of each `encoded` value replaced by ***."""
    values = sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)
    raw_values = [value.encode() for value in values]

    def carries_secret(match: re.Match[str]) -> str:
        raw = _decoded(match.group(0))
        if raw is not None and (_is_auth_plain(raw) or any(v in raw for v in raw_values)):
            return MASK
        return match.group(0)

    text = _BASE64_RUN.sub(carries_secret, text)
    forms: set[str] = set(values)
    for raw in raw_values:
        forms |= _b64_forms(raw) | _aligned_cores(raw)
    for name in encoded:
        if name and len(name) >= MIN_SECRET:
            forms |= _b64_forms(name.encode())
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text
