"""Which webhook URLs we accept: http(s) only, and by default none that resolve to this
machine or a private network (server-side request forgery). Checked at submit, and again at
every delivery, since DNS can change between the two (rebinding). What counts as public is
``core/addresses.py``'s rule, shared with the sandboxes' egress."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from theazo.core import defaults
from theazo.core.addresses import IPAddress, is_public_address
from theazo.core.errors import InvalidField

FIELD = "webhook"
CODE = "invalid_webhook_url"


class ForbiddenAddress(Exception):
    pass


def check_syntax(url: str) -> str:
    """Return the host of a well-formed http(s) URL; raise ``InvalidField`` otherwise."""
    if len(url) > defaults.WEBHOOK_MAX_URL_CHARS:
        raise InvalidField(
            FIELD, f"the webhook URL is longer than {defaults.WEBHOOK_MAX_URL_CHARS}"
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError as exc:
        raise InvalidField(FIELD, f"the webhook URL is malformed: {exc}", code=CODE) from exc
    del port
    if parts.scheme not in ("http", "https"):
        raise InvalidField(FIELD, "the webhook URL must start with http:// or https://", code=CODE)
    if not parts.hostname:
        raise InvalidField(FIELD, "the webhook URL has no host", code=CODE)
    if parts.username or parts.password:
        raise InvalidField(FIELD, "the webhook URL must not carry credentials", code=CODE)
    if any(ch.isspace() for ch in url):
        raise InvalidField(FIELD, "the webhook URL must not contain spaces", code=CODE)
    return parts.hostname


async def resolve(host: str, port: int | None = None) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_destination(url: str, *, allow_private: bool) -> list[IPAddress]:
    """Resolve the URL's host; raise ``ForbiddenAddress`` if any address is not public.

    Raises ``OSError`` when the host does not resolve.
    """
    host = check_syntax(url)
    addresses = await resolve(host)
    if not allow_private:
        bad = [str(a) for a in addresses if not is_public_address(a)]
        if bad:
            raise ForbiddenAddress(
                f"the webhook host {host} resolves to {', '.join(bad)}, which is not a public "
                "address"
            )
    return addresses


async def validate_webhook_url(url: str, *, allow_private: bool) -> None:
    """Check a webhook URL at submit. A host that does not resolve now is accepted: DNS may
    be down for a moment, and every delivery checks again."""
    try:
        await check_destination(url, allow_private=allow_private)
    except ForbiddenAddress as exc:
        raise InvalidField(FIELD, str(exc), code="webhook_url_forbidden") from exc
    except (OSError, UnicodeError):
        return
