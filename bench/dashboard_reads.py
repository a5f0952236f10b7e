"""What the dashboard's reads cost as a project's tasks grow (store/project_reads.py).

Run from the repository root, with the project installed::

    python bench/dashboard_reads.py [--database postgresql://…] [--tasks 1000,20000] [--reads 50]

In-process, on a fresh database of the backend: ``--tasks`` tasks of one project over 100
sessions (and as many of another project, which every read must pass over), all finished but
the last 1%, which stay queued (on PostgreSQL, then ANALYZEd). Then each read the dashboard
makes is timed ``--reads`` times:

* the first page of the task list (50 rows) unfiltered, filtered to ``queued`` (rare among
  the finished, so the index walk is long), and to one user;
* the deployment overview (queue counts, oldest queued task, the last hour's outcomes) and
  the nodes.

Prints the median and p90 of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…` as a script too

from bench.common import fresh_database, is_postgres
from theazo.core.models import Limits, NewTask, Outcome
from theazo.core.states import Priority, TaskStatus
from theazo.store import Store, StoreSettings, create_store
from theazo.store.base import TaskQuery

WORKER = "bench-worker"
SESSIONS = 100
UNLIMITED = Limits(max_running=1_000_000, max_queued=100_000_000, budget=None)
NEW = NewTask(
    agent="noop", input=None, priority=Priority.NORMAL, timeout_seconds=60, max_attempts=1
)
DONE = Outcome(TaskStatus.COMPLETED, output=None)


async def seed(store: Store, count: int) -> str:
    """Two projects of ``count`` tasks each; the first one's id."""
    projects = [await store.create_project() for _ in range(2)]
    await store.register_worker(WORKER, "bench", 1, slots=8)
    for project in projects:
        sessions = [
            (await store.session_for_user(project, f"u{i:03}")).session_id for i in range(SESSIONS)
        ]
        per_session = count // SESSIONS
        for session in sessions:
            await store.submit(project, session, [NEW] * per_session)
        finished = count - count // 100
        while finished > 0:
            claimed = await store.claim(WORKER, min(500, finished))
            for task in claimed:
                await store.finish(task.task.task_id, task.task.attempt, DONE)
            finished -= len(claimed)
    return projects[0]


def millis(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[round(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:7.3f} ms   p90 {p90 * 1000:7.3f} ms"


async def timed(reads: int, read: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(reads):
        start = time.perf_counter()
        await read()
        samples.append(time.perf_counter() - start)
    return samples


async def measure(url: str, count: int, reads: int) -> None:
    store = create_store(url, StoreSettings(default_limits=UNLIMITED))
    await store.open()
    try:
        project = await seed(store, count)
        if is_postgres(url):  # as autovacuum would have by now: plans from real statistics
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE tasks")
        hour_ago = store.now() - timedelta(hours=1)
        dialect = "postgres" if is_postgres(url) else "sqlite"
        cases: dict[str, Callable[[], Awaitable[object]]] = {
            "list, unfiltered": lambda: store.list_project_tasks(project, TaskQuery(), 51, None),
            "list, queued only": lambda: store.list_project_tasks(
                project, TaskQuery(statuses=(TaskStatus.QUEUED,)), 51, None
            ),
            "list, one user": lambda: store.list_project_tasks(
                project, TaskQuery(user_id="u042"), 51, None
            ),
            "overview": lambda: store.project_overview(project, hour_ago),
            "nodes": store.worker_nodes,
        }
        for name, read in cases.items():
            print(f"{dialect:<8} {count:>7,} tasks  {name:<18} {millis(await timed(reads, read))}")
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="postgresql://… (default: SQLite)")
    parser.add_argument("--tasks", default="1000,20000")
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="theazo-dashboard-") as folder:
        for count in (int(c) for c in args.tasks.split(",")):
            with fresh_database(args.database, Path(folder), "dashboard") as url:
                asyncio.run(measure(url, count, args.reads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
