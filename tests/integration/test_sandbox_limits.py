"""Limits that hold for all of a sandbox's processes together, where it has a cgroup."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.server import ServerProcess
from theazo.sdk import Session

CPU_LIMIT_SECONDS = 2


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--cpu-limit", f"{CPU_LIMIT_SECONDS}s") as process:
        if httpx.get(f"{process.base_url}/healthz").json()["sandbox"]["cgroup"] is None:
            pytest.skip("no cgroup per sandbox here: the CPU limit holds per process only")
        yield process


def test_cpu_time_is_counted_over_every_process(session: Session) -> None:
    # Four processes of 1.5 s each: every one under the limit, together three times it.
    crowd = {"processes": 4, "seconds": CPU_LIMIT_SECONDS * 0.75}
    task = session.run(agent="cpu_crowd", input=crowd, wait_timeout="60s")
    assert task.status == "failed"
    assert task.error is not None and task.error.code == "cpu_limit_exceeded"


def test_under_the_limit_together_is_fine(session: Session) -> None:
    task = session.run(agent="cpu_crowd", input={"processes": 2, "seconds": 0.5})
    assert task.status == "completed" and task.output == "done"
