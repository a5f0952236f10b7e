"""The store's claim, measured in-process through ``theazo.store`` (no server, no HTTP):
how it scales with the finished tasks in the table, and what fair share costs over FIFO."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bench.common import (
    WARMUP,
    Bench,
    Figure,
    Result,
    Sizes,
    Target,
    is_postgres,
    p50_p99,
    percentile,
    ratio,
)
from theazo.core.models import ClaimedTask, Limits, NewTask
from theazo.core.states import Priority, Scheduling
from theazo.store import Store, StoreSettings, create_store, sqlite_path

WORKER = "bench-worker"
SUBMIT_CHUNK = 100  # fair_claims: tasks per store.submit, the sessions taking turns
# No session limit gets in the way: what is measured is the claim's own work.
UNLIMITED = Limits(max_running=1_000_000, max_queued=100_000_000, budget=None)
NOOP = NewTask(
    agent="noop", input=None, priority=Priority.NORMAL, timeout_seconds=3600.0, max_attempts=1
)

# Finished tasks written straight into the table, in one statement each: the columns a
# completed task has (see store/*/schema.sql), all in the measured session, whose fair-share
# clock is moved past them as if it had submitted them; then fresh planner statistics.
FILL_SQLITE = (
    """INSERT INTO tasks (task_id, project_id, session_id, user_id, agent, status, priority,
        fair_key, input, output, timeout_ms, attempt, created_at, started_at, finished_at,
        worker_id)
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
    SELECT 'task_fill' || i, :project_id, :session_id, :user_id, 'noop', 'completed',
        :priority, i, 'null', 'null', 3600000, 1, :now, :now, :now, 'bench-history'
    FROM n""",
    "INSERT INTO session_clocks (session_id, priority, last_key) "
    "VALUES (:session_id, :priority, :count)",
    "UPDATE sessions SET task_count = task_count + :count WHERE session_id = :session_id",
    "ANALYZE",
)
FILL_POSTGRES = (
    """INSERT INTO tasks (task_id, project_id, session_id, user_id, agent, status, priority,
        fair_key, input, output, timeout_ms, attempt, created_at, started_at, finished_at,
        worker_id)
    SELECT 'task_fill' || i, %(project_id)s, %(session_id)s, %(user_id)s, 'noop', 'completed',
        %(priority)s, i, 'null', 'null', 3600000, 1, now(), now(), now(), 'bench-history'
    FROM generate_series(1, %(count)s) AS i""",
    "INSERT INTO session_clocks (session_id, priority, last_key) "
    "VALUES (%(session_id)s, %(priority)s, %(count)s)",
    "UPDATE sessions SET task_count = task_count + %(count)s WHERE session_id = %(session_id)s",
    "ANALYZE tasks, sessions, session_clocks",
)


@contextlib.asynccontextmanager
async def opened_store(url: str, scheduling: Scheduling = Scheduling.FAIR) -> AsyncIterator[Store]:
    store = create_store(url, StoreSettings(default_limits=UNLIMITED, scheduling=scheduling))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def fill(url: str, params: dict[str, Any]) -> float:
    """Run the FILL statements on their own connection; how long they took."""
    start = time.perf_counter()
    if is_postgres(url):
        import psycopg

        with psycopg.connect(url) as conn:  # one transaction, committed on the way out
            for statement in FILL_POSTGRES:
                conn.execute(statement, params)
    else:
        db = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            for statement in FILL_SQLITE:
                db.execute(statement, {**params, "now": time.time_ns() // 1000})
            db.execute("COMMIT")
        finally:
            db.close()
    return time.perf_counter() - start


async def timed_claim(store: Store, size: int) -> tuple[float, list[ClaimedTask]]:
    """One claim of ``size``: the seconds it took and what it started (never nothing: the
    queue is deep enough for every claim a measurement makes)."""
    start = time.perf_counter()
    started = await store.claim(WORKER, size)
    seconds = time.perf_counter() - start
    if not started:
        raise RuntimeError("a claim found nothing: the queue ran dry")
    return seconds, started


def measure_claim_scale(bench: Bench) -> Result:
    """The store's claim with 1,000 and with 1,000,000 finished tasks in the table.

    In-process, on the ``--database`` backend (a fresh database for each ``--claim-finished``
    count K): ``create_store`` + ``open``, a project and one session through the store's API
    (session limits out of the way); the store closed; K completed tasks of that session
    written by one ``INSERT … SELECT`` (FILL_SQLITE / FILL_POSTGRES), then ANALYZE; the store
    opened again. Then WARMUP + ``--claim-samples`` tasks submitted one at a time
    (``store.submit``, each timed), then as many claims of 1 (``store.claim``); the first
    WARMUP of each are not counted. Each claim timed from the call to its return: one
    transaction that picks the task, starts it and counts it in its session. The counts'
    stores are all open at once and take turns, a submit (or claim) on each in turn, so that
    the machine's passing stalls fall on every count alike.
    """
    result = Result("claim_scale")
    samples = bench.sizes.claim_samples
    with contextlib.ExitStack() as stack:
        urls = {
            finished: stack.enter_context(bench.fresh_database(f"claim_scale_{finished}"))
            for finished in bench.sizes.claim_finished
        }
        runs, filling = asyncio.run(claim_runs(urls, samples))
    for finished, (submits, claims) in runs.items():
        result.figures += p50_p99(f"claim, {finished:,} finished", claims)
        result.figures += p50_p99(f"submit, {finished:,} finished", submits)
        result.notes.append(
            f"{finished:,} finished tasks written and analysed in {filling[finished]:.1f} s"
        )
    fewest, most = min(runs), max(runs)
    if fewest != most:
        for q in (50, 99):
            result.figures.append(
                Figure(
                    f"claim p{q}, {most:,} / {fewest:,} finished",
                    ratio(percentile(runs[most][1], q), percentile(runs[fewest][1], q)),
                    "x",
                    Target(1.2, "< 1.2x (flat within 20%)") if q == 50 else None,
                )
            )
    result.notes.append(
        f"{samples} timed claims of 1 and submits of 1 per count (after {WARMUP} warm-up ones), "
        "in the benchmark process, all finished tasks in the measured session"
    )
    return result


async def claim_runs(
    urls: dict[int, str], samples: int
) -> tuple[dict[int, tuple[list[float], list[float]]], dict[int, float]]:
    """Per count of finished tasks: seconds per submit and per claim; and the fill seconds."""
    sessions: dict[int, tuple[str, str]] = {}
    filling: dict[int, float] = {}
    for finished, url in urls.items():
        async with opened_store(url) as store:
            project_id = await store.create_project()
            session = await store.session_for_user(project_id, "bench_user")
        sessions[finished] = project_id, session.session_id
        params = {
            "project_id": project_id,
            "session_id": session.session_id,
            "user_id": session.user_id,
            "priority": int(Priority.NORMAL),
            "count": finished,
        }
        filling[finished] = fill(url, params)
    async with contextlib.AsyncExitStack() as stack:
        # Fresh connections, which plan with the new statistics.
        stores = {f: await stack.enter_async_context(opened_store(u)) for f, u in urls.items()}
        submits: dict[int, list[float]] = {finished: [] for finished in stores}
        claims: dict[int, list[float]] = {finished: [] for finished in stores}
        for store in stores.values():
            await store.register_worker(WORKER, "bench", os.getpid())
        for _ in range(WARMUP + samples):
            for finished, store in stores.items():
                project_id, session_id = sessions[finished]
                start = time.perf_counter()
                await store.submit(project_id, session_id, [NOOP])
                submits[finished].append(time.perf_counter() - start)
        for _ in range(WARMUP + samples):
            for finished, store in stores.items():
                claims[finished].append((await timed_claim(store, 1))[0])
    runs = {f: (submits[f][WARMUP:], claims[f][WARMUP:]) for f in stores}
    return runs, filling


def measure_fair_claims(bench: Bench) -> Result:
    """The store's claim under fair share and under FIFO, with a deep queue of many sessions.

    In-process, on the ``--database`` backend; for each policy a fresh database and a store
    with ``StoreSettings(scheduling=…)`` (session limits out of the way). ``--fair-sessions``
    sessions each submit ``--fair-queued`` ``noop`` tasks through ``store.submit``, in chunks
    of SUBMIT_CHUNK, the sessions taking turns (so under fair share their keys interleave and
    consecutive claims take from different sessions; under FIFO a claim takes a run of one
    session's tasks). Both stores closed and opened again. Then, for each of
    ``--fair-claim-sizes`` in turn, after WARMUP untimed claims on each, claims of that size
    until ``--fair-claimed`` tasks are claimed from each store, a fair claim and a FIFO claim
    in turn, each timed from the call to its return. Interleaved, because a few hundred
    claims take well under a second: timed one policy after the other, a passing stall of
    the shared machine decided the ratio.
    """
    result = Result("fair_claims")
    sizes = bench.sizes
    policies = (Scheduling.FAIR, Scheduling.FIFO)
    with contextlib.ExitStack() as stack:
        urls = {
            p: stack.enter_context(bench.fresh_database(f"fair_claims_{p.value}")) for p in policies
        }
        series, claimed, submitting = asyncio.run(fair_run(urls, sizes))
    for policy in policies:
        for size, seconds in series[policy].items():
            result.figures += p50_p99(f"{policy.value} claim of {size}", seconds)
        result.notes.append(
            f"{policy.value}: {sizes.fair_sessions} x {sizes.fair_queued} tasks submitted in "
            f"{submitting[policy]:.1f} s; "
            + "; ".join(spread(size, claimed[policy][size]) for size in series[policy])
        )
    for size in sizes.fair_claim_sizes:
        fair, fifo = series[Scheduling.FAIR][size], series[Scheduling.FIFO][size]
        for q in (50, 99):
            result.figures.append(
                Figure(
                    f"claim of {size}: fair / fifo p{q}",
                    ratio(percentile(fair, q), percentile(fifo, q)),
                    "x",
                    Target(1.5, "< 1.5x") if q == 50 else None,
                )
            )
    return result


def spread(size: int, claimed: Counter[str]) -> str:
    per_session = sorted(claimed.values())
    return (
        f"claims of {size} took {sum(per_session)} tasks from {len(per_session)} sessions "
        f"({per_session[0]}-{per_session[-1]} each)"
    )


PolicySeries = dict[Scheduling, dict[int, list[float]]]
PolicyClaimed = dict[Scheduling, dict[int, Counter[str]]]


async def fair_run(
    urls: dict[Scheduling, str], sizes: Sizes
) -> tuple[PolicySeries, PolicyClaimed, dict[Scheduling, float]]:
    """Per policy: seconds per timed claim and the claimed tasks per session, by claim size;
    and the submitting time."""
    submitting: dict[Scheduling, float] = {}
    for policy, url in urls.items():
        async with opened_store(url, policy) as store:
            project_id = await store.create_project()
            sessions = [
                (await store.session_for_user(project_id, f"bench_user_{i}")).session_id
                for i in range(sizes.fair_sessions)
            ]
            start = time.perf_counter()
            await submit_in_turns(store, project_id, sessions, sizes.fair_queued)
            submitting[policy] = time.perf_counter() - start
    # Opened again, as claim_run does after its fill: the claims are timed on databases that
    # have absorbed the 100,000 submits (on SQLite, the WAL they left is checkpointed when the
    # store closes), not while a checkpoint of them competes for the same two cores.
    async with contextlib.AsyncExitStack() as stack:
        stores = {p: await stack.enter_async_context(opened_store(u, p)) for p, u in urls.items()}
        series: PolicySeries = {p: {} for p in stores}
        claimed: PolicyClaimed = {p: {} for p in stores}
        for store in stores.values():
            await store.register_worker(WORKER, "bench", os.getpid())
        for size in sizes.fair_claim_sizes:
            for policy in stores:
                claimed[policy][size] = Counter()
                series[policy][size] = []
            for store in stores.values():
                for _ in range(WARMUP):
                    await store.claim(WORKER, size)
            taken = dict.fromkeys(stores, 0)
            while min(taken.values()) < sizes.fair_claimed:
                for policy, store in stores.items():
                    seconds, started = await timed_claim(store, size)
                    series[policy][size].append(seconds)
                    taken[policy] += len(started)
                    claimed[policy][size].update(c.task.session_id for c in started)
    return series, claimed, submitting


async def submit_in_turns(
    store: Store, project_id: str, sessions: Sequence[str], per_session: int
) -> None:
    for offset in range(0, per_session, SUBMIT_CHUNK):
        chunk = [NOOP] * min(SUBMIT_CHUNK, per_session - offset)
        for session_id in sessions:
            await store.submit(project_id, session_id, chunk)
