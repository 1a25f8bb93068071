"""Which addresses an http source may reach: a deny list of networks, checked against every
address a host name resolves to, for the first URL and every redirect.

An IPv6 address that carries an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4) is
judged as that IPv4 address too, and 0.0.0.0 and :: (this host) are always denied.
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
    """The first address `host` resolves to that lies in a denied network (or is 0.0.0.0 or
    ::, always), else None. A name that does not resolve is left to the HTTP client, which
    reports it as unreachable."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if _inside(address, denied):
            return str(address)
    return None


# The unspecified addresses: a connection to them reaches this host, whatever the deny list.
_UNSPECIFIED = (ipaddress.IPv4Address("0.0.0.0"), ipaddress.IPv6Address("::"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries: IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible
    ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::. A gateway or the host's stack
    may deliver it to that IPv4 address, so it is judged as that address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _inside(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, denied: tuple[Network, ...]
) -> bool:
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and (carried := embedded_ipv4(address)):
        candidates.append(carried)
    if any(candidate in _UNSPECIFIED for candidate in candidates):
        return True
    return any(
        candidate in network
        for candidate in candidates
        for network in denied
        if candidate.version == network.version
    )


def ambiguous_ipv4(host: str) -> str | None:
    """Why `host` is refused if it is an IPv4 address written other than as four decimal
    numbers (0177.0.0.1, 0x7f.1, 2130706433): resolvers read such forms differently (octal,
    hex, fewer parts), so the address meant is not the address checked."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None  # a canonical literal
    except ValueError:
        pass
    try:
        read = ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, UnicodeError, ValueError):
        return None  # a name
    return (
        f"the host {host!r} is an IPv4 address in a non-standard form (read as {read}): "
        "write it as four decimal numbers"
    )
