"""The egress proxy: a sandbox's only way out of its network namespace.

A sandbox under ``--sandbox-network egress`` has no network but its own loopback, on which it
listens at ``127.0.0.1:3128`` before it gets its task; the socket is passed to the server,
and this proxy, in the server, answers it. An agent's HTTP clients find it through
``HTTP_PROXY``/``HTTPS_PROXY``. So the sandbox needs no route, and every connection out is
seen here: its destination checked, its bytes counted for the task.

Two forms of request, as every HTTP client sends them to a proxy:

* ``CONNECT host:port``: a tunnel (HTTPS, or anything over TCP);
* ``GET http://host/path`` (absolute form): one plain-HTTP request, passed on with
  ``Connection: close``.

The destination is resolved here and the address connected to is the one checked, so a name
that resolves differently later (DNS rebinding) cannot slip past. By default only public
addresses are allowed; ``--sandbox-allow-host`` replaces that with an allow-list of hosts, which
may then be private or loopback (how tests reach a fake service on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from theazo.core import defaults
from theazo.core.addresses import is_public_address
from theazo.observability.logs import task_fields

log = logging.getLogger("theazo.egress")


@dataclass(frozen=True, slots=True)
class HostRule:
    """``--sandbox-allow-host HOST[:PORT]``: a host (name or address), any port unless given."""

    host: str
    port: int | None = None

    @classmethod
    def parse(cls, spec: str) -> HostRule:
        text = spec.strip()
        port: int | None = None
        if text.startswith("["):  # [v6]:port
            host, _, rest = text[1:].partition("]")
            if rest:
                port = _port(rest.removeprefix(":"), spec)
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = _port(port_text, spec)
        else:
            host = text
        if not host:
            raise ValueError(f"{spec!r} is not HOST[:PORT]")
        return cls(host.lower().rstrip("."), port)

    def matches(self, host: str, port: int) -> bool:
        return self.host == host and (self.port is None or self.port == port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{spec!r} has no valid port")
    return int(text)


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow_hosts: tuple[HostRule, ...] = ()

    @property
    def forwards(self) -> dict[int, HostRule]:
        """Allowed loopback services with a port: each sandbox listens on that port of its own
        loopback and the proxy passes what comes there to the host's, so an agent reaches
        them as if they ran beside it (and clients that skip the proxy for 127.0.0.1 work)."""
        return {
            rule.port: rule
            for rule in self.allow_hosts
            if rule.port is not None and rule.host in _LOOPBACK_NAMES
        }

    def admits(self, host: str, port: int) -> bool:
        """May a connection to ``host:port`` be tried at all (before resolving)?"""
        return not self.allow_hosts or any(r.matches(host, port) for r in self.allow_hosts)

    def admits_address(self, address: str) -> bool:
        """May the proxy connect to this resolved address? With an allow-list, the host was
        chosen by the operator, so any address is fine."""
        return bool(self.allow_hosts) or is_public_address(ipaddress.ip_address(address))


@dataclass(slots=True)
class Usage:
    sent: int = 0  # bytes from the sandbox to its destinations
    received: int = 0  # bytes from the destinations to the sandbox
    connections: int = 0


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(slots=True)
class Attachment:
    """One sandbox's listeners, served by the proxy until the task ends. They are watched by
    the event loop directly: most tasks never connect, and then a listener costs nothing but
    its descriptor."""

    task_id: str
    listeners: list[socket.socket] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    open: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> Usage:
        loop = asyncio.get_running_loop()
        for listener in self.listeners:
            loop.remove_reader(listener.fileno())
            listener.close()
        self.listeners = []
        for connection in list(self.open):
            connection.cancel()
        await asyncio.gather(*self.open, return_exceptions=True)
        return self.usage


Handler = Callable[
    ["Attachment", asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]
]


# A service of the server's own that every sandbox reaches on a port of its loopback (the
# model gateway, say): called with the task's id and the connection.
ServiceHandler = Callable[
    [str, asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]
]


class EgressProxy:
    def __init__(
        self, policy: EgressPolicy, services: Mapping[int, ServiceHandler] | None = None
    ) -> None:
        self.policy = policy
        self.services = dict(services or {})

    async def attach(
        self, task_id: str, proxy: socket.socket, forwards: dict[int, socket.socket]
    ) -> Attachment:
        """Answer a sandbox's listeners (already listening) for ``task_id``: the proxy's, and
        one per forwarded loopback port."""
        attachment = Attachment(task_id)
        handlers: list[tuple[socket.socket, Handler]] = [(proxy, self._serve)]
        for port, listener in forwards.items():
            if port in self.services:
                handler: Handler = functools.partial(self._serve_service, self.services[port])
            else:
                handler = functools.partial(self._forward_port, self.policy.forwards[port])
            handlers.append((listener, handler))
        loop = asyncio.get_running_loop()
        for listener, handler in handlers:
            listener.setblocking(False)
            loop.add_reader(listener.fileno(), self._accept, attachment, listener, handler)
            attachment.listeners.append(listener)
        return attachment

    def _accept(self, attachment: Attachment, listener: socket.socket, handler: Handler) -> None:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # out of descriptors, say: the sandbox retries
            return
        if len(attachment.open) >= defaults.EGRESS_CONNECTIONS_PER_SANDBOX:
            connection.close()  # a sandbox may not take every descriptor of the server
            return
        task = asyncio.get_running_loop().create_task(self._open(attachment, connection, handler))
        attachment.open.add(task)
        task.add_done_callback(attachment.open.discard)

    @staticmethod
    async def _open(attachment: Attachment, connection: socket.socket, handler: Handler) -> None:
        connection.setblocking(False)
        try:
            reader, writer = await asyncio.open_connection(sock=connection)
        except OSError:
            connection.close()
            return
        await handler(attachment, reader, writer)

    async def _serve_service(
        self,
        service: ServiceHandler,
        attachment: Attachment,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            await service(attachment.task_id, reader, writer)
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception(
                "a sandbox service failed on a connection of %s",
                attachment.task_id,
                extra=task_fields(task_id=attachment.task_id),
            )
        finally:
            writer.close()

    async def _forward_port(
        self,
        rule: HostRule,
        attachment: Attachment,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """A connection to a forwarded port: passed as it is to the host's service there."""
        assert rule.port is not None
        try:
            upstream_reader, upstream_writer = await self._connect(attachment, rule.host, rule.port)
            attachment.usage.connections += 1
            try:
                await _relay(
                    reader, writer, upstream_reader, upstream_writer, attachment.usage, b""
                )
            finally:
                upstream_writer.close()
        except (Refused, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve(
        self, attachment: Attachment, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await asyncio.wait_for(
                reader.readuntil(b"\r\n\r\n"), defaults.EGRESS_HEAD_TIMEOUT_SECONDS
            )
            await self._forward(attachment, head, reader, writer)
        except Refused as exc:
            _answer(writer, exc.status, str(exc))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            _answer(writer, 400, "the request to the proxy was incomplete or too long")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _forward(
        self,
        attachment: Attachment,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        request_line, _, headers = head.partition(b"\r\n")
        method, target, version = _parse_request_line(request_line)
        if method == "CONNECT":
            host, port = _split_authority(target, default_port=443)
            upstream_reader, upstream_writer = await self._connect(attachment, host, port)
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            first = b""
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                raise Refused(400, "send absolute http:// URLs or CONNECT to this proxy")
            host, port = url.hostname.lower(), url.port or 80
            upstream_reader, upstream_writer = await self._connect(attachment, host, port)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            first = _rewrite_head(method, path, version, headers, f"{url.netloc}")
        attachment.usage.connections += 1
        try:
            await _relay(reader, writer, upstream_reader, upstream_writer, attachment.usage, first)
        finally:
            upstream_writer.close()

    async def _connect(
        self, attachment: Attachment, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host = host.lower().rstrip(".")
        if not self.policy.admits(host, port):
            raise Refused(403, f"{host}:{port} is not among the hosts this deployment allows")
        loop = asyncio.get_running_loop()
        try:
            found = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM),
                defaults.EGRESS_CONNECT_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError) as exc:
            raise Refused(502, f"cannot resolve {host}: {exc}") from exc
        addresses = [info[4][0] for info in found]
        allowed = [a for a in addresses if self.policy.admits_address(str(a))]
        if not allowed:
            raise Refused(
                403,
                f"{host} resolves to private, loopback or link-local addresses only "
                f"({', '.join(map(str, addresses))}); sandboxes may reach public ones",
            )
        last_error: Exception | None = None
        for address in allowed:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(str(address), port),
                    defaults.EGRESS_CONNECT_TIMEOUT_SECONDS,
                )
            except (OSError, TimeoutError) as exc:
                last_error = exc
        raise Refused(502, f"cannot connect to {host}:{port}: {last_error}")


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
    usage: Usage,
    first: bytes,
) -> None:
    """Copy both ways until either side ends, counting what goes out and comes in."""
    if first:
        upstream_writer.write(first)
        usage.sent += len(first)

    async def pipe(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, outgoing: bool
    ) -> None:
        while data := await source.read(defaults.EGRESS_CHUNK_BYTES):
            sink.write(data)
            if outgoing:
                usage.sent += len(data)
            else:
                usage.received += len(data)
            await sink.drain()
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()

    out = asyncio.ensure_future(pipe(client_reader, upstream_writer, True))
    back = asyncio.ensure_future(pipe(upstream_reader, client_writer, False))
    try:
        # The answer ending ends the exchange; a client that half-closes still gets it.
        await asyncio.wait([out, back], return_when=asyncio.FIRST_EXCEPTION)
        with contextlib.suppress(ConnectionError, RuntimeError):  # a side closed under us
            await back
    finally:
        for side in (out, back):
            side.cancel()
        await asyncio.gather(out, back, return_exceptions=True)


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    try:
        method, target, version = line.decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise Refused(400, "only HTTP/1.x requests are proxied")
    return method.upper(), target, version


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    url = urlsplit(f"//{authority}")
    try:
        port = url.port or default_port
    except ValueError:
        raise Refused(400, f"bad port in {authority!r}") from None
    if not url.hostname:
        raise Refused(400, f"no host in {authority!r}")
    return url.hostname, port


_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te"}


def _rewrite_head(method: str, path: str, version: str, headers: bytes, netloc: str) -> bytes:
    """The request as the origin expects it: origin-form, no proxy headers, one request."""
    kept = [b"%s %s %s" % (method.encode(), path.encode(), version.encode())]
    has_host = False
    for line in headers.split(b"\r\n"):
        name = line.split(b":", 1)[0].strip().lower()
        if not line or name in _HOP_BY_HOP:
            continue
        has_host = has_host or name == b"host"
        kept.append(line)
    if not has_host:
        kept.append(b"Host: " + netloc.encode())
    kept.append(b"Connection: close")
    return b"\r\n".join(kept) + b"\r\n\r\n"


def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"theazo egress proxy: {reason}\n".encode()
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError, RuntimeError):
        writer.write(head.encode() + body)


def parse_rules(specs: Iterable[str]) -> tuple[HostRule, ...]:
    return tuple(HostRule.parse(s) for s in specs)
