"""``theazo tasks logs`` and the agent's lines under ``--wait``, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.test_cli import theazo
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, api_key: str) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("cli-logs"), api_keys=[api_key]) as process:
        yield process


def test_logs_follow_prints_each_line_on_its_stream_until_the_end(server: ServerProcess) -> None:
    submitted = theazo(
        server, "submit", "ticker", "--input", '{"steps": 3, "every": 0.2, "stderr": true}',
        "--user", "cli-logs",
    )  # fmt: skip
    task_id = submitted.stdout.split()[0]
    followed = theazo(server, "tasks", "logs", task_id, "--follow", "--user", "cli-logs")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == ["tick 1", "tick 2", "tick 3"]
    assert followed.stderr.splitlines() == ["warn 1", "warn 2", "warn 3"]

    as_json = theazo(server, "tasks", "logs", task_id, "--json", "--user", "cli-logs")
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["text"] for r in records if r["stream"] == "stdout"] == ["tick 1", "tick 2", "tick 3"]
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)


def test_submit_wait_shows_the_agent_lines(server: ServerProcess) -> None:
    done = theazo(
        server, "submit", "ticker", "--input", '{"steps": 2, "every": 0}', "--wait",
        "--user", "cli-logs",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "tick 1" in done.stderr and "tick 2" in done.stderr
    assert "completed" in done.stdout
