"""Storage: the ``Store`` interface and the backends that implement it."""

from __future__ import annotations

from pathlib import Path

from theazo.core.clock import Clock
from theazo.store.base import Store, StoreSettings


class UnsupportedDatabase(ValueError):
    pass


def sqlite_path(url: str) -> Path:
    """``sqlite:///relative/file.db`` or ``sqlite:////absolute/file.db`` (SQLAlchemy's form)."""
    path = url.removeprefix("sqlite://")
    if path.startswith("/"):
        path = path[1:]
    if not path or path == ":memory:":
        raise UnsupportedDatabase(
            "give SQLite a file, e.g. sqlite:///theazo.db; an in-memory database cannot be "
            "shared with the workers"
        )
    return Path(path)


def create_store(
    url: str,
    settings: StoreSettings,
    clock: Clock | None = None,
    *,
    sqlite_synchronous: str = "NORMAL",
) -> Store:
    """The store for a database URL (``sqlite:///…`` or ``postgresql://…``), not yet opened."""
    check_url(url)
    if url.startswith("sqlite://"):
        from theazo.store.sqlite.store import SQLiteStore

        return SQLiteStore(sqlite_path(url), settings, synchronous=sqlite_synchronous, clock=clock)
    from theazo.store.postgres.store import PostgresStore

    return PostgresStore(url, settings, clock=clock)


def check_url(url: str) -> None:
    """Raise ``UnsupportedDatabase`` unless ``url`` names a database a store is made for."""
    if not url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise UnsupportedDatabase(
            f"{url!r} is not a database URL: use sqlite:///path/to/file.db or "
            "postgresql://user@host/db"
        )


__all__ = [
    "Store",
    "StoreSettings",
    "UnsupportedDatabase",
    "check_url",
    "create_store",
    "sqlite_path",
]
