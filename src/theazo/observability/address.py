"""The metrics listener's address (``--metrics``), parsed and judged without any lookup."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from theazo.core import defaults


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        return ipaddress.ip_address(self.host).is_loopback

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str) -> MetricsAddress:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``PORT`` (on 127.0.0.1); the host is an IP address
    or ``localhost``, so that whether it is loopback is known without a lookup."""
    value = text.strip()
    host, port_text = "", value
    if value.startswith("["):
        inside, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not HOST:PORT (an IPv6 host is written [::1]:PORT)")
        host, port_text = inside, rest[1:]
    elif ":" in value:
        host, _, port_text = value.rpartition(":")
        if ":" in host:
            raise ValueError(f"{text!r} is not HOST:PORT (an IPv6 host is written [::1]:PORT)")
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} does not end with a port number (1-65535)")
    host = host or defaults.HOST
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"{host!r} is not an IP address or localhost (e.g. 127.0.0.1:9464)"
            ) from None
    return MetricsAddress(host, int(port_text))
