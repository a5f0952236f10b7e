"""Start and stop real Theazo servers for tests, the way a user does: ``theazo serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from theazo.core import ids

REPO = Path(__file__).resolve().parents[2]
TEST_AGENTS = "theazo.agents.examples,tests.agents"
START_TIMEOUT_SECONDS = 30.0


def new_api_key() -> str:
    return ids.new_api_key(live=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    workdir: Path
    port: int
    api_keys: list[str]
    args: list[str]
    database: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"server-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return self.api_keys[0]

    @classmethod
    @contextmanager
    def start(
        cls,
        workdir: Path,
        *,
        api_keys: Sequence[str] = (),
        args: Sequence[str] = (),
        database: str | None = None,
    ) -> Iterator[ServerProcess]:
        server = cls(
            workdir=workdir,
            port=free_port(),
            api_keys=list(api_keys) or [new_api_key()],
            args=list(args),
            database=database or f"sqlite:///{workdir / 'theazo.db'}",
        )
        server.launch()
        try:
            yield server
        finally:
            server.stop()

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "theazo",
            "serve",
            "--port",
            str(self.port),
            "--database",
            self.database,
            "--agents",
            TEST_AGENTS,
            "--sandbox-root",
            str(self.workdir / "sandboxes"),
            "--shutdown-grace",
            "2s",
            "--log-level",
            "warning",
        ]
        for key in self.api_keys:
            command += ["--api-key", key]
        return command + self.args

    def launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        (self.workdir / "sandboxes").mkdir(exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_until_healthy()

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start in time:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """Crash the server as a power cut would (its zygote follows when its pipe closes)."""
        self.stop(signal.SIGKILL)

    def restart(self, *, port: int | None = None) -> None:
        self.stop()
        self.port = port or self.port
        self.launch()
