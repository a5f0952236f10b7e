"""Celery for ``bench/agent_work.py``: the agent as a task, its progress as task state.

I/O-bound work, as Celery's docs advise: the ``threads`` or ``gevent`` pool with many
workers; a prefetch of 1 (``-O fair`` territory: a worker that reserves tasks it cannot start
leaves the queue's wait to them), results and progress in Redis (``update_state``).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task

from bench.peers.work import model_loop

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")

app = Celery("bench_work", broker=REDIS, backend=REDIS)
app.conf.update(
    task_acks_late=False,
    worker_prefetch_multiplier=1,
    result_expires=600,
    broker_connection_retry_on_startup=True,
    broker_pool_limit=None,
)


@app.task(bind=True)
def work(self: Task, url: str) -> dict[str, Any]:
    def report(fraction: float, message: str) -> None:
        self.update_state(state="PROGRESS", meta={"fraction": fraction, "message": message})

    return model_loop(url, self.request.id, report)
