"""The address guard: IPv6 forms that carry an IPv4 address are judged as that address, this
host's unspecified addresses are always denied, and non-decimal IPv4 forms are refused."""

from __future__ import annotations

import ipaddress

import pytest

from tidings import netguard
from tidings.validation import http_url_problem

METADATA_FORMS = [
    "169.254.169.254",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::169.254.169.254",  # IPv4-compatible
    "64:ff9b::169.254.169.254",  # NAT64
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",  # 6to4
]


@pytest.mark.parametrize("address", METADATA_FORMS)
def test_every_form_of_the_metadata_address_is_denied(address: str) -> None:
    assert netguard.denied_literal(address) is not None
    assert netguard.refused_address(address, netguard.DEFAULT_DENIED) is not None
    host = f"[{address}]" if ":" in address else address
    assert "must not point at" in (http_url_problem(f"http://{host}/latest/meta-data/") or "")


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::10.1.2.3", "10.1.2.3"),
        ("64:ff9b::10.1.2.3", "10.1.2.3"),
        ("2002:0a01:0203::", "10.1.2.3"),
        ("::1", None),  # loopback, not ::0.0.0.1
        ("2001:db8::10.1.2.3", None),
    ],
)
def test_the_carried_ipv4_address(address: str, carried: str | None) -> None:
    found = netguard.embedded_ipv4(ipaddress.IPv6Address(address))
    assert (str(found) if found else None) == carried


def test_a_custom_ipv4_list_covers_the_ipv6_forms_too() -> None:
    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    for form in ("127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::"):
        assert netguard.refused_address(form, loopback), form
    assert netguard.refused_address("10.0.0.1", loopback) is None


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "::ffff:0.0.0.0"])
def test_the_unspecified_addresses_are_always_denied(address: str) -> None:
    assert netguard.refused_address(address, ()) is not None
    assert netguard.denied_literal(address, ()) is not None


@pytest.mark.parametrize("host", ["0177.0.0.1", "0x7f.1", "2130706433", "127.1"])
def test_non_decimal_ipv4_forms_are_refused(host: str) -> None:
    assert "127.0.0.1" in (netguard.ambiguous_ipv4(host) or "")
    assert "four decimal numbers" in (http_url_problem(f"http://{host}/rows") or "")


@pytest.mark.parametrize("host", ["127.0.0.1", "api.example.com", "::1", "1.2.3.4.5"])
def test_ordinary_hosts_are_not_ambiguous(host: str) -> None:
    assert netguard.ambiguous_ipv4(host) is None
