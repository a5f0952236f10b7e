"""The public-address rule, form by form: every way an IPv6 address can lead to a private IPv4
address, and the public addresses that must still pass."""

from __future__ import annotations

import ipaddress

import pytest

from theazo.core.addresses import embedded_ipv4, is_public_address
from theazo.webhooks.urls import ForbiddenAddress, check_destination

NOT_PUBLIC = [
    # IPv4 ranges
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback, anywhere in 127/8"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("0.0.0.0", "unspecified: Linux connects it to this host"),
    ("0.1.2.3", "'this network'"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    # IPv6 ranges
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fd12:3456::1", "unique local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "global multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation (RFC 9637)"),
    ("100::1", "discard-only"),
    ("64:ff9b:1::a00:1", "NAT64 for local use"),
    # IPv6 forms that embed a private IPv4 address
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:7f00:1", "IPv4-mapped loopback, in hex"),
    ("::ffff:10.0.0.1", "IPv4-mapped private"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("::127.0.0.1", "IPv4-compatible loopback"),
    ("::10.0.0.1", "IPv4-compatible private"),
    ("::ffff:0:127.0.0.1", "IPv4-translated (SIIT) loopback"),
    ("2002:7f00:1::", "6to4 of 127.0.0.1"),
    ("2002:7f00:1:1234::5", "6to4 of 127.0.0.1, any host part"),
    ("2002:a00:1::1", "6to4 of 10.0.0.1"),
    ("2002:a9fe:a9fe::", "6to4 of 169.254.169.254"),
    ("2002:c0a8:101::", "6to4 of 192.168.1.1"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo, client 127.0.0.1"),
    ("2001:0:7f00:1:8000:63bf:f7f7:f7f7", "Teredo, server 127.0.0.1, public client"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo, client 10.0.0.1"),
    ("64:ff9b::7f00:1", "NAT64 of 127.0.0.1"),
    ("64:ff9b::10.0.0.1", "NAT64 of 10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254"),
    ("2606:4700:1:2:0:5efe:7f00:1", "ISATAP interface id of 127.0.0.1"),
    ("2606:4700:1:2:200:5efe:a00:1", "ISATAP (u bit) of 10.0.0.1"),
]

PUBLIC = [
    ("8.8.8.8", "a public IPv4 address"),
    ("1.1.1.1", "a public IPv4 address"),
    ("2606:4700:4700::1111", "a public IPv6 address"),
    ("2a00:1450:4001:80b::200e", "a public IPv6 address"),
    ("::ffff:8.8.8.8", "IPv4-mapped public"),
    ("2002:808:808::1", "6to4 of 8.8.8.8"),
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo, public server and client (8.8.8.8)"),
    ("64:ff9b::808:808", "NAT64 of 8.8.8.8"),
    ("2606:4700:1:2:0:5efe:808:808", "ISATAP interface id of a public address"),
]


@pytest.mark.parametrize(("text", "form"), NOT_PUBLIC, ids=[form for _, form in NOT_PUBLIC])
def test_a_private_destination_in_any_form_is_not_public(text: str, form: str) -> None:
    assert not is_public_address(ipaddress.ip_address(text)), form


@pytest.mark.parametrize(("text", "form"), PUBLIC, ids=[form for _, form in PUBLIC])
def test_a_public_destination_in_any_form_is_public(text: str, form: str) -> None:
    assert is_public_address(ipaddress.ip_address(text)), form


def test_the_ipv4_address_each_form_stands_for() -> None:
    def inner(text: str) -> list[str] | None:
        found = embedded_ipv4(ipaddress.IPv6Address(text))
        return None if found is None else [str(a) for a in found]

    assert inner("::ffff:7f00:1") == ["127.0.0.1"]
    assert inner("2002:7f00:1::") == ["127.0.0.1"]
    assert inner("64:ff9b::a00:1") == ["10.0.0.1"]
    assert inner("2001:0:4136:e378:8000:63bf:80ff:fffe") == ["65.54.227.120", "127.0.0.1"]
    assert inner("::1") is None and inner("::") is None  # themselves, not IPv4-compatible
    assert inner("2606:4700::1111") is None


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",  # the short forms inet_aton reads
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[2002:7f00:1::]",
        "[64:ff9b::7f00:1]",
        "[::127.0.0.1]",
    ],
)
async def test_every_spelling_of_a_loopback_webhook_host_is_refused(host: str) -> None:
    with pytest.raises(ForbiddenAddress):
        await check_destination(f"http://{host}:8080/hook", allow_private=False)


async def test_the_development_switch_lets_them_through() -> None:
    addresses = await check_destination("http://[2002:7f00:1::]/hook", allow_private=True)
    assert [str(a) for a in addresses] == ["2002:7f00:1::"]
