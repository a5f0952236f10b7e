"""Start and stop real Theazo nodes for tests, the way a user does: ``theazo serve`` (an API
server with workers, or with ``--no-workers`` an API node) and ``theazo worker``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support import unprivileged
from theazo.core import ids

REPO = Path(__file__).resolve().parents[2]
TEST_AGENTS = "theazo.agents.examples,tests.agents"
TEST_PRELOAD = "ssl,certifi,httpx,requests"
START_TIMEOUT_SECONDS = 60.0  # 1-2 s alone; 20-30 s on 2 cores shared by test runs
WORKER_READY = b"is running tasks"


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
    kind: str = "serve"  # or "worker"
    env: dict[str, str] = field(default_factory=dict)  # added to the node's environment
    unprivileged: bool = False  # run as nobody (the test must be root: support/unprivileged.py)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.kind}-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        return self.api_keys[0]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @classmethod
    @contextmanager
    def start(
        cls,
        workdir: Path,
        *,
        api_keys: Sequence[str] = (),
        args: Sequence[str] = (),
        database: str | None = None,
        kind: str = "serve",
        unprivileged: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Iterator[ServerProcess]:
        server = cls(
            workdir=workdir,
            port=free_port(),
            api_keys=list(api_keys) or [new_api_key()],
            args=list(args),
            database=database or f"sqlite:///{workdir / 'theazo.db'}",
            kind=kind,
            unprivileged=unprivileged,
            env=dict(env or {}),
        )
        server.launch()
        try:
            yield server
        finally:
            server.stop()

    def command(self) -> list[str]:
        command = [
            sys.executable, "-m", "theazo", self.kind,
            "--database", self.database,
            "--agents", TEST_AGENTS,
            "--sandbox-root", str(self.workdir / "sandboxes"),
            "--shutdown-grace", "2s",
            "--log-level", "warning",
            # Not the model providers' SDKs: no test agent imports them in its function, and
            # the frameworks the test extra installs bring openai, a second per zygote's start.
            "--sandbox-preload", TEST_PRELOAD,
        ]  # fmt: skip
        if self.kind == "serve":
            command += ["--port", str(self.port)]
            for key in self.api_keys:
                command += ["--api-key", key]
        return command + self.args

    def launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")} | self.env
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        (self.workdir / "sandboxes").mkdir(exist_ok=True)
        command = self.command()
        if self.unprivileged:
            unprivileged.give(self.workdir)
            unprivileged.give(self.workdir / "sandboxes")
            command = unprivileged.wrap(command)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"theazo {self.kind} exited at start:\n{self.log()}")
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()  # not left behind: a caller that gets no server has nothing to stop
        raise RuntimeError(f"theazo {self.kind} did not start in time:\n{self.log()}")

    def _ready(self) -> bool:
        if self.kind == "worker":
            return WORKER_READY in self.log_path.read_bytes()[self._log_offset :]
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

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
        """Crash the node as a power cut would (its zygote follows when its pipe closes)."""
        self.stop(signal.SIGKILL)
