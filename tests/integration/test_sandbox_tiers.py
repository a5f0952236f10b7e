"""Isolation tiers: what the host gives is found and reported, and a server refuses to start
below ``--sandbox-isolation`` with what is missing and how to get it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import unprivileged
from tests.support.server import REPO, TEST_AGENTS, ServerProcess, free_port, new_api_key

# Runs a command where no user namespace can be made: in one of its own whose limit of
# further namespaces is 0, which any user may set up.
WITHOUT_USER_NAMESPACES = [
    "unshare", "--user", "--map-root-user",
    "sh", "-c", 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh",
]  # fmt: skip


def serve_command(workdir: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "theazo", "serve",
        "--database", f"sqlite:///{workdir / 'theazo.db'}",
        "--port", str(free_port()),
        "--agents", TEST_AGENTS,
        "--sandbox-root", str(workdir / "sandboxes"),
        "--api-key", new_api_key(),
        *args,
    ]  # fmt: skip


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO, env=env())


def env() -> dict[str, str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
    return variables | {"PYTHONPATH": str(REPO)}


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join(result.stderr.split())


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's 0700 base directory, so that a server run as nobody can use it."""
    path = Path(tempfile.mkdtemp(prefix="theazo-tiers-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_tier_in_force_is_reported(tmp_path_factory: pytest.TempPathFactory) -> None:
    with ServerProcess.start(tmp_path_factory.mktemp("tiers")) as server:
        health = httpx.get(f"{server.base_url}/healthz").json()["sandbox"]
        started = server.log()
    assert health["tier"] in ("landlock", "cgroup")  # what the development machines give
    assert health["network"] == "egress"
    assert health["landlockAbi"] > 0
    assert f"Sandbox isolation: {health['tier']} (network egress" in started


def test_a_host_without_namespaces_is_refused_by_default(workdir: Path) -> None:
    refused = run([*WITHOUT_USER_NAMESPACES, *serve_command(workdir)])
    assert refused.returncode == 1
    message = one_line(refused)
    assert "isolated at tier 'process', below the 'namespaces'" in message
    assert "user namespaces" in message and "--sandbox-isolation process" in message
    assert "Traceback" not in refused.stderr


def test_egress_needs_namespaces_even_when_the_tier_is_accepted(workdir: Path) -> None:
    command = serve_command(workdir, "--sandbox-isolation", "process")
    refused = run([*WITHOUT_USER_NAMESPACES, *command])
    assert refused.returncode == 1
    assert "--sandbox-network egress needs network namespaces" in one_line(refused)


def test_a_deployment_may_accept_the_process_tier(workdir: Path) -> None:
    args = ["--sandbox-isolation", "process", "--sandbox-network", "host"]
    command = [*WITHOUT_USER_NAMESPACES, *serve_command(workdir, *args)]
    with subprocess.Popen(
        command, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as node:
        assert node.stdout is not None
        seen = ""
        for line in node.stdout:
            seen += line
            if "is serving on" in line:
                break
        node.terminate()
        node.wait(20)
    assert "Sandbox isolation: process (network host, no namespaces:" in seen


def test_a_demanded_tier_the_host_lacks_is_refused(workdir: Path) -> None:
    """An unprivileged user gets no cgroup per sandbox on these machines."""
    command = serve_command(workdir, "--sandbox-isolation", "cgroup")
    if os.geteuid() == 0:
        if reason := unprivileged.unavailable():
            pytest.skip(reason)
        unprivileged.give(workdir)
        command = unprivileged.wrap(command)
    refused = run(command)
    assert refused.returncode == 1
    message = one_line(refused)
    assert "below the 'cgroup' that --sandbox-isolation asks for" in message
    assert "a delegated cgroup" in message
