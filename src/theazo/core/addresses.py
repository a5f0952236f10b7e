"""Which IP addresses count as public: the one rule behind every outbound connection Theazo
makes for someone else (webhooks; the sandboxes' egress proxy).

An IPv6 address can carry an IPv4 address inside it, and some of those forms are routed to
that IPv4 address by the network (6to4, Teredo, NAT64) or by the host's own stack
(IPv4-mapped). ``[2002:7f00:1::]`` is 127.0.0.1 reached through a 6to4 relay, and
``[::ffff:10.0.0.1]`` is 10.0.0.1 itself. So an address is public only if it is public and
so is every IPv4 address it embeds. The tables of the standard library change between Python
versions (3.11 calls 2002::/16 global, later versions do not); the forms that embed an
address are therefore decided here by what they embed, not by those tables.

Pure functions of ``ipaddress`` values: no I/O, nothing resolved.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V6 = ipaddress.IPv6Network
_MAPPED = _V6("::ffff:0:0/96")  # IPv4-mapped: the host's stack talks IPv4 to it
_TRANSLATED = _V6("::ffff:0:0:0/96")  # SIIT, IPv4-translated (RFC 2765)
_COMPATIBLE = _V6("::/96")  # IPv4-compatible (deprecated, RFC 4291 2.5.5.1)
_SIXTOFOUR = _V6("2002::/16")  # 6to4 (RFC 3056): bits 16-47 are the IPv4 address
_TEREDO = _V6("2001::/32")  # Teredo (RFC 4380): server and (obfuscated) client IPv4
_NAT64 = _V6("64:ff9b::/96")  # NAT64's well-known prefix (RFC 6052): the last 32 bits

_V4 = ipaddress.IPv4Network
# IPv4 ranges that are never a public destination (RFC 6890), whatever the tables say.
_NOT_PUBLIC_V4 = tuple(
    _V4(network)
    for network in (
        "0.0.0.0/8",  # "this network": Linux connects 0.0.0.0 to this host
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, where clouds serve instance metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # the 6to4 relays' anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# IPv6 ranges that are never a public destination, whatever the Python version's tables say.
_NOT_PUBLIC_V6 = tuple(
    _V6(network)
    for network in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # NAT64 for local use (RFC 8215): translated to private networks
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "2001:10::/28",  # ORCHID
        "2001:20::/28",  # ORCHIDv2
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed by some stacks)
        "ff00::/8",  # multicast
    )
)
_ISATAP_MASK = 0xFDFF_FFFF  # the interface id's u/g bits aside, ISATAP is 0000:5efe (RFC 5214)
_ISATAP_MARK = 0x0000_5EFE


def is_public_address(address: IPAddress) -> bool:
    """True if a connection to ``address`` can only reach the public internet: the address
    is globally routable, and so is every IPv4 address it embeds (mapped, compatible,
    translated, 6to4, Teredo, NAT64, ISATAP)."""
    if isinstance(address, ipaddress.IPv4Address):
        return _is_public_v4(address)
    embedded = embedded_ipv4(address)
    if embedded is not None:  # decided by what the network or the stack delivers it to
        return bool(embedded) and all(_is_public_v4(inner) for inner in embedded)
    if any(address in network for network in _NOT_PUBLIC_V6):
        return False
    isatap = _isatap_ipv4(address)
    if isatap is not None and not _is_public_v4(isatap):
        return False
    return address.is_global and not address.is_multicast and not address.is_site_local


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address of a translating form stands for, or None when it
    is not of such a form. ``::`` and ``::1`` are not IPv4-compatible addresses."""
    return None if not _is_embedding(address) else list(_embedded(address))


_EMBEDDING = (_MAPPED, _TRANSLATED, _COMPATIBLE, _SIXTOFOUR, _TEREDO, _NAT64)


def _is_embedding(address: ipaddress.IPv6Address) -> bool:
    if address in _COMPATIBLE and int(address) <= 1:  # :: and ::1 are themselves
        return False
    return any(address in prefix for prefix in _EMBEDDING)


def _embedded(address: ipaddress.IPv6Address) -> Iterator[ipaddress.IPv4Address]:
    if address in _TEREDO:
        teredo = address.teredo
        assert teredo is not None
        yield from teredo  # the server, and the client the relay forwards to
    elif address in _SIXTOFOUR:
        sixtofour = address.sixtofour
        assert sixtofour is not None
        yield sixtofour
    else:  # mapped, translated, compatible, NAT64: the last 32 bits
        yield ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)


def _isatap_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address in an ISATAP interface identifier (``…:0:5efe:a.b.c.d``), if any."""
    interface_id = int(address) & 0xFFFF_FFFF_FFFF_FFFF
    if (interface_id >> 32) & _ISATAP_MASK != _ISATAP_MARK:
        return None
    return ipaddress.IPv4Address(interface_id & 0xFFFF_FFFF)


def _is_public_v4(address: ipaddress.IPv4Address) -> bool:
    return address.is_global and not any(address in network for network in _NOT_PUBLIC_V4)
