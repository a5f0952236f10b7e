"""``--metrics`` values: what they listen on, and whether that is loopback."""

from __future__ import annotations

import pytest

from theazo.observability.address import MetricsAddress, parse_address


@pytest.mark.parametrize(
    ("text", "address", "loopback"),
    [
        ("127.0.0.1:9464", MetricsAddress("127.0.0.1", 9464), True),
        ("9464", MetricsAddress("127.0.0.1", 9464), True),
        (":9464", MetricsAddress("127.0.0.1", 9464), True),
        ("localhost:9100", MetricsAddress("localhost", 9100), True),
        ("[::1]:9464", MetricsAddress("::1", 9464), True),
        ("127.0.0.2:9464", MetricsAddress("127.0.0.2", 9464), True),
        ("0.0.0.0:9464", MetricsAddress("0.0.0.0", 9464), False),
        ("10.1.2.3:9464", MetricsAddress("10.1.2.3", 9464), False),
        ("[::]:9464", MetricsAddress("::", 9464), False),
    ],
)
def test_addresses(text: str, address: MetricsAddress, loopback: bool) -> None:
    assert parse_address(text) == address
    assert address.is_loopback is loopback


def test_an_ipv6_address_is_shown_in_brackets() -> None:
    assert str(parse_address("[::1]:9464")) == "[::1]:9464"


@pytest.mark.parametrize(
    "text", ["", "abc", "1.2.3.4:0", "1.2.3.4:-1", "[::1]9464", "a:b:c", "x:1"]
)
def test_what_is_not_an_address(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_address(text)
