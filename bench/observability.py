"""What metrics and JSON logs cost, in this process, on SQLite: per task transition (counting
it, logging it as a JSON line), and per scrape of /metrics with a deep queue (its read of the
queued and running counts included). ``python bench/observability.py [QUEUED]``."""

from __future__ import annotations

import asyncio
import io
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from theazo.core.events import TaskEvent
from theazo.core.models import Limits, NewTask, Outcome
from theazo.core.states import Priority, TaskStatus
from theazo.observability.logs import JsonFormatter, TransitionLog
from theazo.observability.metrics import Metrics, Readings
from theazo.observability.transitions import transitions
from theazo.store.base import StoreSettings
from theazo.store.sqlite.store import SQLiteStore

RUNS = 1_000  # tasks submitted, started and finished one by one, for their event batches
REPEATS = 20  # passes over the recorded batches, and scrapes


async def measure(queued: int) -> str:
    store = SQLiteStore(
        Path(tempfile.mkdtemp()) / "observability.db",
        StoreSettings(default_limits=Limits(10**6, 10**8, None)),
    )
    await store.open()
    batches: list[Sequence[TaskEvent]] = []
    store.events.on_committed_here(batches.append)
    project = await store.create_project()
    session_id = (await store.session_for_user(project, "u")).session_id
    one = NewTask(agent="noop", input=None, priority=Priority.NORMAL, timeout_seconds=60,
                  max_attempts=1)  # fmt: skip
    for _ in range(RUNS):
        await store.submit(project, session_id, [one])
        (claimed,) = await store.claim("w", 1)
        await store.finish(claimed.task.task_id, 1, Outcome(TaskStatus.COMPLETED, output=1))
    count = sum(1 for batch in batches for _ in transitions(batch))

    metrics = Metrics(
        Readings(store.unfinished_by_priority, lambda: 0, lambda: 0, lambda: 0, lambda: None)
    )
    counting = _per_transition(metrics.on_committed, batches, count)
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("theazo.tasks")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging_ = _per_transition(TransitionLog(logging.INFO).on_committed, batches, count)

    for start in range(0, queued, 1_000):
        size = min(1_000, queued - start)
        await store.submit(project, session_id, [one] * size)
    scrapes = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        await metrics.scrape()
        scrapes.append(time.perf_counter() - began)
    await store.close()
    return (
        f"per transition: counted {counting:.1f} µs, logged as JSON {logging_:.1f} µs "
        f"({count} transitions); a scrape with {queued:,} queued "
        f"{statistics.median(scrapes) * 1000:.1f} ms (median of {REPEATS})"
    )


def _per_transition(
    hook: Callable[[Sequence[TaskEvent]], None],
    batches: Sequence[Sequence[TaskEvent]],
    transitions_count: int,
) -> float:
    """Microseconds per transition, the best of a few passes."""
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(REPEATS // 5):
            for batch in batches:
                hook(batch)
        best = min(best, (time.perf_counter() - began) / (REPEATS // 5))
    return best / transitions_count * 1e6


if __name__ == "__main__":
    print(asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
