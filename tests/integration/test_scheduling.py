"""Order of starts: priority first, then submission order; session limits don't block others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import StartServer
from tests.support.server import ServerProcess
from tests.support.waiting import eventually
from theazo import Theazo
from theazo.sdk import Session


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--concurrency", "1", "--max-running-per-session", "1") as process:
        yield process


def _hold_the_only_slot(session: Session) -> str:
    blocker = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    eventually(lambda: session.tasks.get(blocker.task_id).status == "running", what="blocker")
    return blocker.task_id


def _start_order(session: Session, task_ids: list[str]) -> list[str]:
    done = [session.tasks.wait(task_id, timeout="20s") for task_id in task_ids]
    assert all(t.status == "completed" for t in done), [t.error for t in done]
    return [t.task_id for t in sorted(done, key=lambda t: t.started_at)]


def test_high_before_normal_before_low_then_submission_order(session: Session) -> None:
    blocker = _hold_the_only_slot(session)
    low = session.tasks.submit(agent="echo", input="low", priority="low").task_id
    normal_1 = session.tasks.submit(agent="echo", input="n1").task_id
    high = session.tasks.submit(agent="echo", input="high", priority="high").task_id
    normal_2 = session.tasks.submit(agent="echo", input="n2", priority="normal").task_id

    session.tasks.cancel(blocker)

    assert _start_order(session, [low, normal_1, high, normal_2]) == [high, normal_1, normal_2, low]


def test_queue_position_counts_the_tasks_that_start_first(session: Session) -> None:
    blocker = _hold_the_only_slot(session)
    queued = [session.tasks.submit(agent="echo", input=i) for i in range(3)]

    assert [t.queue_position for t in queued] == [0, 1, 2]
    assert session.tasks.get(queued[2].task_id).queue_position == 2
    session.tasks.cancel(queued[0].task_id)
    assert session.tasks.get(queued[2].task_id).queue_position == 1
    session.tasks.cancel(blocker)
    assert session.tasks.wait(queued[2].task_id, timeout="20s").queue_position is None


@pytest.fixture(scope="module")
def two_slot_server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--concurrency", "2", "--max-running-per-session", "1") as process:
        yield process


def test_a_session_at_its_limit_does_not_hold_back_another(
    two_slot_server: ServerProcess, api_key: str
) -> None:
    with Theazo(api_key=api_key, base_url=two_slot_server.base_url) as theazo:
        busy = theazo.sessions.for_user("limit-busy")
        other = theazo.sessions.for_user("limit-other")
        first = busy.tasks.submit(agent="sleeper", input={"seconds": 30})
        second = busy.tasks.submit(agent="sleeper", input={"seconds": 30})
        eventually(lambda: busy.tasks.get(first.task_id).status == "running", what="first")

        quick = other.tasks.submit(agent="echo", input="other")

        assert other.tasks.wait(quick.task_id, timeout="20s").status == "completed"
        assert busy.tasks.get(second.task_id).status == "queued"
        for task in (first, second):
            busy.tasks.cancel(task.task_id)
