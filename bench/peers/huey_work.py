"""Huey for ``bench/agent_work.py``: the agent as a task, its progress a key in Huey's storage.

Redis storage with blocking reads (``BRPOP``), which suits many workers: with SQLite, every
idle worker polls the database file. Progress goes to ``huey.put`` (Huey has no progress of its
own). Greenlet workers need the process monkey-patched first: ``bench/peers/huey_gevent.py``.
"""

from __future__ import annotations

import os
from typing import Any

from huey import RedisHuey
from huey.api import Task
from redis import ConnectionPool

from bench.peers.work import model_loop

huey = RedisHuey(
    "bench-work",
    # a connection per worker: redis-py's pool stops at 100 by default
    connection_pool=ConnectionPool.from_url(
        os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"), max_connections=2000
    ),
    blocking=True,
    results=True,
)


@huey.task(context=True)
def work(url: str, task: Task) -> dict[str, Any]:
    def report(fraction: float, message: str) -> None:
        huey.put(f"progress:{task.id}", {"fraction": fraction, "message": message})

    return model_loop(url, task.id, report)
