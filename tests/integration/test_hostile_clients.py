"""Clients that send no key and try to stall everyone: huge headers, connections that never
send a request, more connections than the server has descriptors. Each costs the server
little and is refused with its own answer, and /healthz still answers meanwhile (how fast is
measured by bench/hostile.py, not here)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.waiting import eventually
from theazo import Theazo

READ_TIMEOUT = "1s"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("hostile")
    args = ["--http-read-timeout", READ_TIMEOUT, "--max-connections-per-client", "1000"]
    with ServerProcess.start(workdir, args=args) as process:
        yield process


def connect(server: ServerProcess, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", server.port), timeout=10, source_address=(source, 0)
    )


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def healthz(server: ServerProcess) -> int:
    return httpx.get(f"{server.base_url}/healthz", timeout=10).status_code


def test_a_head_over_the_limit_is_431_and_costs_only_the_limit(server: ServerProcess) -> None:
    sent = 0
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 128 * 1024 * 1024:  # the server stops reading long before this
                sock.sendall(b"a" * 65536)
                sent += 65536
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"code": "headers_too_large"' in answer
    assert sent < 16 * 1024 * 1024
    assert healthz(server) == 200


def test_a_request_that_never_finishes_its_head_is_closed_with_408(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"request_timeout" in answer


def test_a_connection_that_sends_nothing_is_closed(server: ServerProcess) -> None:
    with connect(server) as sock:
        assert answer_of(sock).startswith(b"HTTP/1.1 408 ")


def test_a_body_that_stalls_is_closed(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b"Authorization: Bearer " + server.api_key.encode() + b"\r\n\r\n{"
        )
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


def test_one_address_cannot_take_every_connection(server: ServerProcess) -> None:
    """2,000 idle connections from two addresses (the most each may hold), one more refused,
    and a third address still served."""
    held: list[socket.socket] = []
    try:
        for source in ("127.0.0.2", "127.0.0.3"):
            held += [connect(server, source) for _ in range(1000)]
        with connect(server, "127.0.0.2") as extra:
            answer = answer_of(extra)
        assert answer.startswith(b"HTTP/1.1 429 "), answer[:200]
        assert b"too_many_connections" in answer
        assert healthz(server) == 200  # from 127.0.0.1, under 2,000 idle connections
    finally:
        for sock in held:
            sock.close()


def test_healthz_answers_through_a_header_flood(server: ServerProcess) -> None:
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            try:
                with connect(server, "127.0.0.4") as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 200_000)
                    answer_of(sock)
            except OSError:
                pass

    floods = [threading.Thread(target=flood, daemon=True) for _ in range(8)]
    for thread in floods:
        thread.start()
    try:
        assert all(healthz(server) == 200 for _ in range(20))
    finally:
        stop.set()
        for thread in floods:
            thread.join()


def test_the_connection_cap_answers_503(tmp_path: Path) -> None:
    with ServerProcess.start(tmp_path, args=["--max-connections", "20"]) as small:
        held = [connect(small) for _ in range(20)]
        try:
            with connect(small) as extra:
                answer = answer_of(extra)
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b"too_many_connections" in answer
        finally:
            for sock in held:
                sock.close()
        eventually(lambda: healthz(small) == 200, what="served again once they closed")


def test_a_stopping_server_refuses_new_connections_at_once(tmp_path: Path) -> None:
    with ServerProcess.start(tmp_path) as node:
        with Theazo(api_key=node.api_key, base_url=node.base_url) as theazo:
            session = theazo.sessions.for_user("stopping")
            task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
            eventually(lambda: session.tasks.get(task.task_id).status == "running")
        assert node.process is not None
        node.process.send_signal(signal.SIGTERM)  # the task holds the node for its grace

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", node.port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        eventually(refused, timeout=10, what="the port to refuse connections")
        assert node.process.poll() is None  # refused while the node is still draining
