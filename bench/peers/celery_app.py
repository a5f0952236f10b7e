"""Celery with Redis as broker and result backend: the most common Python stack."""

from __future__ import annotations

import os

from celery import Celery

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")

app = Celery("bench", broker=REDIS, backend=REDIS)
app.conf.update(
    task_acks_late=False,
    worker_prefetch_multiplier=4,
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task
def noop() -> None:
    return None
