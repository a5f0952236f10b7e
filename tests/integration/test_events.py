"""Watching an agent work: a task's and a session's event streams, resumed after a cut, after a
restart, read by a browser with a stream token; and what another session or project sees."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import StartServer
from tests.support.server import ServerProcess, new_api_key
from tests.support.sse import events_of, read_until_end
from theazo import AsyncTheazo, Theazo
from theazo.sdk import (
    EndEvent,
    LogEvent,
    NotFoundError,
    ProgressEvent,
    Session,
    StatusEvent,
)


@pytest.fixture(scope="module")
def other_key() -> str:
    return new_api_key()


@pytest.fixture(scope="module")
def server(start_server: StartServer, api_key: str, other_key: str) -> Iterator[ServerProcess]:
    """A server with two projects: the tests' and another one."""
    with start_server(api_keys=[api_key, other_key]) as process:
        yield process


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _events_url(server: ServerProcess, session: Session, task_id: str) -> str:
    return f"{server.base_url}/v1/sessions/{session.session_id}/tasks/{task_id}/events"


def test_a_reader_sees_each_report_in_order_then_the_end(session: Session) -> None:
    task = session.tasks.submit("ticker", {"steps": 5, "every": 0.05})
    seen = list(session.tasks.stream(task.task_id, timeout="30s"))

    first, last = seen[0], seen[-1]
    assert isinstance(first, StatusEvent) and first.id == 0
    assert first.task.task_id == task.task_id  # the task as it is now: no separate get
    progress = [(e.progress, e.message) for e in seen if isinstance(e, ProgressEvent)]
    assert progress == [(s / 5, f"step {s} of 5") for s in range(1, 6)]
    assert isinstance(last, EndEvent) and last.task.status == "completed"
    assert last.task.output == {"steps": 5}
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids))


def test_a_client_cut_off_resumes_after_its_last_event_id(
    server: ServerProcess, session: Session
) -> None:
    task = session.tasks.submit("ticker", {"steps": 8, "every": 0.1})
    before = []
    for event in session.tasks.stream(task.task_id, timeout="30s"):
        before.append(event)
        if isinstance(event, ProgressEvent) and event.progress == 3 / 8:
            break  # the connection is dropped here
    last_id = before[-1].id

    rest = read_until_end(
        _events_url(server, session, task.task_id),
        headers={**_auth(server.api_key), "Last-Event-ID": str(last_id)},
    )
    assert [e.id for e in rest] == list(range(last_id + 1, last_id + 1 + len(rest)))
    reported = [e.progress for e in before if isinstance(e, ProgressEvent)]
    reported += [e.data["progress"] for e in rest if e.event == "progress"]
    assert reported == [s / 8 for s in range(1, 9)]  # no gap, nothing twice
    assert [e.event for e in rest][-2:] == ["status", "end"]
    assert rest[-1].data["status"] == "completed"


def test_after_in_the_query_resumes_as_last_event_id_does(
    server: ServerProcess, session: Session
) -> None:
    task = session.tasks.submit("ticker", {"steps": 2, "every": 0})
    session.tasks.wait(task.task_id, timeout="20s")
    url = _events_url(server, session, task.task_id)
    everything = read_until_end(url, headers=_auth(server.api_key), params={"after": "0"})
    assert [e.id for e in everything] == list(range(1, len(everything) + 1))
    assert everything[0].event == "status" and everything[0].data["status"] == "queued"
    tail = read_until_end(url, headers=_auth(server.api_key), params={"after": "2"})
    assert [e.id for e in tail] == [e.id for e in everything[2:]]


def test_a_finished_task_replays_and_ends_at_once(server: ServerProcess, session: Session) -> None:
    task = session.tasks.submit("ticker", {"steps": 3, "every": 0})
    done = session.tasks.wait(task.task_id, timeout="20s")
    seen = read_until_end(_events_url(server, session, task.task_id), headers=_auth(server.api_key))
    assert seen[0].id == 0 and seen[0].event == "status"
    assert seen[0].data == seen[-1].data  # the task as it is now: finished
    assert seen[0].data["status"] == done.status == "completed"
    assert [e.data["progress"] for e in seen if e.event == "progress"] == [1 / 3, 2 / 3, 1.0]
    assert seen[-1].event == "end"

    after_end = httpx.get(
        _events_url(server, session, task.task_id),
        headers={**_auth(server.api_key), "Last-Event-ID": str(seen[-1].id)},
    )
    assert after_end.status_code == 204  # EventSource stops reconnecting on a 204


