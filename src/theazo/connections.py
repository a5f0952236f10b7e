"""What one HTTP connection may cost the server, before any key is checked.

uvicorn's httptools protocol with a guard around it:

* a request's head (request line and headers) is at most ``max_head_bytes``; past that the
  answer is 431 and the connection closes. The parser is fed no more than that, so a header
  of a hundred megabytes costs what 64 KiB do (before, its parsing held the event loop for
  seconds, as the parser grew one buffer piece by piece);
* a connection must deliver its request's head within ``read_timeout_seconds`` of opening
  it (or of its first byte, after a keep-alive pause), and a body must not pause longer;
  otherwise it is closed (408). An idle connection is dropped after the keep-alive time;
* at most ``max_connections`` connections are open at once, and at most
  ``max_per_client`` from one address; a connection over either is answered at once (503 or
  429) and closed, so one client cannot take every descriptor of the process.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from theazo.api.problems import MEDIA_TYPE, TYPE_BASE
from theazo.core import defaults


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_head_bytes: int = defaults.HTTP_MAX_HEAD_BYTES
    read_timeout_seconds: float = defaults.HTTP_READ_TIMEOUT_SECONDS
    max_connections: int = defaults.HTTP_MAX_CONNECTIONS
    max_per_client: int = defaults.HTTP_MAX_CONNECTIONS_PER_CLIENT  # 0: no cap per client


class ConnectionCount:
    """The open connections, in total and per client address (shared by all of them)."""

    def __init__(self) -> None:
        self.total = 0
        self.per_client: Counter[str] = Counter()

    def admit(self, client: str, limits: ConnectionLimits) -> tuple[int, str, str] | None:
        """None to let a new connection in (it is counted); else the refusal to send."""
        if self.total >= limits.max_connections:
            return (503, "too_many_connections", "the server has all the connections it takes")
        if limits.max_per_client and self.per_client[client] >= limits.max_per_client:
            return (
                429,
                "too_many_connections",
                f"this address has {limits.max_per_client} connections open already",
            )
        self.total += 1
        self.per_client[client] += 1
        return None

    def release(self, client: str) -> None:
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class with ``limits`` kept (see the module's text)."""
    count = ConnectionCount()

    class GuardedProtocol(_Guarded):
        pass

    GuardedProtocol.limits = limits
    GuardedProtocol.count = count
    return GuardedProtocol


class _Guarded(HttpToolsProtocol):
    limits: ConnectionLimits
    count: ConnectionCount

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the next bytes belong to a request's head
        self._head_bytes = 0
        self._read_timer: asyncio.TimerHandle | None = None
        self._counted_as: str | None = None
        self._refused = False

    # --- connections -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        client = self.client[0] if self.client else ""
        refusal = self.count.admit(client, self.limits)
        if refusal is not None:
            self._refuse(*refusal)
            return
        self._counted_as = client
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_timer()
        if self._counted_as is not None:
            self.count.release(self._counted_as)
            self._counted_as = None
        super().connection_lost(exc)

    # --- reading -----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._in_head:  # a body: each piece restarts its time
            if self._read_timer is not None:
                self._arm_read_timer()
            super().data_received(data)
            return
        if self._read_timer is None:  # the first byte of a request after a keep-alive pause
            self._arm_read_timer()
        room = self.limits.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        head, rest = data[:room], data[room:]
        self._head_bytes += len(head)
        if head:
            super().data_received(head)
        if self._refused or self.transport.is_closing():
            return
        if self._in_head:
            self._refuse(
                431,
                "headers_too_large",
                f"the request line and headers are over {self.limits.max_head_bytes} bytes",
            )
            return
        self.data_received(rest)  # a body, or a pipelined request's head: guarded in turn

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._arm_read_timer()  # now for the body, if one comes; the message's end stops it
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._disarm_read_timer()  # the next head's time starts with its first byte
        super().on_message_complete()

    # --- time ----------------------------------------------------------------------------------
    def _arm_read_timer(self) -> None:
        self._disarm_read_timer()
        self._read_timer = self.loop.call_later(
            self.limits.read_timeout_seconds, self._on_read_timeout
        )

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _on_read_timeout(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if not self._in_head and self.flow.read_paused:  # the app is slow to read, not them
            self._arm_read_timer()
            return
        what = "its request's head" if self._in_head else "the rest of its body"
        self._refuse(
            408,
            "request_timeout",
            f"the connection did not send {what} within {self.limits.read_timeout_seconds:g}s",
        )

    # --- refusing ------------------------------------------------------------------------------
    def _refuse(self, status: int, code: str, detail: str) -> None:
        """Answer with a problem and close; nothing more is read from this connection."""
        self._refused = True
        self._disarm_read_timer()
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # an answer is on its way already: just stop
            return
        self.transport.write(problem_response(status, code, detail))
        self.transport.close()


def problem_response(status: int, code: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer carrying a problem+json body, closing the connection."""
    phrase = HTTPStatus(status).phrase
    body = json.dumps(
        {
            "type": TYPE_BASE + code,
            "title": phrase,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        f"content-type: {MEDIA_TYPE}\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body
