"""Huey with its SQLite storage: the lightest queue with persistence."""

from __future__ import annotations

import os

from huey import SqliteHuey

huey = SqliteHuey(filename=os.environ.get("BENCH_HUEY_DB", "/tmp/bench-huey.db"))


@huey.task()
def noop() -> None:
    return None
