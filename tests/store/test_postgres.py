"""What only several nodes on one PostgreSQL can show: concurrent claims, limits under a race,
notifications between nodes, migrations started together, and the claim's index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest

from tests.store.conftest import ManualClock, new_task
from theazo.core.models import Outcome
from theazo.core.rates import RateLimits
from theazo.core.states import TaskStatus
from theazo.store import Store, StoreSettings, create_store
from theazo.store.base import LimitsPatch
from theazo.store.postgres.store import Q
from theazo.store.sqlfiles import migration_files

Nodes = Callable[[int], Awaitable[list[Store]]]


@pytest.fixture
async def nodes(postgres_url: str) -> AsyncIterator[Nodes]:
    """Open N stores on one database, as N nodes would."""
    opened: list[Store] = []

    async def make(count: int) -> list[Store]:
        stores = [create_store(postgres_url, StoreSettings()) for _ in range(count)]
        await asyncio.gather(*(store.open() for store in stores))  # migrations race here
        opened.extend(stores)
        return stores

    yield make
    for store in opened:
        await store.close()


async def test_concurrent_claims_never_take_a_task_twice(nodes: Nodes) -> None:
    stores = await nodes(4)
    project = await stores[0].create_project()
    sessions = [(await stores[0].session_for_user(project, f"u{i}")).session_id for i in range(8)]
    for session_id in sessions:
        await stores[0].submit(project, session_id, [new_task() for _ in range(50)])

    async def drain(store: Store, worker: str) -> list[str]:
        taken: list[str] = []
        while claimed := await store.claim(worker, 7):
            taken += [c.task.task_id for c in claimed]
            for item in claimed:
                await store.finish(
                    item.task.task_id, item.task.attempt, Outcome(TaskStatus.COMPLETED)
                )
        return taken

    results = await asyncio.gather(*(drain(s, f"w{i}") for i, s in enumerate(stores)))
    everything = [task_id for taken in results for task_id in taken]
    assert len(everything) == 400
    assert len(set(everything)) == 400
    assert sum(1 for taken in results if taken) >= 2  # the work really was shared


async def test_session_limit_holds_when_nodes_claim_at_once(nodes: Nodes) -> None:
    stores = await nodes(4)
    project = await stores[0].create_project()
    session_id = (await stores[0].session_for_user(project, "limited")).session_id
    await stores[0].set_session_limits(project, session_id, LimitsPatch(max_running=2))
    await stores[0].submit(project, session_id, [new_task() for _ in range(20)])

    claimed = await asyncio.gather(*(s.claim(f"w{i}", 5) for i, s in enumerate(stores)))

    assert sum(len(c) for c in claimed) == 2
    session = await stores[0].get_session(project, session_id)
    assert session.running_count == 2 and session.queued_count == 18


async def test_events_reach_the_other_nodes(nodes: Nodes) -> None:
    api, worker = await nodes(2)
    project = await api.create_project()
    session_id = (await api.session_for_user(project, "u")).session_id
    work = asyncio.Event()
    worker.events.on_work_available(work.set)
    cancels: asyncio.Queue[str] = asyncio.Queue()
    worker.events.on_cancel_requested(cancels.put_nowait)

    first, second = await api.submit(project, session_id, [new_task(), new_task()])
    await asyncio.wait_for(work.wait(), 5)

    (claimed_first, claimed_second) = await worker.claim("w", 2)
    finished = api.events.finish_waiter(first.task_id)
    await worker.finish(first.task_id, 1, Outcome(TaskStatus.COMPLETED, output=1))
    await asyncio.wait_for(finished, 5)  # a waiter on the API node hears of it

    await api.cancel(project, session_id, second.task_id)
    assert await asyncio.wait_for(cancels.get(), 5) == second.task_id
    del claimed_first, claimed_second


async def test_a_notification_rolled_back_is_never_heard(nodes: Nodes) -> None:
    api, worker = await nodes(2)
    project = await api.create_project()
    session_id = (await api.session_for_user(project, "u")).session_id
    await api.set_session_limits(project, session_id, LimitsPatch(max_queued=0))
    await asyncio.sleep(0.2)  # let the limit change's own notification pass
    heard = asyncio.Event()
    worker.events.on_work_available(heard.set)
    with pytest.raises(Exception, match="queued"):
        await api.submit(project, session_id, [new_task()])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(heard.wait(), 0.5)


async def test_migrations_run_once_when_nodes_start_together(
    nodes: Nodes, postgres_url: str
) -> None:
    await nodes(5)
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT version FROM theazo_migrations").fetchall()
    assert versions == [(number,) for number, _ in migration_files("theazo.store.postgres")]


async def test_the_claim_uses_its_partial_index_among_many_finished_tasks(
    postgres_url: str, nodes: Nodes
) -> None:
    (store,) = await nodes(1)
    project = await store.create_project()
    session_id = (await store.session_for_user(project, "u")).session_id
    await store.submit(project, session_id, [new_task() for _ in range(10)])
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO tasks (task_id, project_id, session_id, user_id, agent, status,
                               priority, fair_key, input, timeout_ms, created_at, started_at,
                               finished_at)
            SELECT 'task_done_' || n, %s, %s, 'u', 'echo', 'completed', 1, n, 'null', 1000,
                   now(), now(), now()
            FROM generate_series(1, 200000) AS n
            """,
            (project, session_id),
        )
        conn.execute("ANALYZE tasks")
        claim = Q["claim_candidates"]  # the very statement the store runs
        explained = conn.execute(b"EXPLAIN " + claim, {"default_max_running": 10, "scan": 8})
        plan = "\n".join(row[0] for row in explained)
    assert "tasks_claim" in plan, plan
    assert "Seq Scan on tasks" not in plan, plan


async def test_a_sessions_model_call_rates_hold_across_nodes(nodes: Nodes) -> None:
    stores = await nodes(3)
    limits = RateLimits(requests_per_minute=7)
    # 30 calls of one session at once, through three nodes: exactly 7 go through.
    calls = [stores[i % 3].count_model_call("busy", limits) for i in range(30)]
    answers = await asyncio.gather(*calls)
    assert sum(1 for answer in answers if answer is None) == 7
    refused = [answer for answer in answers if answer is not None]
    assert all("7 model calls" in answer.reason for answer in refused)
    assert all(1 <= answer.retry_after_seconds <= 60 for answer in refused)
    # Tokens counted by one node hold back the session's calls on the others.
    tokens = RateLimits(tokens_per_minute=1000)
    await stores[0].count_model_tokens("heavy", tokens, 600)
    assert await stores[1].count_model_call("heavy", tokens) is None
    await stores[1].count_model_tokens("heavy", tokens, 600)
    refused_here = await stores[2].count_model_call("heavy", tokens)
    assert refused_here is not None and "1200 tokens" in refused_here.reason


async def test_model_call_windows_that_left_their_minute_are_pruned(postgres_url: str) -> None:
    clock = ManualClock()
    store = create_store(postgres_url, StoreSettings(), clock)
    await store.open()
    try:
        limits = RateLimits(requests_per_minute=100)
        for index in range(20):
            await store.count_model_call(f"s{index}", limits)
            clock.advance(1)
        with psycopg.connect(postgres_url) as conn:
            rows = conn.execute("SELECT count(*) FROM model_call_rates").fetchone()
        assert rows == (20,)
        clock.advance(120)
        await store.count_model_call("later", limits)
        with psycopg.connect(postgres_url) as conn:
            left = conn.execute("SELECT session_id FROM model_call_rates").fetchall()
        assert left == [("later",)]
    finally:
        await store.close()
