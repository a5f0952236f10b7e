"""Starting and stopping the systems of ``bench/peers.py`` (and ``bench/profile.py``): the
environment they run in, and a ``theazo serve`` set up like the peers (WORKERS processes)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
WORKERS = 2  # worker processes of every system, and Theazo's --concurrency


def env() -> dict[str, str]:
    # The caller's THEAZO_ settings stay out, so each system runs as its docs advise; the
    # zygotes' preload may be chosen, to measure what it costs.
    kept = {"THEAZO_SANDBOX_PRELOAD"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_") or k in kept}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the Theazo server exited at start")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the Theazo server did not start")


@contextmanager
def theazo_server(
    database: str | None, concurrency: int = WORKERS, extra: Sequence[str] = ()
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """A `theazo serve` of the bench agents: its base URL, an API key, and the process."""
    from theazo.core import ids

    key = ids.new_api_key(live=False)
    workdir = Path(tempfile.mkdtemp(prefix="bench-theazo-"))
    port = free_port()
    url = database or f"sqlite:///{workdir / 'theazo.db'}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "theazo",
            "serve",
            "--port",
            str(port),
            "--database",
            url,
            "--agents",
            "bench.agents",
            "--api-key",
            key,
            "--concurrency",
            str(concurrency),
            "--max-running-per-session",
            str(concurrency),
            "--max-queued-per-session",
            "1000000",
            "--log-level",
            "warning",
            *extra,
        ],
        cwd=REPO,
        env=env(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        yield base, key, process
    finally:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
