"""A webhook receiver for tests: a real HTTP server on 127.0.0.1, in a thread, that records
every request as it arrives and answers as the test scripted it (200 unless told otherwise).

Tests verify what it recorded with the official ``standardwebhooks`` library, exactly as a
receiver written by someone else would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.support.server import free_port
from tests.support.waiting import eventually


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived_at: float  # time.monotonic()

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    def verify(self, secret: str) -> Any:
        """The payload, if ``secret`` verifies the message; raises otherwise."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    hang_seconds: float = 0.0  # wait this long (or until released) before answering


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.released = threading.Event()  # hanging handlers answer at once when set
        self._requests: list[Received] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with these replies, in order; then 200."""
        with self._lock:
            self._scripts.setdefault(path, []).extend(replies)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 15.0) -> list[Received]:
        eventually(
            lambda: len(self.received(path)) >= count,
            timeout=timeout,
            what=f"{count} request(s) to {path}",
        )
        return self.received(path)

    async def arrival(self, path: str, count: int = 1, timeout: float = 15.0) -> list[Received]:
        """``wait_for`` for async tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while len(self.received(path)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {path}")
            await asyncio.sleep(0.01)
        return self.received(path)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # --- called by the handler -------------------------------------------------------------
    def _record(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self._requests.append(Received(path, headers, body, time.monotonic()))
            script = self._scripts.get(path)
            return script.pop(0) if script else Reply()


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = receiver._record(self.path, headers, body)
            if reply.hang_seconds:
                receiver.released.wait(reply.hang_seconds)
            try:
                self.send_response(reply.status)
                if 300 <= reply.status < 400:
                    self.send_header("Location", "/redirected")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the sender gave up waiting: what a real receiver sees too

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
