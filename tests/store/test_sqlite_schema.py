"""SQLite: every migration applied in order gives exactly ``schema.sql``; the file is private;
the WAL does not grow without end."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import time
from pathlib import Path

import pytest

from theazo.core import defaults
from theazo.core.models import Limits, NewTask
from theazo.core.states import Priority
from theazo.store.base import StoreSettings
from theazo.store.sqlfiles import load_text, migration_files
from theazo.store.sqlite.store import SQLiteStore, split_statements

PACKAGE = "theazo.store.sqlite"


def _schema_of(db: sqlite3.Connection) -> set[tuple[str, str, str]]:
    rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    return {(kind, name, _normalized(sql)) for kind, name, sql in rows}


def _normalized(sql: str) -> str:
    """Whitespace aside: ALTER TABLE ADD COLUMN splices ", column …" into the stored text
    right after the last column, wherever the closing parenthesis was."""
    return re.sub(r"\s*([,()])\s*", r"\1", " ".join(sql.split()))


def test_migrations_build_schema_sql(tmp_path: Path) -> None:
    migrated = sqlite3.connect(tmp_path / "migrated.db")
    for _, text in migration_files(PACKAGE):
        for statement in split_statements(text):
            migrated.execute(statement)
    fresh = sqlite3.connect(tmp_path / "fresh.db")
    for statement in split_statements(load_text(PACKAGE, "schema.sql")):
        fresh.execute(statement)
    assert _schema_of(migrated) == _schema_of(fresh)


def test_the_database_file_is_private(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "private.db")
    asyncio.run(store.open())
    asyncio.run(store.close())
    assert (tmp_path / "private.db").stat().st_mode & 0o077 == 0


def test_steady_writes_do_not_grow_the_wal_without_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passive checkpoint never catches up with a writer that never pauses, and a WAL only
    starts over (here: shrinks to nothing) once one has; the store must make room for a
    restart itself."""
    monkeypatch.setattr(defaults, "SQLITE_CHECKPOINT_SECONDS", 0.05)
    monkeypatch.setattr(defaults, "SQLITE_WAL_RESTART_FRAMES", 50)
    monkeypatch.setattr(defaults, "SQLITE_WAL_SIZE_LIMIT_BYTES", 0)
    wal = tmp_path / "steady.db-wal"
    task = NewTask(
        agent="noop", input=None, priority=Priority.NORMAL, timeout_seconds=60.0, max_attempts=1
    )
    limits = Limits(max_running=1, max_queued=10_000_000, budget=None)

    async def write_steadily() -> list[int]:
        store = SQLiteStore(tmp_path / "steady.db", StoreSettings(default_limits=limits))
        await store.open()
        try:
            project_id = await store.create_project()
            session = await store.session_for_user(project_id, "user")
            sizes: list[int] = []
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                await store.submit(project_id, session.session_id, [task] * 20)
                sizes.append(wal.stat().st_size)
            return sizes
        finally:
            await store.close()

    sizes = asyncio.run(write_steadily())
    restarts = sum(1 for before, after in itertools.pairwise(sizes) if after < before)
    assert restarts >= 3, f"the WAL started over {restarts} times; it reached {max(sizes):,} bytes"
