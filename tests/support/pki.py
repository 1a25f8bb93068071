"""Certificates for a TLS SMTP server on loopback: a CA, the server's certificate and key, and
an unrelated CA that did not sign it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from tidings_dev.cluster import CertificateAuthority


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server's certificate

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def smtp_pki(directory: Path) -> Pki:
    """A CA and a certificate for 127.0.0.1 issued by it, and an unrelated CA, in `directory`."""
    ca = CertificateAuthority.create(directory, "smtp-test-ca")
    cert, key = ca.issue(directory, "smtp", "127.0.0.1", ip_addresses=("127.0.0.1",))
    other = CertificateAuthority.create(directory, "unrelated-ca")
    return Pki(ca.cert_path, cert, key, other.cert_path)