def test_the_session_stream_interleaves_its_tasks(session: Session) -> None:
    first = session.tasks.submit("ticker", {"steps": 4, "every": 0.1})
    second = session.tasks.submit("ticker", {"steps": 4, "every": 0.1})
    ended: set[str] = set()
    seen = []
    for event in session.events(timeout="30s"):
        seen.append(event)
        if isinstance(event, StatusEvent) and event.task.is_terminal:
            ended.add(event.task_id)
        if ended == {first.task_id, second.task_id}:
            break
    assert ended == {first.task_id, second.task_id}
    assert [e.id for e in seen] == list(range(1, len(seen) + 1))
    order = [e.task_id for e in seen if isinstance(e, ProgressEvent)]
    assert order.count(first.task_id) == order.count(second.task_id) == 4
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= 2  # the two tasks' reports are interleaved, as they happened
    statuses = [(e.task_id, e.task.status) for e in seen if isinstance(e, StatusEvent)]
    for task_id in (first.task_id, second.task_id):
        assert [s for t, s in statuses if t == task_id] == ["queued", "running", "completed"]


def test_a_session_stream_resumes_after_its_last_id(
    server: ServerProcess, session: Session
) -> None:
    task = session.tasks.submit("ticker", {"steps": 3, "every": 0})
    session.tasks.wait(task.task_id, timeout="20s")
    url = f"{server.base_url}/v1/sessions/{session.session_id}/events"
    with httpx.stream(
        "GET", url, headers={**_auth(server.api_key), "Last-Event-ID": "2"}, timeout=10
    ) as response:
        found = []
        for event in events_of(response):
            found.append(event)
            if event.data.get("status") == "completed":
                break
    assert [e.id for e in found] == list(range(3, 3 + len(found)))
    assert all(e.data["taskId"] == task.task_id for e in found)
    assert [e.event for e in found] == ["progress"] * 3 + ["status"]


def test_a_browser_reads_with_a_stream_token_and_nothing_else(
    server: ServerProcess, theazo: Theazo, session: Session
) -> None:
    task = session.tasks.submit("ticker", {"steps": 2, "every": 0})
    session.tasks.wait(task.task_id, timeout="20s")
    token = session.stream_token(ttl="5m")
    assert token.token.startswith("thst_") and token.session_id == session.session_id

    seen = read_until_end(_events_url(server, session, task.task_id), params={"token": token.token})
    assert seen[-1].event == "end"
    logs = httpx.get(
        f"{server.base_url}/v1/sessions/{session.session_id}/tasks/{task.task_id}/logs",
        params={"token": token.token},
    )
    assert logs.status_code == 200

    other = theazo.sessions.for_user(f"user_{uuid.uuid4().hex[:12]}")
    elsewhere = httpx.get(
        f"{server.base_url}/v1/sessions/{other.session_id}/events", params={"token": token.token}
    )
    assert elsewhere.status_code == 404  # another session's streams: as if it did not exist
    for method, path in (
        ("GET", f"/v1/sessions/{session.session_id}/tasks/{task.task_id}"),
        ("POST", f"/v1/sessions/{session.session_id}/tasks/{task.task_id}/cancel"),
        ("POST", f"/v1/sessions/{session.session_id}/tokens"),
    ):
        answer = httpx.request(method, server.base_url + path, params={"token": token.token})
        assert answer.status_code == 401, path  # read-only: a token is no API key
    forged = httpx.get(
        f"{server.base_url}/v1/sessions/{session.session_id}/events",
        params={"token": token.token[:-2] + "AA"},
    )
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"


def test_another_project_and_another_session_see_nothing(
    server: ServerProcess, other_key: str, theazo: Theazo, session: Session
) -> None:
    task = session.tasks.submit("ticker", {"steps": 1, "every": 0})
    paths = [
        f"/v1/sessions/{session.session_id}/tasks/{task.task_id}/events",
        f"/v1/sessions/{session.session_id}/tasks/{task.task_id}/logs",
        f"/v1/sessions/{session.session_id}/events",
    ]
    for path in paths:
        answer = httpx.get(server.base_url + path, headers=_auth(other_key))
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"
    other = theazo.sessions.for_user(f"user_{uuid.uuid4().hex[:12]}")
    with pytest.raises(NotFoundError):
        next(iter(other.tasks.stream(task.task_id)))
    with pytest.raises(NotFoundError):
        other.tasks.logs(task.task_id)
    unauthenticated = httpx.get(server.base_url + paths[0])
    assert unauthenticated.status_code == 401


def test_bad_cursors_are_named(server: ServerProcess, session: Session) -> None:
    task = session.tasks.submit("ticker", {"steps": 1, "every": 0})
    url = _events_url(server, session, task.task_id)
    for headers, params, field in (
        ({"Last-Event-ID": "abc"}, {}, "Last-Event-ID"),
        ({}, {"after": "-1"}, "after"),
        ({}, {"after": "999999"}, "after"),
    ):
        answer = httpx.get(url, headers={**_auth(server.api_key), **headers}, params=params)
        assert answer.status_code == 422
        assert answer.json()["code"] == "invalid_cursor" and answer.json()["field"] == field


