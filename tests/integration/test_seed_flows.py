"""The product page's flows, as a user of the Python SDK runs them."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.waiting import eventually
from theazo import Theazo
from theazo.sdk import Session, UnprocessableEntityError


def test_submit_returns_queued_task_at_once_then_completes(session: Session) -> None:
    task = session.tasks.submit(agent="echo", input={"query": "analyze competitor pricing"})

    assert task.task_id.startswith("task_")
    assert task.status in ("queued", "running", "completed")
    assert task.session_id == session.session_id

    done = session.tasks.wait(task.task_id, timeout="10s")
    assert done.status == "completed"
    assert done.output == {"query": "analyze competitor pricing"}
    assert done.completed_at is not None and done.started_at is not None
    assert done.cost.currency == "usd"


def test_get_shows_progress_message_and_cost_reported_by_the_agent(session: Session) -> None:
    task = session.tasks.submit(agent="reporter", input={"steps": 4, "charge": 2.5})
    session.tasks.wait(task.task_id, timeout="10s")

    done = session.tasks.get(task.task_id)
    assert done.status == "completed"
    assert done.progress == 1.0
    assert done.message == "step 4 of 4"
    assert done.cost.amount == 10  # four charges of 2.5 cents


def test_researcher_example_answers_with_sources(session: Session) -> None:
    result = session.run(
        agent="researcher", input={"query": "analyze competitor pricing for Q2 2025"}
    )
    assert result.status == "completed", result.error
    assert result.output["results"], result.output
    assert all("source" in r for r in result.output["results"])
    assert result.cost.amount >= 0


def test_list_filters_by_status_newest_first(session: Session) -> None:
    first = session.run(agent="echo", input=1)
    failed = session.run(agent="raiser", input=None)
    last = session.run(agent="echo", input=2)

    everything = session.tasks.list()
    assert [t.task_id for t in everything] == [last.task_id, failed.task_id, first.task_id]
    assert [t.task_id for t in session.tasks.list(status="failed")] == [failed.task_id]
    both = session.tasks.list(status=["failed", "completed"])
    assert len(both) == 3


def test_list_pages_with_a_cursor(session: Session) -> None:
    submitted = [session.tasks.submit(agent="echo", input=i).task_id for i in range(5)]
    page = session.tasks.list(limit=2)
    seen = [t.task_id for t in page]
    while page.next_cursor:
        page = session.tasks.list(limit=2, cursor=page.next_cursor)
        seen += [t.task_id for t in page]
    assert seen == list(reversed(submitted))


def test_cancel_a_running_task(session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    eventually(lambda: session.tasks.get(task.task_id).status == "running", what="running")

    cancelled = session.tasks.cancel(task.task_id)

    assert cancelled.status == "cancelled"
    assert session.tasks.get(task.task_id).status == "cancelled"


def test_webhook_is_stored_with_the_task(session: Session) -> None:
    task = session.tasks.submit(
        agent="echo", input={}, webhook="https://93.184.215.14/webhooks/task-complete"
    )
    assert task.webhook == "https://93.184.215.14/webhooks/task-complete"


def test_session_is_get_or_create_per_user(theazo: Theazo, session: Session) -> None:
    again = theazo.sessions.for_user(session.user_id)
    assert again.session_id == session.session_id
    assert theazo.sessions.get(session.session_id).user_id == session.user_id


def test_agents_lists_the_bundled_examples(theazo: Theazo) -> None:
    names = {agent.name for agent in theazo.agents.list()}
    assert {"echo", "data_processor", "researcher"} <= names


def test_submit_answers_202_with_location(server: ServerProcess, session: Session) -> None:
    response = httpx.post(
        f"{server.base_url}/v1/sessions/{session.session_id}/tasks",
        json={"agent": "echo", "input": {"a": 1}},
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == (
        f"/v1/sessions/{session.session_id}/tasks/{body['taskId']}"
    )
    assert body["status"] == "queued"
    assert set(body) >= {
        "taskId",
        "sessionId",
        "agent",
        "status",
        "priority",
        "input",
        "progress",
        "message",
        "output",
        "error",
        "cost",
        "webhook",
        "metadata",
        "createdAt",
        "startedAt",
        "completedAt",
    }


@pytest.mark.parametrize("agent", ["echo", "async_sleeper"])
def test_session_run_blocks_until_done(session: Session, agent: str) -> None:
    task = session.run(agent=agent, input={"seconds": 0.05})
    assert task.status == "completed"


def test_a_cursor_tells_nothing_and_works_only_in_its_session(
    theazo: Theazo, session: Session
) -> None:
    for i in range(3):
        session.tasks.submit(agent="echo", input=i)
    cursor = session.tasks.list(limit=1).next_cursor
    assert cursor is not None and not cursor.isdigit()  # not a row number

    other = theazo.sessions.for_user(f"{session.user_id}-neighbour")
    other.tasks.submit(agent="echo", input="theirs")
    with pytest.raises(UnprocessableEntityError) as refused:
        other.tasks.list(cursor=cursor)
    assert refused.value.code == "invalid_cursor" and refused.value.field == "cursor"
    for forged in ("dDE", "MTIzNDU", "task_abc"):  # "t1", "12345", not base64 of ours
        with pytest.raises(UnprocessableEntityError):
            session.tasks.list(cursor=forged)
