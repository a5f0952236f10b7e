"""What the zygote does once so that no sandbox does it: the first use of the HTTP clients
and model SDKs that agents make inside their function.

A sandbox is a fork of the zygote, so whatever the zygote has already built it finds made:
OpenSSL's configuration and providers (loaded with a process's first TLS context), the modules
httpx imports with its first client and its first proxy transport, and the caches, compiled
patterns and specialised bytecode of a client's whole request path. Without a first real
request here, every sandbox ran that path cold: about 2 ms and 170 more pages copied on write
for four httpx calls (the profile is in docs/benchmarks.md, *The work agents do*).

The requests go to a loopback server that lives only while this runs (a forked child, gone
before the zygote forks any sandbox), with the proxy variables a sandbox has, so the same
transports are built. Nothing survives it that a task could use: every client and connection
is closed, and a sandbox closes every descriptor it inherits in any case.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_TIMEOUT_SECONDS = 5.0
_ANSWERS: Mapping[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "id": "chatcmpl-warm-up",
        "object": "chat.completion",
        "created": 0,
        "model": "warm-up",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    },
    "/v1/messages": {
        "id": "msg_warm_up",
        "type": "message",
        "role": "assistant",
        "model": "warm-up",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    },
}
_PROMPT = [{"role": "user", "content": "warm-up"}]


def warm_up(proxy_environment: Mapping[str, str]) -> int:
    """Make a first TLS context, then a first request with each HTTP client and model SDK
    already imported; returns how many requests the loopback server answered."""
    if "ssl" in sys.modules:
        sys.modules["ssl"].SSLContext(sys.modules["ssl"].PROTOCOL_TLS_CLIENT)
    clients = _clients()
    if not clients:
        return 0
    with _environment(proxy_environment), _LoopbackServer() as server:
        for call in clients:
            with contextlib.suppress(Exception):  # a broken SDK is the agent's business
                call(server.url)
    return server.answered


def _clients() -> list[Callable[[str], None]]:
    """A first call for each client library that is imported, in the order they build on one
    another (the SDKs use httpx)."""
    modules = sys.modules
    calls: list[Callable[[str], None]] = []
    if "httpx" in modules:
        calls.append(lambda url: _httpx(modules["httpx"], url))
    if "requests" in modules:
        calls.append(lambda url: _requests(modules["requests"], url))
    if "openai" in modules:
        calls.append(lambda url: _openai(modules["openai"], url))
    if "anthropic" in modules:
        calls.append(lambda url: _anthropic(modules["anthropic"], url))
    return calls


def _httpx(httpx: Any, url: str) -> None:
    with httpx.Client(base_url=url, timeout=_TIMEOUT_SECONDS) as client:
        for _ in range(2):  # the second on the kept connection, as an agent's later calls
            response = client.post("/v1/chat/completions", json={"messages": _PROMPT})
            response.raise_for_status()
            response.json()


def _requests(requests: Any, url: str) -> None:
    with requests.Session() as session:
        for _ in range(2):
            response = session.post(
                f"{url}/v1/chat/completions", json={"messages": _PROMPT}, timeout=_TIMEOUT_SECONDS
            )
            response.raise_for_status()
            response.json()


def _openai(openai: Any, url: str) -> None:
    client = openai.OpenAI(
        api_key="warm-up", base_url=f"{url}/v1", max_retries=0, timeout=_TIMEOUT_SECONDS
    )
    with client:
        client.chat.completions.create(model="warm-up", messages=_PROMPT)


def _anthropic(anthropic: Any, url: str) -> None:
    client = anthropic.Anthropic(
        api_key="warm-up", base_url=url, max_retries=0, timeout=_TIMEOUT_SECONDS
    )
    with client:
        client.messages.create(model="warm-up", max_tokens=1, messages=_PROMPT)


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """These variables set while the block runs, and the environment as it was after."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _LoopbackServer:
    """HTTP/1.1 on 127.0.0.1, one connection at a time, answering each request with the JSON
    a model provider would (``_ANSWERS`` by path, ``{}`` otherwise).

    It runs in a forked child, not a thread: a thread would leave the zygote, and so every
    sandbox, a cached stack and a malloc arena (some 70 MB of address space, which counts
    against each sandbox's memory limit where that is per process)."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.answered = 0
        self.pid = 0
        self.tally = -1  # the read end of a pipe: a byte per answer

    def __enter__(self) -> _LoopbackServer:
        tally, mark = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(tally)
            with contextlib.suppress(BaseException):
                self._serve(mark)
            os._exit(0)
        os.close(mark)
        self.listener.close()  # the child's copy listens
        self.tally = tally
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        with os.fdopen(self.tally, "rb") as tally:
            self.answered = len(tally.read())

    def _serve(self, mark: int) -> None:
        self.listener.settimeout(_TIMEOUT_SECONDS)  # and then it ends, whatever happened
        while True:
            connection, _ = self.listener.accept()
            with connection:
                connection.settimeout(_TIMEOUT_SECONDS)
                with contextlib.suppress(OSError, ValueError):
                    self._answer_all(connection, mark)

    def _answer_all(self, connection: socket.socket, mark: int) -> None:
        buffered = b""
        while True:
            while b"\r\n\r\n" not in buffered:
                data = connection.recv(65536)
                if not data:
                    return
                buffered += data
            head, _, buffered = buffered.partition(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(":", 1) for line in header_lines if ":" in line)
            length = int(headers.get("content-length", "0").strip() or 0)
            while len(buffered) < length:
                data = connection.recv(65536)
                if not data:
                    return
                buffered += data
            buffered = buffered[length:]
            path = request_line.split(" ")[1].split("?")[0]
            body = json.dumps(_ANSWERS.get(path, {})).encode()
            connection.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            os.write(mark, b".")
