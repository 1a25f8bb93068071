"""Which addresses an http source may reach: a deny list of networks, checked against every
address a host name resolves to, for the first URL and every redirect.

The default denies link-local networks (cloud metadata services live at 169.254.169.254 and
fe80::/10) and the other well-known metadata addresses; a platform can replace the list with
TIDINGS_HTTP_DENIED_NETWORKS (comma-separated CIDRs, `none` for no list). A name is resolved
here and again by the HTTP client, so a name whose records change between the two look-ups
(DNS rebinding) is not covered: network policy is the layer for that.
"""

from __future__ import annotations

import ipaddress
import socket

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_DENIED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OpenStack metadata
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
    )
)


def parse_networks(text: str | None) -> tuple[Network, ...]:
    """TIDINGS_HTTP_DENIED_NETWORKS: unset means the default; `none` means nothing denied."""
    if text is None or not text.strip():
        return DEFAULT_DENIED
    if text.strip().lower() == "none":
        return ()
    networks = []
    for part in text.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"TIDINGS_HTTP_DENIED_NETWORKS: {part.strip()!r} is not a network (CIDR)"
            ) from None
    return tuple(networks)


def denied_literal(host: str, denied: tuple[Network, ...] = DEFAULT_DENIED) -> str | None:
    """The address if `host` is an IP literal inside a denied network (no DNS: for validation)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return str(address) if _inside(address, denied) else None


def refused_address(host: str, denied: tuple[Network, ...]) -> str | None:
    """The first address `host` resolves to that lies in a denied network, else None. A name
    that does not resolve is left to the HTTP client, which reports it as unreachable."""
    if not denied:
        return None
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _inside(address, denied):
            return str(address)
    return None


def _inside(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, denied: tuple[Network, ...]
) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:169.254.169.254
    return any(
        candidate in network
        for candidate in (address, mapped)
        if candidate is not None
        for network in denied
        if candidate.version == network.version
    )
