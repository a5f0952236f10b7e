"""Huey with its SQLite storage: the lightest queue with persistence."""

from __future__ import annotations

import os

from huey import SqliteHuey

# store_none: a no-op returns None, and the client waits on that result like any other.
huey = SqliteHuey(filename=os.environ.get("BENCH_HUEY_DB", "/tmp/bench-huey.db"), store_none=True)


@huey.task()
def noop() -> None:
    return None
