"""SQLite: every migration applied in order gives exactly ``schema.sql``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from theazo.store.sqlfiles import load_text, migration_files
from theazo.store.sqlite.store import split_statements

PACKAGE = "theazo.store.sqlite"


def _schema_of(db: sqlite3.Connection) -> set[tuple[str, str, str]]:
    rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    return {(kind, name, " ".join(sql.split())) for kind, name, sql in rows}


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
    import asyncio

    from theazo.store.sqlite.store import SQLiteStore

    store = SQLiteStore(tmp_path / "private.db")
    asyncio.run(store.open())
    asyncio.run(store.close())
    assert (tmp_path / "private.db").stat().st_mode & 0o077 == 0