def test_a_stream_survives_a_restart_of_the_server(start_server: StartServer, api_key: str) -> None:
    with start_server() as server, Theazo(api_key=api_key, base_url=server.base_url) as theazo:
        session = theazo.sessions.for_user("restarted")
        task = session.tasks.submit("ticker", {"steps": 50, "every": 0.2})
        seen = []
        restarted = False
        for event in session.tasks.stream(task.task_id, timeout="60s"):
            seen.append(event)
            if not restarted and isinstance(event, ProgressEvent):
                restarted = True
                server.stop()  # graceful: the task fails with worker_shutdown
                server.launch()  # same database, same port: the stream resumes by itself
        end = seen[-1]
        assert isinstance(end, EndEvent)
        assert end.task.status == "failed" and end.task.error is not None
        assert end.task.error.code == "worker_shutdown"
        ids = [e.id for e in seen]
        assert ids == sorted(set(ids))  # nothing twice
        everything = read_until_end(
            _events_url(server, session, task.task_id),
            headers={**_auth(api_key), "Last-Event-ID": "0"},
        )
        # Nothing lost either: every event but the status changes the first one already
        # showed, exactly once, across the restart.
        assert [e.id for e in seen if not isinstance(e, StatusEvent)] == [
            e.id for e in everything if e.event != "status"
        ]


def test_the_log_keeps_what_the_agent_printed_in_order(session: Session) -> None:
    task = session.tasks.submit("ticker", {"steps": 3, "every": 0.05, "stderr": True})
    seen = list(session.tasks.stream(task.task_id, timeout="30s"))
    lines = [(e.stream, e.text) for e in seen if isinstance(e, LogEvent)]
    assert [t for s, t in lines if s == "stdout"] == ["tick 1", "tick 2", "tick 3"]
    assert [t for s, t in lines if s == "stderr"] == ["warn 1", "warn 2", "warn 3"]
    last_line = max(i for i, e in enumerate(seen) if isinstance(e, LogEvent))
    assert last_line < len(seen) - 1 and isinstance(seen[-1], EndEvent)  # all before the end

    page = session.tasks.logs(task.task_id)
    assert [(line.stream, line.text) for line in page] == lines
    assert page.next_cursor is None
    first_two = session.tasks.logs(task.task_id, limit=2)
    assert len(first_two) == 2 and first_two.next_cursor is not None
    rest = session.tasks.logs(task.task_id, after=first_two.next_cursor)
    assert [line.seq for line in [*first_two, *rest]] == [line.seq for line in page]
    assert all(line.at is not None for line in page)


def test_a_chatty_agent_is_cut_at_the_cap_and_still_completes(session: Session) -> None:
    task = session.tasks.submit("chatty", {"mib": 10})
    done = session.tasks.wait(task.task_id, timeout="60s")
    assert done.status == "completed" and done.output == {"done": True}
    lines = []
    after: int | None = None
    while True:
        page = session.tasks.logs(task.task_id, after=after, limit=1000)
        lines += page.data
        if page.next_cursor is None:
            break
        after = int(page.next_cursor)
    texts = [line.text for line in lines]
    assert texts[0] == "from a child"  # a subprocess's output is the task's too
    assert any("about to be chatty" in t for t in texts)  # logging, on stderr
    kept = sum(len(line.text.encode()) + 1 for line in lines if line.text.startswith("x"))
    assert 1024 * 1024 - 2048 < kept <= 1024 * 1024
    notes = [line.text for line in lines if line.text.startswith("[theazo]")]
    assert len(notes) == 2 and all(line.stream == "stderr" for line in lines[-1:])
    assert "reached its limit of 1048576 bytes" in notes[0]
    dropped = int(notes[1].split()[1])
    assert 9 * 1024 * 1024 < dropped < 10 * 1024 * 1024


async def test_the_async_client_streams_the_same(server: ServerProcess, api_key: str) -> None:
    async with AsyncTheazo(api_key=api_key, base_url=server.base_url) as client:
        session = await client.sessions.for_user(f"user_{uuid.uuid4().hex[:12]}")
        task = await session.tasks.submit("ticker", {"steps": 2, "every": 0.05})
        seen = [event async for event in session.tasks.stream(task.task_id, timeout="30s")]
        in_session = []
        async for event in session.events(timeout="10s"):
            in_session.append(event)
            if isinstance(event, StatusEvent) and event.task.is_terminal:
                break
        logs = await session.tasks.logs(task.task_id)
        token = await session.stream_token()
    assert seen[0].event == "status" and isinstance(seen[-1], EndEvent)
    assert [e.data["text"] for e in seen if e.event == "log"] == ["tick 1", "tick 2"]
    assert [line.text for line in logs] == ["tick 1", "tick 2"]
    assert [e.id for e in in_session] == list(range(1, len(in_session) + 1))
    assert token.session_id == session.session_id
