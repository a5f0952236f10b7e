"""Cancel: a queued task never starts; a running one's processes die and its workspace goes,
and the call returns only once ``cancelled`` is recorded, billed to that moment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.support.sandboxes import host_pid
from tests.support.server import ServerProcess
from tests.support.waiting import eventually, parse_report, process_gone
from theazo import ConflictError, Theazo
from theazo.sdk import Session

PRICE_PER_SECOND = 100  # cents: makes a fraction of a second visible in the cost


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--concurrency", "2", "--compute-price", str(PRICE_PER_SECOND)) as process:
        yield process


def _running_report(session: Session, task_id: str) -> dict[str, str]:
    task = eventually(
        lambda: (t := session.tasks.get(task_id)).message and t, what="the agent's report"
    )
    assert task.status == "running"
    return parse_report(task.message or "")


def test_cancel_running_kills_every_process_of_the_sandbox(session: Session) -> None:
    task = session.tasks.submit(agent="forker", input=None)
    _running_report(session, task.task_id)
    pid = eventually(lambda: host_pid(task.task_id), what="the agent's process")
    grandchild = eventually(lambda: host_pid(task.task_id, "g"), what="its child")

    cancelled = session.tasks.cancel(task.task_id)

    assert cancelled.status == "cancelled"
    assert cancelled.completed_at is not None
    assert session.tasks.get(task.task_id).status == "cancelled"
    eventually(lambda: process_gone(pid) and process_gone(grandchild), timeout=5, what="kill")


def test_cancel_running_removes_the_workspace(server: ServerProcess, session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    report = _running_report(session, task.task_id)
    pid = eventually(lambda: host_pid(task.task_id), what="the agent's process")
    # The workspace lives in the sandbox's own mount namespace; from the host only root can
    # look in, through the process.
    marker = Path(f"/proc/{pid}/root") / report["workdir"].lstrip("/") / "marker"
    if os.geteuid() == 0:
        assert marker.read_text() == "here"

    session.tasks.cancel(task.task_id)

    eventually(lambda: process_gone(pid), timeout=5, what="kill")
    assert not marker.exists()
    # Nothing of a workspace is ever on the host: only the zygotes' (empty) template folders.
    assert not list((server.workdir / "sandboxes").glob("**/sandbox-*"))


def test_cancel_running_bills_compute_up_to_the_cancel(session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    _running_report(session, task.task_id)

    cancelled = session.tasks.cancel(task.task_id)
    assert cancelled.started_at is not None and cancelled.completed_at is not None
    seconds = (cancelled.completed_at - cancelled.started_at).total_seconds()
    assert cancelled.cost.amount == pytest.approx(seconds * PRICE_PER_SECOND, abs=1)
    assert cancelled.cost.amount > 0
    # Billed once: the cost does not grow after the cancel.
    assert session.tasks.get(task.task_id).cost.amount == cancelled.cost.amount


def test_cancel_queued_task_never_starts(session: Session) -> None:
    blockers = [session.tasks.submit(agent="sleeper", input={"seconds": 30}) for _ in range(2)]
    queued = session.tasks.submit(agent="echo", input="never")
    assert session.tasks.get(queued.task_id).status == "queued"

    cancelled = session.tasks.cancel(queued.task_id)
    for blocker in blockers:
        session.tasks.cancel(blocker.task_id)

    assert cancelled.status == "cancelled"
    assert cancelled.started_at is None
    assert cancelled.cost.amount == 0
    later = session.tasks.wait(queued.task_id, timeout="1s")
    assert later.status == "cancelled" and later.started_at is None and later.output is None


def test_cancel_twice_returns_the_task_unchanged(session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    first = session.tasks.cancel(task.task_id)
    second = session.tasks.cancel(task.task_id)
    assert second.status == "cancelled"
    assert second.completed_at == first.completed_at
    assert second.cost == first.cost


def test_cancel_completed_or_failed_task_is_409(session: Session) -> None:
    for agent in ("echo", "raiser"):
        done = session.run(agent=agent, input=None)
        with pytest.raises(ConflictError) as caught:
            session.tasks.cancel(done.task_id)
        assert caught.value.status == 409
        assert session.tasks.get(done.task_id).status == done.status


def test_cancel_async_agent(session: Session) -> None:
    task = session.tasks.submit(agent="async_sleeper", input={"seconds": 30})
    _running_report(session, task.task_id)
    pid = eventually(lambda: host_pid(task.task_id), what="the agent's process")
    session.tasks.cancel(task.task_id)
    eventually(lambda: process_gone(pid), timeout=5, what="async sandbox killed")


def test_other_tasks_run_on_after_a_cancel(theazo: Theazo, session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    _running_report(session, task.task_id)
    session.tasks.cancel(task.task_id)
    assert session.run(agent="echo", input="after").output == "after"
