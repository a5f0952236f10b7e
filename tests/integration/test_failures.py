"""Each way an agent can fail ends its task with its own error code, and harms nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import StartServer
from tests.support.server import ServerProcess
from theazo.sdk import Session


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--memory-limit", "300M", "--cpu-limit", "1") as process:
        yield process


@pytest.mark.parametrize(
    ("agent", "code", "words"),
    [
        ("raiser", "agent_error", "failed on purpose"),
        ("bad_output", "invalid_output", "not JSON"),
        ("big_output", "output_too_large", "limit"),
        ("exiter", "sandbox_crashed", "status 3"),
        ("segfault", "sandbox_crashed", "SIGSEGV"),
        ("memory_hog", "memory_limit_exceeded", "memory"),
        ("cpu_burner", "cpu_limit_exceeded", "CPU"),
    ],
)
def test_failure_mode_has_its_own_code(session: Session, agent: str, code: str, words: str) -> None:
    task = session.run(agent=agent, input={}, wait_timeout="30s")

    assert task.status == "failed"
    assert task.error is not None
    assert task.error.code == code
    assert words in task.error.message
    assert task.completed_at is not None
    assert task.output is None


def test_wall_clock_timeout(session: Session) -> None:
    task = session.run(agent="sleeper", input={"seconds": 30}, timeout="500ms")
    assert task.status == "failed"
    assert task.error is not None and task.error.code == "timeout"
    assert task.started_at and task.completed_at
    assert (task.completed_at - task.started_at).total_seconds() < 5


def test_the_server_and_other_tasks_are_unaffected(session: Session) -> None:
    crashing = [session.tasks.submit(agent=a, input={}) for a in ("segfault", "exiter", "raiser")]
    healthy = [session.tasks.submit(agent="echo", input=i) for i in range(5)]
    for task in crashing:
        assert session.tasks.wait(task.task_id, timeout="20s").status == "failed"
    assert [session.tasks.wait(t.task_id, timeout="20s").output for t in healthy] == list(range(5))


def test_sandbox_sees_none_of_the_servers_secrets(session: Session, server: ServerProcess) -> None:
    task = session.run(agent="reporter", input={"steps": 1})
    assert task.status == "completed", task.error
    assert task.output["secret_seen"] is False
    assert not [name for name in task.output["env"] if name.startswith("THEAZO")]
    # What the zygote sets once for every spare: the egress proxy (the default network).
    assert {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} <= set(task.output["env"])
    assert task.output["user_id"] == session.user_id
    assert task.output["session_id"] == session.session_id


@pytest.mark.parametrize(
    ("agent", "input", "words"),
    [
        ("unstorable_output", {"kind": "deep"}, "nested more than 64 deep"),
        ("unstorable_output", {"kind": "nul"}, "NUL"),
        ("forged_output", {}, "nan is not a JSON number"),
    ],
)
def test_an_output_no_backend_can_store_is_invalid_output(
    session: Session, agent: str, input: dict[str, str], words: str
) -> None:
    task = session.run(agent=agent, input=input, wait_timeout="30s")

    assert task.status == "failed"
    assert task.error is not None
    assert task.error.code == "invalid_output"
    assert words in task.error.message
    assert session.tasks.get(task.task_id).error == task.error  # stored, and read back


def test_nul_in_an_agents_texts_is_shown_not_fatal(session: Session) -> None:
    task = session.run(agent="nul_texts", input={}, wait_timeout="30s")

    assert task.status == "failed"
    assert task.error is not None
    assert task.error.code == "agent_error"
    assert "broke\ufffdhere" in task.error.message
    assert task.message in (None, "half\ufffdway")
    assert len(session.tasks.list().data) >= 1  # the session's tasks still read back
