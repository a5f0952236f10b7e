"""What a deployment chooses for its sandboxes: the network policy (egress to allowed hosts
through the proxy, or none) and --sandbox-mount. (The tiers: test_sandbox_tiers.py.)"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import StartServer
from theazo import Theazo

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def fake_service() -> Iterator[int]:
    """An HTTP service on 127.0.0.1, as a test's stand-in for a model provider."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello from the fake service" * 100
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_an_allowed_host_is_reached_through_the_proxy(
    start_server: StartServer, api_key: str, fake_service: int
) -> None:
    code = """
import httpx
with httpx.Client(timeout=10) as client:  # as any agent's client: HTTP_PROXY, NO_PROXY
    allowed = client.get(f"http://127.0.0.1:{input['port']}/").text
    try:
        client.get(f"http://127.0.0.1:{input['port'] + 1}/")
        other = "reached"
    except httpx.ConnectError:
        other = "refused"
with httpx.Client(timeout=10, proxy="http://127.0.0.1:3128") as client:
    proxied = client.get(f"http://127.0.0.1:{input['port']}/").text
    other_proxied = client.get(f"http://127.0.0.1:{input['port'] + 1}/").status_code
result = {"allowed": allowed[:27], "other": other, "proxied": proxied[:27],
          "other_proxied": other_proxied}
"""
    with (
        start_server("--sandbox-allow-host", f"127.0.0.1:{fake_service}") as server,
        Theazo(api_key=api_key, base_url=server.base_url) as theazo,
    ):
        session = theazo.sessions.for_user("egress")
        task = session.run(agent="attacker", input={"code": code, "port": fake_service})
    assert task.status == "completed", task.error
    hello = "hello from the fake service"
    assert task.output == {
        "allowed": hello,  # on its own loopback, forwarded to the host's
        "other": "refused",
        "proxied": hello,
        "other_proxied": 403,
    }
    # Both answers that came through (2,700 bytes of body each) are counted on the task.
    network = task.usage.network
    assert network.received_bytes > 2 * 2700 and network.sent_bytes > 0
    assert network.connections >= 2


def test_a_cancelled_tasks_traffic_is_counted_too(
    start_server: StartServer, api_key: str, fake_service: int
) -> None:
    code = """
import time, httpx
with httpx.Client(timeout=10) as client:
    client.get(f"http://127.0.0.1:{input['port']}/")
ctx.progress(0.5, "fetched")
time.sleep(60)
"""
    with (
        start_server("--sandbox-allow-host", f"127.0.0.1:{fake_service}") as server,
        Theazo(api_key=api_key, base_url=server.base_url) as theazo,
    ):
        session = theazo.sessions.for_user("egress-cancelled")
        task = session.tasks.submit(agent="attacker", input={"code": code, "port": fake_service})
        for event in session.tasks.stream(task.task_id):
            if event.event == "progress":
                break
        session.tasks.cancel(task.task_id)
        deadline = time.monotonic() + 10
        while (got := session.tasks.get(task.task_id)).usage.network.connections == 0:
            assert time.monotonic() < deadline, "the cancelled task's traffic was not counted"
            time.sleep(0.05)
    assert got.status == "cancelled"
    assert got.usage.network.received_bytes > 2700 and got.usage.network.connections == 1


def test_no_network_at_all(start_server: StartServer, api_key: str, fake_service: int) -> None:
    code = """
import os, socket
try:
    socket.create_connection(("127.0.0.1", 3128), timeout=2)
    proxy = "reached"
except OSError as exc:
    proxy = type(exc).__name__
result = {"proxy": proxy, "variables": [k for k in os.environ if "proxy" in k.lower()]}
"""
    with (
        start_server("--sandbox-network", "none") as server,
        Theazo(api_key=api_key, base_url=server.base_url) as theazo,
    ):
        task = theazo.sessions.for_user("offline").run(agent="attacker", input={"code": code})
        health = httpx.get(f"{server.base_url}/healthz").json()["sandbox"]
    assert health["network"] == "none"
    assert task.output == {"proxy": "ConnectionRefusedError", "variables": []}


def test_a_mounted_path_widens_the_view_read_only_unless_rw(
    start_server: StartServer, api_key: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shared = tmp_path_factory.mktemp("data")
    (shared / "dataset.csv").write_text("a,b\n1,2\n")
    shared.chmod(0o755)
    (shared / "dataset.csv").chmod(0o644)
    code = """
import os
read = open("/data/dataset.csv").read()
try:
    open("/data/new", "w")
    wrote = True
except OSError:
    wrote = False
result = {"read": read, "wrote": wrote}
"""
    with (
        start_server("--sandbox-mount", f"{shared}:/data") as server,
        Theazo(api_key=api_key, base_url=server.base_url) as theazo,
    ):
        task = theazo.sessions.for_user("mounts").run(agent="attacker", input={"code": code})
    assert task.output == {"read": "a,b\n1,2\n", "wrote": False}
