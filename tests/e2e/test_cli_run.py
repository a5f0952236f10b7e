"""``theazo run``: one task in a real sandbox, no server, as a user runs it from the shell."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import theazo.agents.examples
from tests.support.sandboxes import host_pid
from tests.support.server import REPO
from tests.support.waiting import eventually, process_gone

COMMANDS = Path(theazo.agents.examples.__file__).parent / "commands"
COUNT_SH, AGENTS_FILE = COMMANDS / "count.sh", COMMANDS / "agents.toml"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
    env["COLUMNS"] = "200"
    return env


def theazo_run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "theazo", "run", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        input=stdin,
        timeout=60,
    )


def test_a_python_agent_prints_its_output_and_exits_0() -> None:
    done = theazo_run("echo", "--input", '{"text": "hi"}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"text": "hi"}
    assert re.search(r"echo as task_\w+ in a sandbox", done.stderr)
    assert "completed in" in done.stderr


def test_progress_charges_and_log_are_shown_as_they_come() -> None:
    done = theazo_run("count", "-i", '{"n": 2}', "--command-agent", f"count={COUNT_SH}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"counted": 2, "by": "bash"}
    lines = done.stderr.splitlines()
    # Each kind in order; how the log interleaves with the reports depends on the pipes.
    assert [line for line in lines if line.startswith(("stdout", "stderr"))] == [
        "stdout: counting 1 of 2",
        "stdout: counting 2 of 2",
        "stderr: done counting",
    ]
    assert [line for line in lines if line.startswith(("progress", "charge"))] == [
        "progress 50% counted 1",
        "charge 0.5 (one step), cost 0.5",
        "progress 100% counted 2",
        "charge 0.5 (one step), cost 1",
    ]
    assert lines[-1].startswith("theazo run: completed in ")
    assert lines[-1].endswith("cost 1 (usd minor units)")


def test_json_prints_the_whole_run() -> None:
    done = theazo_run(
        "reporter", "--agents", "tests.agents", "-i", '{"steps": 2, "charge": 3}', "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert result["taskId"].startswith("task_")
    assert result["output"]["task_id"] == result["taskId"]
    assert result["output"]["secret_seen"] is False
    assert [(r["progress"], r["message"]) for r in result["reports"]] == [
        (0.5, "step 1 of 2"),
        (1.0, "step 2 of 2"),
    ]
    assert [(c["amount"], c["cost"]) for c in result["charges"]] == [("3", "3"), ("3", "6")]
    assert result["cost"] == {"amount": 6, "currency": "usd"}
    assert result["error"] is None


def test_input_from_stdin() -> None:
    done = theazo_run("echo", "--input", "-", stdin='[1, 2, {"three": 3}]')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [1, 2, {"three": 3}]


def test_a_failing_agent_exits_1_with_its_error() -> None:
    done = theazo_run("count", "-i", '{"fail": "error"}', "--command-agent", f"count={COUNT_SH}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith(": count_refused: asked to refuse")

    raised = theazo_run("raiser", "--agents", "tests.agents", "--json")
    assert raised.returncode == 1
    result = json.loads(raised.stdout)
    assert result["status"] == "failed"
    assert result["error"] == {"code": "agent_error", "message": "the agent failed on purpose"}


def test_bad_input_json_is_one_line_and_exit_2() -> None:
    done = theazo_run("echo", "--input", "{not json")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "theazo run: --input is not JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    ]


def test_an_unknown_agent_is_one_line_and_exit_2() -> None:
    done = theazo_run("nobody")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("theazo run: no agent named 'nobody' is served here (agents: ")
    assert "echo" in line  # the agents there are


def test_an_input_that_does_not_fit_the_schema_is_refused_as_a_server_would() -> None:
    done = theazo_run("data_processor", "--input", '{"dataset": 5}')
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("theazo run: input['dataset'] does not fit agent 'data_processor': ")


def test_ctrl_c_cancels_the_run_and_kills_its_sandbox() -> None:
    command = ["run", "sleeper", "--agents", "tests.agents", "-i", '{"seconds": 60}', "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "theazo", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    assert process.stderr is not None
    try:
        started = process.stderr.readline()
        task_id = re.search(r"as (task_\w+) in a sandbox", started)
        assert task_id is not None, started
        assert process.stderr.readline().startswith("progress 0% pid=")  # it is running
        pid = eventually(lambda: host_pid(task_id.group(1)), what="the sandbox's process")
        process.send_signal(signal.SIGINT)
        out, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, rest
    result = json.loads(out)
    assert result["status"] == "cancelled"
    assert result["reports"][0]["message"].startswith("pid=")  # reported before the cancel
    assert process_gone(pid)


def test_an_agents_files_agents_run_with_their_schema() -> None:
    declared = str(AGENTS_FILE)
    done = theazo_run("count_node", "-i", '{"n": 1}', "--agents-file", declared)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"counted": 1, "by": "node"}
    refused = theazo_run("count_node", "-i", '{"n": 1, "m": 2}', "--agents-file", declared)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "theazo run: input does not fit agent 'count_node': Additional properties are not "
        "allowed ('m' was unexpected)"
    ]


def test_a_bad_agents_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "agents.toml"
    bad.write_text('[agents.x]\ncommand = "count.sh"\ninput_schema = { type = 5 }\n')
    for command in (["serve", "--port", "0"], ["run", "x"]):
        done = subprocess.run(
            [sys.executable, "-m", "theazo", *command, "--agents-file", str(bad)],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=REPO,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"theazo: {bad}: [agents.x]: '{tmp_path}/count.sh' (for the agent 'x') is not a file"
        ]
    (tmp_path / "count.sh").symlink_to(COUNT_SH)
    done = subprocess.run(
        [sys.executable, "-m", "theazo", "serve", "--port", "0", "--agents-file", str(bad)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"theazo: {bad}: [agents.x]: the input schema is not a valid JSON")
