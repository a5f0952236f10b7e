"""Long polls: held by the server until the task ends or the timeout passes."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import StartServer
from tests.support.server import ServerProcess
from tests.support.waiting import eventually
from theazo import Theazo
from theazo.sdk import Session


def test_wait_is_held_until_the_timeout_when_the_task_runs_on(session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    started = time.monotonic()

    result = session.tasks.wait(task.task_id, timeout="700ms")

    elapsed = time.monotonic() - started
    assert result.status in ("queued", "running")
    assert 0.6 <= elapsed < 5
    session.tasks.cancel(task.task_id)


def test_wait_answers_promptly_when_the_task_ends(session: Session) -> None:
    # The clock starts before the submit: the sleep may begin before the submit's answer arrives.
    started = time.monotonic()
    task = session.tasks.submit(agent="sleeper", input={"seconds": 0.5})

    result = session.tasks.wait(task.task_id, timeout="30s")

    elapsed = time.monotonic() - started
    assert result.status == "completed"
    # Held through the half second of work, then answered right away, far from the timeout.
    assert 0.5 <= elapsed < 5


def test_wait_on_a_finished_task_answers_at_once(session: Session) -> None:
    task = session.run(agent="echo", input="x")
    started = time.monotonic()
    assert session.tasks.wait(task.task_id, timeout="30s").status == "completed"
    assert time.monotonic() - started < 2


def test_sdk_wait_loops_past_the_server_cap(start_server: StartServer, api_key: str) -> None:
    with (
        start_server("--max-wait", "300ms") as server,
        Theazo(api_key=api_key, base_url=server.base_url) as theazo,
    ):
        session = theazo.sessions.for_user("cap")
        task = session.tasks.submit(agent="sleeper", input={"seconds": 1.2})
        raw = httpx.get(
            f"{server.base_url}/v1/sessions/{session.session_id}/tasks/{task.task_id}/wait",
            params={"timeout": "10s"},
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        )
        assert raw.json()["status"] in ("queued", "running")  # the server let go at its cap
        assert session.tasks.wait(task.task_id, timeout="20s").status == "completed"


def test_many_waiters_on_one_task_all_answered(server: ServerProcess, session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 0.5})
    url = f"{server.base_url}/v1/sessions/{session.session_id}/tasks/{task.task_id}/wait"
    headers = {"Authorization": f"Bearer {server.api_key}"}

    async def wait_all() -> list[str]:
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            answers = await asyncio.gather(
                *(client.get(url, params={"timeout": "20s"}) for _ in range(200))
            )
        return [a.json()["status"] for a in answers]

    assert set(asyncio.run(wait_all())) == {"completed"}


def test_a_wait_whose_client_left_is_let_go(server: ServerProcess, session: Session) -> None:
    task = session.tasks.submit(agent="sleeper", input={"seconds": 30})
    url = f"{server.base_url}/v1/sessions/{session.session_id}/tasks/{task.task_id}/wait"
    headers = {"Authorization": f"Bearer {server.api_key}"}

    def waits() -> int:
        count: int = httpx.get(f"{server.base_url}/healthz").json()["waits"]
        return count

    async def leave_early() -> None:
        async with httpx.AsyncClient(headers=headers) as client:
            pending = [
                asyncio.ensure_future(client.get(url, params={"timeout": "60s"})) for _ in range(20)
            ]
            await asyncio.to_thread(eventually, lambda: waits() >= 20, 30, 0.01, "20 waits")
            for request in pending:
                request.cancel()
        # the client is closed: its connections too

    asyncio.run(leave_early())
    eventually(lambda: waits() == 0, timeout=30, what="the server to let the waits go")
    session.tasks.cancel(task.task_id)


def test_held_waits_are_answered_when_the_server_stops(
    start_server: StartServer, api_key: str
) -> None:
    with start_server() as server:
        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            session = theazo.sessions.for_user("stopping")
            task = session.tasks.submit(agent="sleeper", input={"seconds": 60})
        url = f"{server.base_url}/v1/sessions/{session.session_id}/tasks/{task.task_id}/wait"

        async def hold_then_stop() -> list[httpx.Response]:
            headers = {"Authorization": f"Bearer {api_key}"}
            async with httpx.AsyncClient(headers=headers, timeout=30) as client:
                pending = [
                    asyncio.ensure_future(client.get(url, params={"timeout": "60s"}))
                    for _ in range(30)
                ]
                await asyncio.to_thread(
                    eventually,
                    lambda: httpx.get(f"{server.base_url}/healthz").json()["waits"] >= 30,
                )
                await asyncio.to_thread(server.stop)
                return list(await asyncio.gather(*pending))

        answers = asyncio.run(hold_then_stop())
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["status"] for a in answers} <= {"queued", "running"}
        assert "Traceback" not in server.log()


def test_submit_with_prefer_wait_answers_the_finished_task(
    server: ServerProcess, session: Session
) -> None:
    url = f"{server.base_url}/v1/sessions/{session.session_id}/tasks"
    auth = {"Authorization": f"Bearer {server.api_key}"}

    quick = httpx.post(
        url, json={"agent": "sleeper", "input": {"seconds": 0.2}},
        headers={**auth, "Prefer": "wait=10"}, timeout=30,
    )  # fmt: skip
    assert quick.status_code == 200
    assert quick.json()["status"] == "completed"
    assert quick.headers["preference-applied"] == "wait=10"

    slow = httpx.post(
        url, json={"agent": "sleeper", "input": {"seconds": 30}},
        headers={**auth, "Prefer": "respond-async, wait=0.3"}, timeout=30,
    )  # fmt: skip
    assert slow.status_code == 202
    assert slow.json()["status"] in ("queued", "running")
    session.tasks.cancel(slow.json()["taskId"])
