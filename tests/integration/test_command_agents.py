"""Command agents: executables in Bash and Node served with ``--command-agent``, run in the
sandbox end to end through the SDK (docs/agents.md, "Agents in any language")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import theazo.agents.examples
from tests.conftest import StartServer
from tests.support.server import ServerProcess
from tests.support.waiting import eventually, process_gone
from theazo import Theazo
from theazo.sdk import ProgressEvent, Session

COMMANDS = Path(theazo.agents.examples.__file__).parent / "commands"
AGENTS = {"count_bash": COMMANDS / "count.sh", "count_node": COMMANDS / "count.mjs"}
SUPPORT = Path(__file__).parents[1] / "support" / "commands"
SILENT, GARBAGE = SUPPORT / "silent.sh", SUPPORT / "garbage.sh"
BOTH = pytest.mark.parametrize("agent", sorted(AGENTS))


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    agents = AGENTS | {"silent": SILENT, "garbage": GARBAGE}
    declared = [
        arg for name, path in agents.items() for arg in ("--command-agent", f"{name}={path}")
    ]
    # No compute price: the cost is exactly what the agents charge.
    with start_server(*declared, "--compute-price", "0") as process:
        yield process


@BOTH
def test_a_command_agent_reports_progress_log_charges_and_output(
    session: Session, agent: str
) -> None:
    task = session.tasks.submit(agent, {"n": 4})
    seen = list(session.tasks.stream(task.task_id, timeout="30s"))
    done = session.tasks.get(task.task_id)

    assert done.status == "completed", done.error
    assert done.output == {"counted": 4, "by": agent.removeprefix("count_")}
    assert done.cost.amount == 2  # four charges of half a cent
    reports = [(e.progress, e.message) for e in seen if isinstance(e, ProgressEvent)]
    assert reports == [(i / 4, f"counted {i}") for i in range(1, 5)]
    assert (done.progress, done.message) == (1.0, "counted 4")
    lines = [(line.stream, line.text) for line in session.tasks.logs(task.task_id)]
    assert lines == [("stdout", f"counting {i} of 4") for i in range(1, 5)] + [
        ("stderr", "done counting")
    ]


def test_command_agents_are_listed_taking_any_input(theazo: Theazo) -> None:
    listed = {a.name: a for a in theazo.agents.list()}
    assert listed["count_bash"].description == "Runs count.sh."
    assert listed["count_node"].input_schema == {}


@BOTH
def test_an_error_line_fails_the_task_with_its_code(session: Session, agent: str) -> None:
    task = session.tasks.submit(agent, {"fail": "error"})
    done = session.tasks.wait(task.task_id, timeout="30s")
    assert done.status == "failed"
    assert done.error is not None
    assert (done.error.code, done.error.message) == ("count_refused", "asked to refuse")


@BOTH
def test_a_nonzero_exit_fails_the_task(session: Session, agent: str) -> None:
    task = session.tasks.submit(agent, {"fail": "exit", "n": 2})
    done = session.tasks.wait(task.task_id, timeout="30s")
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.code == "agent_error"
    assert done.error.message == "the command exited with status 3"
    assert done.cost.amount == 1  # its charges before the exit still count


def test_an_exit_without_an_output_line_fails_clearly(session: Session) -> None:
    task = session.tasks.submit("silent", None)
    done = session.tasks.wait(task.task_id, timeout="30s")
    assert done.status == "failed"
    assert done.error is not None
    assert "without writing an" in done.error.message


def test_a_line_that_is_not_json_fails_the_task_and_ends_the_command(session: Session) -> None:
    task = session.tasks.submit("garbage", None)
    done = session.tasks.wait(task.task_id, timeout="30s")  # not the script's minute of sleep
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.code == "agent_error"
    assert done.error.message.startswith("line 1 on descriptor 3 is not JSON")


@BOTH
def test_cancel_kills_the_command(session: Session, agent: str) -> None:
    task = session.tasks.submit(agent, {"sleep": 60})
    eventually(lambda: session.tasks.get(task.task_id).message == "sleeping", what="sleeping")
    command = eventually(lambda: _command_processes(task.task_id), what="the command's process")

    assert session.tasks.cancel(task.task_id).status == "cancelled"

    eventually(lambda: all(process_gone(pid) for pid in command), timeout=5, what="its end")


def _command_processes(task_id: str) -> list[int]:
    """The host pids of the processes started with the task's id in their environment: the
    command and what it started (the shim itself was not)."""
    marker = f"THEAZO_TASK_ID={task_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
