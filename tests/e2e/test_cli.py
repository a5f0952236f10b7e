"""The ``theazo`` command as a user runs it, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import REPO, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, api_key: str) -> Iterator[ServerProcess]:
    with ServerProcess.start(tmp_path_factory.mktemp("cli"), api_keys=[api_key]) as process:
        yield process


def theazo(
    server: ServerProcess | None, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
    if server is not None:
        env["THEAZO_BASE_URL"] = server.base_url
        env["THEAZO_API_KEY"] = key or server.api_key
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "theazo", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


def test_submit_wait_prints_the_finished_task(server: ServerProcess) -> None:
    done = theazo(
        server,
        "submit",
        "data_processor",
        "--input",
        '{"dataset": "customers_q2.csv"}',
        "--wait",
        "--json",
        "--user",
        "cli-e2e",
    )
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["status"] == "completed"
    assert task["output"]["rows"] == 200
    assert task["message"] == "Processed 200 rows"


def test_submit_then_get_list_wait_and_cancel(server: ServerProcess) -> None:
    submitted = theazo(
        server, "submit", "sleeper", "--input", '{"seconds": 30}', "--user", "cli-flow"
    )
    assert submitted.returncode == 0, submitted.stderr
    task_id, status = submitted.stdout.split()
    assert task_id.startswith("task_") and status == "queued"

    listed = theazo(server, "tasks", "list", "--user", "cli-flow", "--json")
    assert [t["taskId"] for t in json.loads(listed.stdout)["data"]] == [task_id]

    cancelled = theazo(server, "tasks", "cancel", task_id, "--user", "cli-flow")
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout

    got = theazo(server, "tasks", "get", task_id, "--user", "cli-flow")
    assert "cancelled" in got.stdout

    waited = theazo(server, "tasks", "wait", task_id, "--user", "cli-flow", "--json")
    assert json.loads(waited.stdout)["status"] == "cancelled"


def test_a_failed_task_exits_nonzero_with_its_error(server: ServerProcess) -> None:
    done = theazo(server, "submit", "raiser", "--wait", "--user", "cli-fail")
    assert done.returncode == 1
    assert "agent_error" in done.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["submit", "no_such_agent"], "422 unknown_agent"),
        (["submit", "echo", "--input", "{not json"], "not JSON"),
        (["submit", "echo", "--input", "NaN"], "not JSON"),
        (["submit", "echo", "--input", "1e400"], "not JSON"),
        (["submit", "echo", "--input", '"\\ud800"'], "lone surrogate"),
        (["submit", "echo", "--input", "[" * 100 + "]" * 100], "nested"),
        (["submit", "echo", "--priority", "urgent"], "urgent"),
        (["tasks", "get", "task_nope"], "404"),
    ],
)
def test_user_mistakes_are_one_clear_line(
    server: ServerProcess, args: list[str], words: str
) -> None:
    done = theazo(server, *args)
    assert done.returncode != 0
    assert words in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_bad_key_and_an_unreachable_server_are_one_line(server: ServerProcess) -> None:
    bad = theazo(server, "agents", key="th_live_" + "x" * 43)
    assert bad.returncode == 1 and "401 unauthorized" in bad.stderr
    env_less = theazo(None, "agents")
    assert env_less.returncode == 1 and "API key" in env_less.stderr
    assert "Traceback" not in bad.stderr + env_less.stderr


def test_keys_create_prints_a_new_working_key(server: ServerProcess) -> None:
    made = theazo(None, "keys", "create", "--database", server.database)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("th_live_") and len(key) >= 8 + 32
    listed = theazo(server, "agents", "--json", key=key)
    assert listed.returncode == 0
    assert "researcher" in {a["name"] for a in json.loads(listed.stdout)}


def test_serve_explains_a_port_in_use(server: ServerProcess, tmp_path: os.PathLike[str]) -> None:
    done = theazo(
        None, "serve", "--port", str(server.port), "--database", f"sqlite:///{tmp_path}/x.db"
    )
    assert done.returncode == 1
    assert "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_explains_an_agent_module_that_does_not_load(tmp_path: os.PathLike[str]) -> None:
    done = theazo(
        None,
        "serve",
        "--port",
        "0",
        "--agents",
        "no_such_module_here",
        "--database",
        f"sqlite:///{tmp_path}/x.db",
    )
    assert done.returncode == 1
    assert "No module named 'no_such_module_here'" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_bad_command_agent_in_one_line(tmp_path: Path) -> None:
    done = theazo(None, "serve", "--command-agent", f"x={tmp_path / 'missing'}")
    assert done.returncode == 2
    assert "--command-agent" in done.stderr and "is not a file" in done.stderr


def test_serve_refuses_a_bad_task_retention_in_one_line() -> None:
    done = theazo(None, "serve", "--task-retention", "a month")
    assert done.returncode == 2
    assert "--task-retention" in done.stderr and "'30d'" in done.stderr


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("serve", ["--database", "theazo.db"], "is not a database URL"),
        ("worker", ["--database", "mysql://db/x"], "is not a database URL"),
        ("serve", ["--api-key", "th_live_tooshort"], "at least 32 more"),
        ("serve", ["--api-key", "sk-not-ours-" + "x" * 40], "th_live_ or th_test_"),
    ],
)
def test_a_bad_database_url_or_api_key_is_refused_before_anything_starts(
    command: str, args: list[str], message: str
) -> None:
    done = theazo(None, command, *args)
    assert done.returncode == 2, done.stderr
    assert args[0] in done.stderr and message in done.stderr
    assert "Traceback" not in done.stderr
    assert "tooshort" not in done.stderr  # a key is a secret, even a wrong one


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm-provider", "nonsense"], "is not NAME=KIND,BASE_URL,KEY_ENV"),
        (["--llm-provider", "x=grpc,http://h,PATH"], "is not a provider kind"),
        (["--llm-provider", "x=openai,ftp://h,PATH"], "is not an http(s) base URL"),
        (["--llm-provider", "x=openai,http://h,THEAZO_NO_SUCH_KEY"], "is not set in the server"),
        (["--llm-provider", "x=openai,http://h,PATH", "--sandbox-env", "PATH"], "--sandbox-env"),
        (["--llm-provider", "x=openai,http://h,PATH", "--sandbox-network", "none"], "egress"),
        (["--llm-provider", "x=openai,http://h,PATH", "--llm-prices", "/nope"], "cannot read"),
        (["--llm-provider", "x=openai,http://h,PATH", "--llm-task-spend-cap", "x"], "amount"),
    ],
)
def test_bad_model_gateway_options_are_one_line_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = theazo(None, "serve", "--database", f"sqlite:///{tmp_path / 'x.db'}", *args)
    assert done.returncode == 2, done.stderr
    assert "--llm-" in done.stderr and message in done.stderr


def test_a_worker_node_takes_the_model_gateways_options_too() -> None:
    database = "postgresql://postgres@127.0.0.1:1/none"  # refused before any connection
    done = theazo(None, "worker", "--database", database, "--llm-provider", "x=grpc,http://h,PATH")
    assert done.returncode == 2
    assert "--llm-provider" in done.stderr and "is not a provider kind" in done.stderr


def test_the_providers_may_come_from_one_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
    env["COLUMNS"] = "200"
    env["THEAZO_LLM_PROVIDER"] = "a=openai,http://h/v1,PATH b=grpc,http://h,PATH"
    done = subprocess.run(
        [sys.executable, "-m", "theazo", "serve", "--database", f"sqlite:///{tmp_path / 'x.db'}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert "'grpc' is not a provider kind" in done.stderr  # the second of the two was read
