"""The README's quick start, as a new user follows it: `theazo serve` in an empty directory
prints a key once, serves the example agents on SQLite, and the README's Python works."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile
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
        "scripts/install-test-needs && python -m pytest",
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
        assert f"Dashboard: {base}/dashboard/" in log.read_text()
        page = httpx.get(f"{base}/dashboard/", timeout=5)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for asset in re.findall(r'(?:href|src)="(/dashboard/static/[^"]+)"', page.text):
            assert httpx.get(f"{base}{asset}", timeout=5).status_code == 200, asset

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


def test_the_wheel_ships_the_dashboard(tmp_path: Path) -> None:
    """``pip install .`` (not only ``-e``) has the dashboard's page and every asset."""
    from hatchling.builders.wheel import WheelBuilder

    wheel = next(WheelBuilder(str(REPO)).build(directory=str(tmp_path), versions=["standard"]))
    with zipfile.ZipFile(wheel) as built:
        shipped = set(built.namelist())
    static = REPO / "src" / "theazo" / "dashboard" / "static"
    wanted = {f"theazo/dashboard/static/{f.name}" for f in static.iterdir() if f.is_file()}
    assert "theazo/dashboard/static/index.html" in wanted
    assert wanted <= shipped, wanted - shipped


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
