"""The README's quick start, as a new user follows it: `theazo serve` in an empty directory
prints a key once, serves the example agents on SQLite, and the README's Python works."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.server import REPO, free_port
from tests.support.waiting import eventually

README = (REPO / "README.md").read_text()


def test_the_readme_has_exactly_two_quick_start_commands() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quick_start, re.DOTALL)
    assert commands == [
        "pip install . && theazo serve",
        "pip install -e '.[test]' && python -m pytest",
    ]
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_theazo_serve_in_an_empty_directory(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
    env["THEAZO_PORT"] = str(port)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "theazo", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        key = eventually(
            lambda: (m := re.search(r"THEAZO_API_KEY=(th_live_\S+)", log.read_text())) and m[1],
            timeout=30,
            what="the first key printed",
        )
        base = f"http://127.0.0.1:{port}"
        eventually(lambda: _healthy(base), timeout=30, what="healthz")
        assert (tmp_path / "theazo.db").exists()

        from theazo import Theazo

        with Theazo(api_key=key, base_url=base) as theazo:
            session = theazo.sessions.for_user("user_123")
            task = session.tasks.submit(
                agent="researcher",
                input={"query": "analyze competitor pricing for Q2 2025"},
                priority="high",
            )
            result = session.tasks.wait(task.task_id, timeout="5m")
            assert result.status == "completed", result.error
            data = session.run(agent="data_processor", input={"dataset": "customers_q2.csv"})
            assert data.output["rows"] == 200
            assert data.message == "Processed 200 rows"
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 0, log.read_text()

    # A second start reuses the database and prints no new key.
    with open(log, "wb") as out:
        again = subprocess.Popen(
            [sys.executable, "-m", "theazo", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        eventually(lambda: _healthy(f"http://127.0.0.1:{port}"), timeout=30)
        assert "THEAZO_API_KEY=" not in log.read_text()
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(30)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
