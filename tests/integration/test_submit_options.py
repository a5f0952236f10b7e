"""Idempotency keys, batches, metadata, costs and session usage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.server import ServerProcess
from theazo import UnprocessableEntityError
from theazo.sdk import Session

PRICE_PER_SECOND = 10


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    with start_server("--compute-price", str(PRICE_PER_SECOND)) as process:
        yield process


def test_same_idempotency_key_returns_the_first_task(session: Session) -> None:
    first = session.tasks.submit(agent="echo", input=1, idempotency_key="order-42")
    again = session.tasks.submit(agent="echo", input=1, idempotency_key="order-42")
    other = session.tasks.submit(agent="echo", input=1, idempotency_key="order-43")

    assert again.task_id == first.task_id
    assert other.task_id != first.task_id
    assert len(session.tasks.list()) == 2


def test_idempotency_keys_are_per_session(session: Session, theazo: Any) -> None:
    mine = session.tasks.submit(agent="echo", input=1, idempotency_key="shared")
    other = theazo.sessions.for_user(session.user_id + "-b")
    theirs = other.tasks.submit(agent="echo", input=1, idempotency_key="shared")
    assert mine.task_id != theirs.task_id


def test_batch_submit_is_all_or_nothing(server: ServerProcess, session: Session) -> None:
    url = f"{server.base_url}/v1/sessions/{session.session_id}/tasks/batch"
    headers = {"Authorization": f"Bearer {server.api_key}"}
    good = [{"agent": "echo", "input": i} for i in range(10)]

    response = httpx.post(url, json={"tasks": good}, headers=headers)
    assert response.status_code == 202
    assert [t["input"] for t in response.json()["data"]] == list(range(10))

    bad = [*good, {"agent": "no_such_agent", "input": 0}]
    response = httpx.post(url, json={"tasks": bad}, headers=headers)
    assert response.status_code == 422
    assert response.json()["field"] == "tasks[10].agent"
    assert len(session.tasks.list(limit=100)) == 10

    too_many = {"tasks": [{"agent": "echo", "input": 0}] * 1001}
    assert httpx.post(url, json=too_many, headers=headers).status_code == 422


def test_sdk_batch_submit(session: Session) -> None:
    tasks = session.tasks.submit_batch(
        [{"agent": "echo", "input": i, "priority": "low"} for i in range(3)]
    )
    assert [t.priority for t in tasks] == ["low"] * 3
    assert [session.tasks.wait(t.task_id, timeout="20s").output for t in tasks] == [0, 1, 2]


def test_metadata_timeout_and_retries_are_kept(session: Session) -> None:
    task = session.tasks.submit(
        agent="echo", input=1, metadata={"customer": "acme"}, timeout="90s", retries=2
    )
    got = session.tasks.get(task.task_id)
    assert got.metadata == {"customer": "acme"}
    assert got.timeout == 90
    assert got.retries == 2


def test_cost_is_compute_time_plus_charges_and_sums_into_the_session(session: Session) -> None:
    tasks = [
        session.run(agent="reporter", input={"steps": 2, "charge": 0.75}),
        session.run(agent="sleeper", input={"seconds": 0.3}),
    ]
    for task in tasks:
        assert task.started_at and task.completed_at
        seconds = (task.completed_at - task.started_at).total_seconds()
        charged = 1.5 if task.agent == "reporter" else 0
        assert task.cost.amount == pytest.approx(seconds * PRICE_PER_SECOND + charged, abs=1)
    usage = session.refresh().usage
    assert usage.tasks == 2
    assert usage.cost.amount == sum(t.cost.amount for t in tasks)


def test_unknown_agent_raises_a_typed_error(session: Session) -> None:
    with pytest.raises(UnprocessableEntityError) as caught:
        session.tasks.submit(agent="no_such_agent", input=None)
    assert caught.value.code == "unknown_agent"
    assert caught.value.field == "agent"
