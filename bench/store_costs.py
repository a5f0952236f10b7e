"""What the store alone costs per operation, on SQLite, in this process: a batch submit of
1,000 tasks, a submit of one, and a claim and finish of one. For comparing two versions of the
code on a busy machine, where whole-server figures move too much: run it once per version
(e.g. ``PYTHONPATH=<other checkout>/src python bench/store_costs.py``), in turn, twice."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import theazo
from theazo.core.models import Limits, NewTask, Outcome
from theazo.core.states import Priority, TaskStatus
from theazo.store.base import StoreSettings
from theazo.store.sqlite.store import SQLiteStore

BATCHES = 15
SINGLES = 1_500


async def measure() -> str:
    store = SQLiteStore(
        Path(tempfile.mkdtemp()) / "costs.db",
        StoreSettings(default_limits=Limits(1_000, 10**8, None)),
    )
    await store.open()
    project = await store.create_project()
    session_id = (await store.session_for_user(project, "u")).session_id
    batch = [
        NewTask(agent="noop", input={"i": i}, priority=Priority.NORMAL, timeout_seconds=60,
                max_attempts=1)
        for i in range(1_000)
    ]  # fmt: skip
    submits, runs, singles = [], [], []
    for _ in range(BATCHES):
        start = time.perf_counter()
        await store.submit(project, session_id, batch)
        submits.append(time.perf_counter() - start)
    for _ in range(SINGLES):
        start = time.perf_counter()
        (claimed,) = await store.claim("w", 1)
        await store.finish(claimed.task.task_id, 1, Outcome(TaskStatus.COMPLETED, output=1))
        runs.append(time.perf_counter() - start)
    for _ in range(SINGLES):
        start = time.perf_counter()
        await store.submit(project, session_id, batch[:1])
        singles.append(time.perf_counter() - start)
    await store.close()
    ms = lambda values: statistics.median(values) * 1000  # noqa: E731
    return (
        f"{Path(theazo.__file__).parents[2]}: batch of 1,000 {ms(submits):.1f} ms, "
        f"submit of 1 {ms(singles):.3f} ms, claim + finish {ms(runs):.3f} ms (medians)"
    )


if __name__ == "__main__":
    print(asyncio.run(measure()))
    sys.exit(0)
