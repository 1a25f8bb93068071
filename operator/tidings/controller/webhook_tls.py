"""The admission webhook's TLS, as pure functions: issue a CA and a serving certificate for the
webhook Service, and decide when they must be replaced. Storing them (a Secret in the operator's
namespace) and publishing the CA (the ValidatingWebhookConfiguration's caBundle) is
webhook_tls_store's job.

The bundle uses cert-manager's Secret layout (`tls.crt`, `tls.key`, `ca.crt`), so the serving
side reads the same keys whoever issued the certificate. `ca.crt` is a trust bundle: after a
rotation it holds the new CA first and the previous one while it is still valid, so the
apiserver keeps trusting a replica that has not picked the new certificate up yet.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidings import pki

CERT_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
# Issued certificates start a little in the past: clocks across nodes are never exactly equal.
BACKDATE = timedelta(minutes=5)

CERT_KEY, KEY_KEY, CA_KEY = "tls.crt", "tls.key", "ca.crt"
KEYS = (CERT_KEY, KEY_KEY, CA_KEY)


@dataclass(frozen=True)
class TLSBundle:
    """PEM bytes: the serving certificate, its private key and the CA trust bundle."""

    cert: bytes
    key: bytes
    ca: bytes

    def secret_data(self) -> dict[str, str]:
        """The Secret's `data` (base64), in cert-manager's layout."""
        return {
            CERT_KEY: base64.b64encode(self.cert).decode(),
            KEY_KEY: base64.b64encode(self.key).decode(),
            CA_KEY: base64.b64encode(self.ca).decode(),
        }

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str] | None) -> TLSBundle | None:
        """The bundle in a Secret's `data`, or None when a key is missing or not base64."""
        try:
            cert, key, ca = (base64.b64decode((data or {})[k], validate=True) for k in KEYS)
        except (KeyError, binascii.Error):
            return None
        return cls(cert=cert, key=key, ca=ca)


def dns_names(service: str, namespace: str) -> list[str]:
    """The names the apiserver (and anyone else in the cluster) may use for the Service."""
    return [
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        f"{service}.{namespace}",
        service,
    ]


def issue(
    service: str,
    namespace: str,
    now: datetime,
    validity: timedelta = CERT_VALIDITY,
    previous_ca: bytes = b"",
) -> TLSBundle:
    """A fresh CA and a serving certificate for the Service, both valid for `validity`.

    `previous_ca` (the bundle being replaced) contributes its first CA to the new trust bundle
    if that CA is still valid at `now`.
    """
    names = dns_names(service, namespace)
    # Fixed common names: a CN holds at most 64 characters, a Service DNS name up to 131; the
    # names that count are in the subjectAltName.
    not_before, not_after = now - BACKDATE, now + validity
    ca_key, ca_cert = pki.self_signed_ca("tidings-webhook-ca", not_before, not_after)
    serving_key = pki.new_key()
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tidings-webhook")]))
        .issuer_name(ca_cert.subject)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    trust = ca_cert.public_bytes(serialization.Encoding.PEM)
    kept = _still_valid_cas(previous_ca, now)[:1]
    return TLSBundle(
        cert=serving_cert.public_bytes(serialization.Encoding.PEM),
        key=pki.pem_private_key(serving_key),
        ca=trust + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in kept),
    )


def _still_valid_cas(bundle: bytes, now: datetime) -> list[x509.Certificate]:
    try:
        cas = x509.load_pem_x509_certificates(bundle) if bundle.strip() else []
    except ValueError:
        return []
    return [ca for ca in cas if ca.not_valid_after_utc > now]


def renewal_reason(
    bundle: TLSBundle | None,
    service: str,
    namespace: str,
    now: datetime,
    renew_before: timedelta = RENEW_BEFORE,
) -> str | None:
    """Why `bundle` must be replaced at `now`, or None when it can keep serving."""
    if bundle is None:
        return "no certificate yet"
    try:
        cert = x509.load_pem_x509_certificate(bundle.cert)
        key = serialization.load_pem_private_key(bundle.key, password=None)
        ca = x509.load_pem_x509_certificates(bundle.ca)[0]
    except (ValueError, IndexError):
        return "the stored certificate, key or CA is not valid PEM"
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return "the private key does not match the certificate"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the certificate is not signed by the first CA of the bundle"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        covered = set(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        covered = set()
    wanted = dns_names(service, namespace)[0]
    if wanted not in covered:
        return f"the certificate does not cover {wanted}"
    expires = min(cert.not_valid_after_utc, ca.not_valid_after_utc)
    if expires - now <= renew_before:
        return f"the certificate expires at {expires.isoformat()}"
    if cert.not_valid_before_utc > now:
        return "the certificate is not valid yet (clock skew or a bad copy)"
    return None
