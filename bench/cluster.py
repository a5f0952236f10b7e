"""Scale-out: one API node and 1, 2, 4 … worker nodes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Sequence

from bench.common import (
    START_TIMEOUT_SECONDS,
    UNLIMITED_QUEUE,
    Bench,
    Figure,
    Node,
    Result,
    Server,
    Target,
    open_sessions,
    outcome_notes,
    ratio,
    server_span,
    submit_batches,
    wait_all,
)

TASKS = 400
NODE_CONCURRENCY = 4  # each worker node's --concurrency
TASK_SECONDS = 0.05  # what each `sleep` task sleeps
MAX_RUNNING = 1_000  # the session's limit: far above what the nodes can run at once
WAITERS = 512  # long polls open at once
# ... spread over this many SDK clients: httpx's connection pool looks at every one of its
# connections on every request, and one pool of 512 kept the benchmark's process (on the same
# two cores as the nodes) at a full core.
CLIENT_SHARDS = 8
NODE_OPTIONS = ("--max-running-per-session", str(MAX_RUNNING), *UNLIMITED_QUEUE)


def measure_cluster(bench: Bench) -> Result:
    """End-to-end throughput of ``sleep`` tasks with 1, 2, 4 worker nodes (``--cluster-nodes``).

    PostgreSQL only. ``--cluster-rounds`` rounds, each a run of every node count in turn; the
    figure for a count is the median of its runs (a run lasts a few seconds, and the shared
    machine's passing stalls moved single runs by a third; interleaved, they fall on all counts
    alike). Each run, on a fresh schema: one API node (``theazo serve
    --no-workers``) and that many worker nodes (``theazo worker --concurrency 4``), all with
    ``--max-running-per-session 1000``; ready once every worker is in the ``workers`` table.
    ``--cluster-sessions`` sessions (1 by default: every claim and every end then locks that
    one session's row), their ``maxRunning`` set to 1,000 (PATCH). Warm-up: 4 tasks per node
    in the first, waited for. Then ``--tasks`` (TASKS by default) ``sleep`` tasks of
    TASK_SECONDS, spread evenly over the sessions and submitted in batches of up to 1,000
    (``POST …/tasks/batch``), then an SDK ``wait`` on each, at most WAITERS open at once,
    spread over CLIENT_SHARDS SDK clients.
    Tasks/s: the cluster's, by server timestamps, from the first task's ``createdAt`` to the
    last one's ``completedAt`` (what the nodes did; the client on the same two cores lags
    behind it, and its own figure is in the notes). The ceiling is nodes * 4 / TASK_SECONDS
    tasks/s.
    """
    result = Result("cluster")
    if not bench.on_postgres:
        result.notes.append(
            "skipped: worker nodes share a PostgreSQL database (--database postgresql://…); "
            "on SQLite one `theazo serve` is the only node"
        )
        return result
    count = bench.count(TASKS)
    runs: dict[int, list[float]] = {nodes: [] for nodes in bench.sizes.cluster_nodes}
    for _ in range(bench.sizes.cluster_rounds):
        for nodes in runs:
            runs[nodes].append(run_cluster(bench, nodes, count, result))
    rates = {nodes: statistics.median(rounds) for nodes, rounds in runs.items()}
    for nodes, rate in rates.items():
        plural = "s" if nodes > 1 else ""
        result.figures.append(Figure(f"{nodes} worker node{plural}", rate, "tasks/s"))
        result.notes.append(
            f"{nodes} node{plural}, the rounds' tasks/s: "
            + ", ".join(f"{r:.1f}" for r in runs[nodes])
        )
    for nodes, rate in rates.items():
        if nodes != 1 and 1 in rates:
            target = Target(1.6, "≥ 1.6x", at_least=True) if nodes == 2 else None
            result.figures.append(
                Figure(f"{nodes} nodes / 1 node", ratio(rate, rates[1]), "x", target)
            )
    return result


def run_cluster(bench: Bench, nodes: int, count: int, result: Result) -> float:
    """One run with ``nodes`` worker nodes; its tasks/s (notes go to ``result``)."""
    name = f"cluster{nodes}"
    with bench.fresh_database(name) as url, contextlib.ExitStack() as stack:
        server = stack.enter_context(
            bench.server(name, workers=False, options=NODE_OPTIONS, database=url)
        )
        workers = [
            stack.enter_context(
                bench.worker(f"{name}-{i}", url, concurrency=NODE_CONCURRENCY, options=NODE_OPTIONS)
            )
            for i in range(nodes)
        ]
        wait_registered(url, workers)
        rate, note = asyncio.run(drive(server, nodes, count, bench.sizes.cluster_sessions))
        result.notes.append(f"{nodes} node{'s' if nodes > 1 else ''}: {note}")
        spread = tasks_per_worker(url)
        result.notes.append(f"{nodes} node{'s' if nodes > 1 else ''}: tasks run per node {spread}")
    return rate


async def drive(server: Server, nodes: int, count: int, sessions: int) -> tuple[float, str]:
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(server.client(WAITERS // CLIENT_SHARDS + 8))
            for _ in range(CLIENT_SHARDS)
        ]
        opened = await open_sessions(clients[0], sessions)
        for session in opened:
            await session.update_limits(max_running=MAX_RUNNING)
        # The same sessions, seen through each client.
        views = [opened, *[await open_sessions(client, sessions) for client in clients[1:]]]
        body = {"agent": "sleep", "input": {"seconds": TASK_SECONDS}}
        warmup = await submit_batches(opened[:1], [body] * (nodes * NODE_CONCURRENCY))
        await wait_all(opened[0], warmup, WAITERS)
        start = time.perf_counter()
        shares = [count // sessions + (i < count % sessions) for i in range(sessions)]
        batches = await asyncio.gather(
            *(submit_batches([s], [body] * n) for s, n in zip(opened, shares, strict=True))
        )
        submitted = time.perf_counter()
        at_once = max(1, WAITERS // (sessions * CLIENT_SHARDS))
        waited = await asyncio.gather(
            *(
                wait_all(view[i], tasks[shard::CLIENT_SHARDS], at_once)
                for i, tasks in enumerate(batches)
                for shard, view in enumerate(views)
            )
        )
        answers = [answer for answers_of_wait in waited for answer in answers_of_wait]
        end = max(moment for _, moment in answers)
    done = [task for task, _ in answers]
    rate = len(done) / server_span(done)
    ceiling = nodes * NODE_CONCURRENCY / TASK_SECONDS
    note = (
        f"{len(done)} tasks of {TASK_SECONDS:g} s, {rate:.1f} tasks/s by server timestamps "
        f"({rate / ceiling:.0%} of the ceiling of {ceiling:.0f}); all submitted after "
        f"{submitted - start:.2f} s, last answer seen by the client after {end - start:.2f} s "
        f"({len(done) / (end - start):.1f} tasks/s)"
    )
    problems = outcome_notes(done)
    return rate, "; ".join([note, *problems])


def wait_registered(url: str, workers: Sequence[Node]) -> None:
    """Until every worker node has registered in the ``workers`` table (its store is open and
    its sandboxes' zygote started)."""
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            for worker in workers:
                worker.check_alive("worker node, at start")
            row = conn.execute("SELECT count(*) FROM workers").fetchone()
            if row is not None and row[0] >= len(workers):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {row} of {len(workers)} worker nodes registered")
            time.sleep(0.05)


def tasks_per_worker(url: str) -> list[int]:
    """How many tasks each node ran (warm-up included), most first."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM tasks WHERE worker_id IS NOT NULL GROUP BY worker_id "
            "ORDER BY 1 DESC"
        ).fetchall()
    return [row[0] for row in rows]
