"""What a node's heartbeat costs the store as its running tasks grow (issue 18: per-task
background work must cost O(sessions), not O(running tasks), per beat).

Run from the repository root, with the project installed::

    python bench/beats.py [--database postgresql://…] [--running 0,1000,10000] [--beats 50]

In-process, on a fresh database of the backend: ``--running`` tasks are submitted (over 100
sessions, limits out of the way) and claimed by one worker, then ``--beats`` beats timed:

* now: ``store.heartbeat`` (one row, the worker's lease) and ``store.session_budgets`` of the
  worker's sessions (one query), which is all a beat does;
* before: the statement a beat ran until this change, ``UPDATE tasks SET lease_expires_at
  … WHERE worker_id = … AND status = 'running' RETURNING task_id``, run on the same tables in
  its own transaction (the budget checks it also caused, one session read per running task
  every beat, are not counted).

Prints the median and p90 of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…` as a script too

from bench.common import fresh_database, is_postgres
from theazo.core.models import Limits, NewTask
from theazo.core.states import Priority
from theazo.store import Store, StoreSettings, create_store
from theazo.store.postgres.store import PostgresStore
from theazo.store.sqlite.store import SQLiteStore, to_micros

WORKER = "bench-worker"
SESSIONS = 100
UNLIMITED = Limits(max_running=1_000_000, max_queued=100_000_000, budget=None)
OLD_RENEWAL = {
    "sqlite": "UPDATE tasks SET lease_expires_at = :lease "
    "WHERE worker_id = :worker AND status = 'running' RETURNING task_id",
    "postgres": "UPDATE tasks SET lease_expires_at = %(lease)s "
    "WHERE worker_id = %(worker)s AND status = 'running' RETURNING task_id",
}


async def running(store: Store, count: int) -> list[str]:
    """``count`` tasks running under WORKER, spread over SESSIONS sessions; their sessions."""
    project = await store.create_project()
    sessions = [
        (await store.session_for_user(project, f"u{i}")).session_id for i in range(SESSIONS)
    ]
    new = NewTask(
        agent="noop", input=None, priority=Priority.NORMAL, timeout_seconds=3600, max_attempts=1
    )
    for number in range(count):
        await store.submit(project, sessions[number % SESSIONS], [new])
    await store.register_worker(WORKER, "bench", 1)
    claimed = 0
    while claimed < count:
        claimed += len(await store.claim(WORKER, min(500, count - claimed)))
    return sessions


async def old_renewal(store: Store, dialect: str) -> None:
    lease = store.now() + timedelta(seconds=store.settings.lease_seconds)
    if isinstance(store, SQLiteStore):
        async with store.transaction():
            params = {"lease": to_micros(lease), "worker": WORKER}
            store.db.execute(OLD_RENEWAL["sqlite"], params).fetchall()
    else:
        assert isinstance(store, PostgresStore)
        async with store.transaction():
            params = {"lease": lease, "worker": WORKER}
            await store._run(OLD_RENEWAL["postgres"].encode(), params, many=True)


def millis(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[round(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(ordered) * 1000:7.3f} ms   p90 {p90 * 1000:7.3f} ms"


async def measure(url: str, count: int, beats: int) -> None:
    store = create_store(url, StoreSettings(default_limits=UNLIMITED))
    await store.open()
    try:
        sessions = await running(store, count)
        dialect = "postgres" if is_postgres(url) else "sqlite"
        now_samples, before_samples = [], []
        for _ in range(beats):
            start = time.perf_counter()
            await store.heartbeat(WORKER)
            await store.session_budgets(sessions[: min(count, SESSIONS)])
            now_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            await old_renewal(store, dialect)
            before_samples.append(time.perf_counter() - start)
        print(f"{dialect:<8} {count:>6,} running   now: {millis(now_samples)}")
        print(f"{'':<8} {'':>6}           before: {millis(before_samples)}")
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="postgresql://… (default: SQLite)")
    parser.add_argument("--running", default="0,1000,10000")
    parser.add_argument("--beats", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="theazo-beats-") as folder:
        for count in (int(c) for c in args.running.split(",")):
            with fresh_database(args.database, Path(folder), "beats") as url:
                asyncio.run(measure(url, count, args.beats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
