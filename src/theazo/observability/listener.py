"""Where metrics are read: a listener of their own (``--metrics HOST:PORT``), and the API's
request counting.

Metrics are the whole deployment's (every project's tasks), so they are not served on the
API's port, where any project's key gets in: they have an address of their own, off unless
asked for, and on loopback unless ``--metrics-allow-remote`` says the operator has fenced it
(a firewall, a scraper-only network). The listener answers ``GET /metrics`` and nothing else;
it is uvicorn in the node's own event loop, so a scrape reads the same objects the node runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theazo.observability.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("theazo.metrics")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route took (never its raw path)


# --- the API's requests ---------------------------------------------------------------------
class HttpMetrics:
    """Counts each API request once its answer starts, by method, route template and status:
    ``/v1/sessions/{session_id}/tasks/{task_id}``, never the path itself (its ids would make
    a series per task). Installed innermost, so it reads the route the router chose; what
    outer layers refuse before routing (a body over the limit) is not counted."""

    def __init__(self, app: ASGIApp, count: Callable[[str, str, int], None]) -> None:
        self.app = app
        self.count = count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counted = False

        async def counting_send(message: Message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start" and not counted:
                counted = True
                self.count(_method(scope), _route(scope), int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not counted:  # the server's error handler answers 500 outside this middleware
                self.count(_method(scope), _route(scope), 500)
            raise


def _method(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in METHODS else "other"  # a client may send any token


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


# --- the listener ---------------------------------------------------------------------------
class MetricsListener:
    """Serves ``GET /metrics`` on its own socket until ``stop``."""

    def __init__(self, metrics: Metrics, sock: socket.socket, **uvicorn_options: Any) -> None:
        self._sock = sock
        self._server = _QuietServer(
            uvicorn.Config(
                _App(metrics),
                lifespan="off",
                access_log=False,
                server_header=False,
                **uvicorn_options,
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[self._sock])
        )
        while not self._server.started:
            if self._task.done():  # it failed to start: say why
                await self._task
                return
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await self._task
        except Exception:
            log.warning("the metrics listener stopped with an error", exc_info=True)
        self._task = None
        self._sock.close()


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handling: the node's own server (or its worker loop) takes
    the signals, and stops this one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn before 0.29 called this instead
        pass


class _App:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope.get("method")
        if scope.get("path") != "/metrics":
            await _answer(send, 404, b"not found: metrics are at /metrics\n")
        elif method not in ("GET", "HEAD"):
            await _answer(send, 405, b"only GET /metrics\n", [(b"allow", b"GET, HEAD")])
        else:
            body = await self._metrics.scrape()
            await _answer(
                send,
                200,
                b"" if method == "HEAD" else body,
                [(b"content-type", CONTENT_TYPE.encode())],
                length=len(body),
            )


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    length: int | None = None,
) -> None:
    all_headers = [
        (b"content-length", str(len(body) if length is None else length).encode()),
        *(headers or [(b"content-type", b"text/plain; charset=utf-8")]),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
