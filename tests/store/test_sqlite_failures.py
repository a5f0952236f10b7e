"""SQLite when the database fails: a failed COMMIT announces nothing, ever; operational
failures are ``StoreUnavailable``; a database that cannot be opened says why."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.tmpfs import mounted_tmpfs, remount
from theazo.core.errors import StoreFull, StoreUnavailable
from theazo.store.sql import Event
from theazo.store.sqlite.store import SQLiteStore, store_error


async def test_a_commit_that_fails_fires_none_of_its_events(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    await store.open()
    heard: list[str] = []
    store.events.on_work_available(lambda: heard.append("work"))
    store.events.on_cancel_requested(heard.append)

    async def commit_that_fails() -> None:
        async with store.transaction():
            # A deferred foreign key is checked at COMMIT: the COMMIT itself fails, as it
            # does on a full disk, with the transaction's events already queued.
            store.db.execute("PRAGMA defer_foreign_keys = ON")
            store.db.execute(
                "INSERT INTO session_clocks (session_id, priority, last_key) "
                "VALUES ('sess_nobody', 0, 1)"
            )
            store._emit(Event.WORK)
            store._emit(Event.CANCEL, "task_never")

    try:
        with pytest.raises(sqlite3.IntegrityError):
            await commit_that_fails()
        assert not store.db.in_transaction
        await store.create_project()  # the next commit must not fire them either
        assert heard == []
        assert store.db.execute("SELECT count(*) FROM session_clocks").fetchone()[0] == 0
    finally:
        await store.close()


def test_operational_failures_are_store_unavailable_and_bugs_are_not() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    assert isinstance(store_error(full), StoreFull)
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5  # type: ignore[attr-defined]
    assert type(store_error(locked)) is StoreUnavailable
    io_error = sqlite3.OperationalError("disk I/O error")
    io_error.sqlite_errorcode = 778  # SQLITE_IOERR_WRITE  # type: ignore[attr-defined]
    assert type(store_error(io_error)) is StoreUnavailable
    bug = sqlite3.IntegrityError("CHECK constraint failed")
    assert store_error(bug) is bug
    misuse = sqlite3.ProgrammingError("wrong number of bindings")
    assert store_error(misuse) is misuse


async def test_a_database_whose_folder_cannot_be_made_says_so(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    with pytest.raises(ConnectionError, match="does not exist and cannot be made"):
        await SQLiteStore(tmp_path / "data" / "theazo.db").open()


async def test_a_database_on_a_read_only_file_system_says_so(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "mnt", size="8M") as mount:
        store = SQLiteStore(mount / "theazo.db")
        await store.open()
        await store.close()
        remount(mount, "ro")
        with pytest.raises(ConnectionError, match="mounted read-only"):
            await SQLiteStore(mount / "theazo.db").open()
