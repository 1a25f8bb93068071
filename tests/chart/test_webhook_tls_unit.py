"""The pure webhook TLS logic: what is issued, and when it must be replaced."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from tidings.controller import webhook_tls as tls

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_issued_certificate_serves_the_service_names_and_chains_to_the_ca(tmp_path: Path) -> None:
    bundle = tls.issue("tidings-webhook", "tidings-system", NOW)
    cert = x509.load_pem_x509_certificate(bundle.cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "tidings-webhook.tidings-system.svc" in names.get_values_for_type(x509.DNSName)
    assert cert.not_valid_after_utc == NOW + tls.CERT_VALIDITY
    # A real TLS stack accepts the pair and trusts the chain for the Service's DNS name.
    (tmp_path / "cert").write_bytes(bundle.cert)
    (tmp_path / "key").write_bytes(bundle.key)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
        tmp_path / "cert", tmp_path / "key"
    )
    ca = x509.load_pem_x509_certificates(bundle.ca)[0]
    cert.verify_directly_issued_by(ca)
    assert tls.renewal_reason(bundle, "tidings-webhook", "tidings-system", NOW) is None


def test_longest_service_and_namespace_names_fit() -> None:
    service, namespace = "s" * 63, "n" * 63
    bundle = tls.issue(service, namespace, NOW)
    assert tls.renewal_reason(bundle, service, namespace, NOW) is None


def test_renewed_only_inside_the_renewal_window() -> None:
    bundle = tls.issue("svc", "ns", NOW)
    expiry = NOW + tls.CERT_VALIDITY
    just_before = expiry - tls.RENEW_BEFORE - timedelta(minutes=1)
    assert tls.renewal_reason(bundle, "svc", "ns", just_before) is None
    reason = tls.renewal_reason(bundle, "svc", "ns", expiry - tls.RENEW_BEFORE)
    assert reason is not None and "expires" in reason


def test_replaced_when_absent_foreign_mismatched_or_broken() -> None:
    bundle = tls.issue("svc", "ns", NOW)
    other = tls.issue("svc", "ns", NOW)
    assert tls.renewal_reason(None, "svc", "ns", NOW) == "no certificate yet"
    assert "does not cover svc.other.svc" in tls.renewal_reason(bundle, "svc", "other", NOW)
    swapped_key = tls.TLSBundle(cert=bundle.cert, key=other.key, ca=bundle.ca)
    assert "key does not match" in tls.renewal_reason(swapped_key, "svc", "ns", NOW)
    foreign_ca = tls.TLSBundle(cert=bundle.cert, key=bundle.key, ca=other.ca)
    assert "not signed" in tls.renewal_reason(foreign_ca, "svc", "ns", NOW)
    broken = tls.TLSBundle(cert=b"garbage", key=bundle.key, ca=bundle.ca)
    assert "not valid PEM" in tls.renewal_reason(broken, "svc", "ns", NOW)


def test_rotation_keeps_the_previous_ca_trusted_once() -> None:
    first = tls.issue("svc", "ns", NOW)
    later = NOW + tls.CERT_VALIDITY - tls.RENEW_BEFORE
    second = tls.issue("svc", "ns", later, previous_ca=first.ca)
    third = tls.issue("svc", "ns", later + timedelta(days=400), previous_ca=second.ca)
    second_cas = x509.load_pem_x509_certificates(second.ca)
    assert len(second_cas) == 2
    assert second_cas[1] == x509.load_pem_x509_certificates(first.ca)[0]
    # The first CA had expired by the third issue and the bundle never grows past two.
    third_cas = x509.load_pem_x509_certificates(third.ca)
    assert len(third_cas) == 1


def test_secret_data_round_trip_and_missing_keys() -> None:
    bundle = tls.issue("svc", "ns", NOW)
    data = bundle.secret_data()
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}  # cert-manager's layout
    assert tls.TLSBundle.from_secret_data(data) == bundle
    assert tls.TLSBundle.from_secret_data({"tls.crt": data["tls.crt"]}) is None
    assert tls.TLSBundle.from_secret_data({**data, "tls.key": "not base64!"}) is None
    assert tls.TLSBundle.from_secret_data(None) is None
