"""Multi-tenant scheduling: sessions take turns, budgets stop spending, limits say so."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.server import ServerProcess
from tests.support.waiting import eventually
from theazo import BudgetExhaustedError, RateLimitError, Theazo
from theazo.sdk import Session

PRICE_PER_SECOND = 100


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--concurrency", "1", "--compute-price", str(PRICE_PER_SECOND)) as process:
        yield process


@pytest.fixture(scope="module")
def fifo_server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--concurrency", "1", "--scheduling", "fifo") as process:
        yield process


def _block(session: Session) -> str:
    blocker = session.tasks.submit(agent="sleeper", input={"seconds": 60}, priority="high")
    eventually(lambda: session.tasks.get(blocker.task_id).status == "running", what="blocker")
    return blocker.task_id


def _start_order(owners: dict[str, Session]) -> list[str]:
    """Wait for every task (id → its session); return the ids in the order they started."""
    done = [session.tasks.wait(task_id, timeout="60s") for task_id, session in owners.items()]
    assert all(t.status == "completed" for t in done), [t.error for t in done]
    return [t.task_id for t in sorted(done, key=lambda t: (t.started_at, t.task_id))]


def _backlog_then_one(theazo: Theazo, tag: str) -> tuple[list[str], str, list[str]]:
    """Session A queues 50 tasks, then session B queues one; returns the start order."""
    a = theazo.sessions.for_user(f"{tag}-a")
    b = theazo.sessions.for_user(f"{tag}-b")
    blocker = _block(a)
    backlog = [
        t.task_id for t in a.tasks.submit_batch([{"agent": "echo", "input": i} for i in range(50)])
    ]
    single = b.tasks.submit(agent="echo", input="b").task_id
    a.tasks.cancel(blocker)
    owners = {t: a for t in backlog} | {single: b}
    order = _start_order(owners)
    return backlog, single, order


def test_a_single_task_is_not_stuck_behind_another_sessions_backlog(theazo: Theazo) -> None:
    backlog, single, order = _backlog_then_one(theazo, "fair")
    assert order.index(single) <= 1  # within the next two starts
    assert [t for t in order if t != single] == backlog  # A's own order is kept


def test_fifo_scheduling_runs_the_backlog_first(fifo_server: ServerProcess, api_key: str) -> None:
    with Theazo(api_key=api_key, base_url=fifo_server.base_url) as theazo:
        backlog, single, order = _backlog_then_one(theazo, "fifo")
    assert order == [*backlog, single]


def test_priority_still_goes_first(theazo: Theazo) -> None:
    a, b = theazo.sessions.for_user("prio-a"), theazo.sessions.for_user("prio-b")
    blocker = _block(a)
    normal = [
        t.task_id for t in b.tasks.submit_batch([{"agent": "echo", "input": i} for i in range(5)])
    ]
    high = a.tasks.submit(agent="echo", input="high", priority="high").task_id
    low = a.tasks.submit(agent="echo", input="low", priority="low").task_id
    a.tasks.cancel(blocker)
    order = _start_order({high: a, low: a} | {t: b for t in normal})
    assert order[0] == high and order[-1] == low


def test_queue_position_counts_down_to_zero(theazo: Theazo) -> None:
    session = theazo.sessions.for_user("position")
    blocker = _block(session)
    queued = [session.tasks.submit(agent="sleeper", input={"seconds": 0.2}) for _ in range(3)]
    assert [session.tasks.get(t.task_id).queue_position for t in queued] == [0, 1, 2]
    session.tasks.cancel(blocker)
    eventually(lambda: session.tasks.get(queued[0].task_id).status != "queued")
    assert session.tasks.get(queued[2].task_id).queue_position in (0, 1)
    last = session.tasks.wait(queued[2].task_id, timeout="30s")
    assert last.status == "completed" and last.queue_position is None


def test_a_full_queue_answers_429_with_retry_after(server: ServerProcess, theazo: Theazo) -> None:
    session = theazo.sessions.for_user("full")
    _block(session)
    session.update_limits(max_queued=2)
    session.tasks.submit(agent="echo", input=1)
    session.tasks.submit(agent="echo", input=2)
    with pytest.raises(RateLimitError) as caught:
        session.tasks.submit(agent="echo", input=3)
    assert caught.value.status == 429 and caught.value.code == "session_queue_full"
    raw = httpx.post(
        f"{server.base_url}/v1/sessions/{session.session_id}/tasks",
        json={"agent": "echo", "input": 3},
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert raw.status_code == 429 and int(raw.headers["retry-after"]) >= 1
    for task in session.tasks.list():
        if task.status in ("queued", "running"):
            session.tasks.cancel(task.task_id)


def test_limits_are_shown_and_patched(server: ServerProcess, theazo: Theazo) -> None:
    session = theazo.sessions.for_user("limits")
    assert session.limits.max_queued > 0 and session.limits.budget is None
    session.update_limits(max_running=3, budget=500)
    got = theazo.sessions.get(session.session_id)
    assert (got.limits.max_running, got.limits.budget) == (3, 500)
    session.update_limits(budget=None)
    assert theazo.sessions.get(session.session_id).limits.budget is None
    url = f"{server.base_url}/v1/sessions/{session.session_id}"
    headers = {"Authorization": f"Bearer {server.api_key}"}
    for bad in ({"limits": {"maxRunning": -1}}, {"limits": {"budget": "x"}}, {"limit": {}}):
        response = httpx.patch(url, json=bad, headers=headers)
        assert response.status_code == 422, response.text
    assert httpx.patch(url + "x", json={"limits": {}}, headers=headers).status_code == 404


def test_a_runaway_agent_is_stopped_at_the_budget(theazo: Theazo) -> None:
    session = theazo.sessions.for_user("budget-charges")
    session.update_limits(budget=100)

    task = session.run(agent="spender", input={"amount": 15, "steps": 100, "every": 0.02})

    assert task.status == "failed"
    assert task.error is not None and task.error.code == "budget_exceeded"
    assert task.cost.amount >= 100
    with pytest.raises(BudgetExhaustedError) as caught:
        session.tasks.submit(agent="echo", input=None)
    assert caught.value.status == 402 and caught.value.code == "budget_exhausted"
    tasks = list(session.tasks.list())
    assert session.refresh().usage.cost.amount == sum(t.cost.amount for t in tasks)


def test_compute_time_alone_is_stopped_at_the_budget(theazo: Theazo) -> None:
    session = theazo.sessions.for_user("budget-compute")
    session.update_limits(budget=50)  # half a second of compute at 100 cents a second

    task = session.run(agent="sleeper", input={"seconds": 30})

    assert task.status == "failed"
    assert task.error is not None and task.error.code == "budget_exceeded"
    assert task.started_at and task.completed_at
    assert (task.completed_at - task.started_at).total_seconds() < 5
    assert 50 <= task.cost.amount <= 60
    assert session.refresh().usage.cost.amount == task.cost.amount
