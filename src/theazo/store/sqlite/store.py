"""The embedded store: one SQLite file in WAL mode, one connection, one writer.

All calls run on the server's event loop thread. A query is a plain synchronous call, so a
transaction never yields to the loop and transactions never interleave; SQLite commits in tens
of microseconds, which is cheaper than handing every call to a thread. Writes take
``BEGIN IMMEDIATE`` so another process (``theazo keys create``) waits for the lock instead of
failing half-way. The operations themselves are in ``theazo.store.sql``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from theazo.core import defaults
from theazo.core.clock import Clock
from theazo.core.errors import StoreFull, StoreUnavailable
from theazo.core.models import Session, Task
from theazo.core.rates import Limited, MemoryRates, RateLimits
from theazo.store import rows
from theazo.store.base import StoreSettings
from theazo.store.sql import EventBatch, JsonValue, Row, SQLStore, fire
from theazo.store.sqlfiles import load_queries, load_text, migration_files

log = logging.getLogger("theazo.store")

_PACKAGE = "theazo.store.sqlite"
Q = load_queries(_PACKAGE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def _adapt(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_micros(value)
    if isinstance(value, JsonValue):
        return json.dumps(value.value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, list | tuple):  # an IN list, read back with json_each()
        return json.dumps(list(value))
    return value


class SQLiteStore(SQLStore):
    single_node = True
    safety_sweep_seconds = None

    def __init__(
        self,
        path: str | Path,
        settings: StoreSettings | None = None,
        *,
        synchronous: str = "NORMAL",
        clock: Clock | None = None,
    ) -> None:
        super().__init__(settings or StoreSettings(), clock)
        self.path = Path(path)
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._pending: list[tuple[str, str | EventBatch | None]] = []
        # The deployment's only node: its sessions' model-call windows are in its memory.
        self._rates = MemoryRates()

    async def open(self) -> None:
        try:
            self._connect()
        except (sqlite3.Error, OSError) as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            raise ConnectionError(why_sqlite_cannot_open(self.path, exc)) from exc
        self._checkpointer = Checkpointer(self.path)
        self._checkpointer.start()

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self._synchronous_level()}")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA cache_size = -{defaults.SQLITE_CACHE_KIB:d}")
        # Checkpoints copy the WAL into the database file and fsync it: milliseconds a time,
        # which on this connection would stall the event loop. A thread does them instead.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute(f"PRAGMA journal_size_limit = {defaults.SQLITE_WAL_SIZE_LIMIT_BYTES:d}")
        self._db = db
        os.chmod(self.path, 0o600)  # the database holds key hashes and users' data
        self._migrate()

    def _synchronous_level(self) -> str:
        level = self._synchronous.upper()
        if level not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"unknown SQLite synchronous level {self._synchronous!r}")
        return level

    def _migrate(self) -> None:
        """A new database gets ``schema.sql``; an older one the migrations it has not had."""
        migrations = migration_files(_PACKAGE)
        latest = migrations[-1][0]
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            scripts = (
                [load_text(_PACKAGE, "schema.sql")]
                if version == 0
                else [text for number, text in migrations if number > version]
            )
            for script in scripts:
                for statement in split_statements(script):
                    db.execute(statement)
            if version < latest:
                db.execute(f"PRAGMA user_version = {latest:d}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._checkpointer is not None and self._checkpointer.restart_due:
            await self._checkpointer.hold_writes()
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        try:
            yield
        except BaseException:
            self._abandon(db)
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            # A COMMIT that failed (a full disk, an I/O error) changed nothing: what the
            # transaction meant to announce must never be heard, now or after a later commit.
            self._abandon(db)
            raise store_error(exc) from exc
        pending, self._pending = self._pending, []
        fire(self, pending)

    def _abandon(self, db: sqlite3.Connection) -> None:
        """Roll back whatever is left of a transaction, and forget its events."""
        self._pending.clear()
        if db.in_transaction:  # SQLite rolls some failures back by itself
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                log.warning("a ROLLBACK failed; the connection stays usable", exc_info=True)

    def _emit(self, event: str, task_id: str | EventBatch | None = None) -> None:
        self._pending.append((event, task_id))

    async def _one(self, query: str, **params: Any) -> Row | None:
        try:
            row: Row | None = self.db.execute(Q[query], _adapted(params)).fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        return row

    async def _all(self, query: str, **params: Any) -> list[Row]:
        try:
            return self.db.execute(Q[query], _adapted(params)).fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def _task(self, row: Row) -> Task:
        return rows.task_from_row(row, from_micros)

    def _time(self, value: Any) -> datetime | None:
        moment: datetime | None = from_micros(value)
        return moment

    def _json(self, value: Any) -> Any:
        return None if value is None else json.loads(value)

    def _session(self, row: Row) -> Session:
        return rows.session_from_row(self, row, from_micros)

    # --- model-call rates: in memory (one node) ---------------------------------------------
    async def count_model_call(self, session_id: str, limits: RateLimits) -> Limited | None:
        return self._rates.count_call(session_id, limits, self.now().timestamp())

    async def count_model_tokens(self, session_id: str, limits: RateLimits, tokens: int) -> None:
        self._rates.count_tokens(session_id, limits, tokens, self.now().timestamp())


class Checkpointer(threading.Thread):
    """Checkpoints the WAL from a thread of its own, on a connection of its own, so that the
    fsync it ends with never blocks the event loop.

    Mostly PASSIVE: it never waits for, nor blocks, the writer. But a WAL only starts over
    from its beginning once a checkpoint has copied all of it, which under steady writes a
    passive one never does: new frames land while it copies. The WAL then grows without end
    (560 MB for a 26 MB database after 100,000 submits) and every read and commit slows
    down with it. So when a passive checkpoint leaves more than SQLITE_WAL_RESTART_FRAMES
    behind, it asks for a RESTART, which needs the writer to pause: a writer never does on
    its own, since the event loop begins its next transaction as soon as the last one ends.
    The store's next transaction therefore awaits ``hold_writes`` (the loop goes on serving
    everything else) while the RESTART copies what is left and lets the next commit start
    the WAL over.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(name="theazo-sqlite-checkpoint", daemon=True)
        self._path = path
        self._stopping = threading.Event()
        self.restart_due = False  # read by the event loop before each transaction
        self._writes_held = threading.Event()
        self._restarted = threading.Event()
        self._hold_lock: asyncio.Lock | None = None

    def run(self) -> None:
        db = sqlite3.connect(
            self._path,
            isolation_level=None,
            check_same_thread=False,
            timeout=defaults.SQLITE_RESTART_WAIT_SECONDS,
        )
        try:
            while not self._stopping.wait(defaults.SQLITE_CHECKPOINT_SECONDS):
                self._checkpoint(db)
            self._checkpoint(db)
        finally:
            self._release_writer()
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        try:
            _, wal_frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if wal_frames > defaults.SQLITE_WAL_RESTART_FRAMES:
                self._restart(db)
        except sqlite3.Error:  # busy or closing: the next round copies it
            log.debug("a WAL checkpoint did not run", exc_info=True)

    def _restart(self, db: sqlite3.Connection) -> None:
        self._writes_held.clear()
        self._restarted.clear()
        self.restart_due = True
        # An idle writer never comes to hold its writes; the RESTART then meets no writer.
        self._writes_held.wait(defaults.SQLITE_CHECKPOINT_SECONDS)
        try:
            db.execute("PRAGMA wal_checkpoint(RESTART)")
        finally:
            self._release_writer()

    def _release_writer(self) -> None:
        self.restart_due = False
        self._restarted.set()

    async def hold_writes(self) -> None:
        """Begin no write until the due RESTART is over (one waiter holds, the rest queue)."""
        if self._hold_lock is None:
            self._hold_lock = asyncio.Lock()
        async with self._hold_lock:
            if not self.restart_due:
                return
            self._writes_held.set()
            await asyncio.to_thread(self._restarted.wait, defaults.SQLITE_RESTART_WAIT_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
        self.join()


_SQLITE_FULL = 13  # the primary result codes that tell a full disk from other failures
_SQLITE_CORRUPT = 11


def store_error(exc: sqlite3.Error) -> Exception:
    """What a failed SQLite call means to the rest of Theazo. An operational failure (busy,
    locked, I/O, a full disk, a file that cannot be opened) is ``StoreUnavailable``; a
    constraint or a misuse is a bug of ours and stays what it is."""
    if not isinstance(exc, sqlite3.OperationalError) and type(exc) is not sqlite3.DatabaseError:
        return exc
    primary = _primary_code(exc)
    if primary == _SQLITE_FULL:
        return StoreFull(
            f"the SQLite database's disk is full: {exc}",
            retry_after_seconds=defaults.STORE_FULL_RETRY_AFTER_SECONDS,
        )
    if primary == _SQLITE_CORRUPT:
        log.error("the SQLite database reports corruption: %s", exc)
    return StoreUnavailable(
        f"the SQLite database failed: {exc}",
        retry_after_seconds=defaults.STORE_RETRY_AFTER_SECONDS,
    )


def _primary_code(exc: BaseException) -> int:
    """SQLite's primary result code (an extended code's low byte), 0 when there is none."""
    code: int = getattr(exc, "sqlite_errorcode", None) or 0
    return code & 0xFF


def _adapted(params: dict[str, Any]) -> dict[str, Any]:
    return {name: _adapt(value) for name, value in params.items()}


def why_sqlite_cannot_open(path: Path, exc: BaseException) -> str:
    """One line an operator can act on, instead of SQLite's "unable to open database file"."""
    where = f"cannot open the SQLite database {path}"
    folder = path.parent
    if not folder.is_dir():
        return f"{where}: its folder {folder} does not exist and cannot be made"
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return f"{where}: the file system holding {folder} is mounted read-only"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{where}: the file is not readable and writable by this user"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"{where}: its folder {folder} is not writable by this user, and SQLite keeps "
            f"its write-ahead log beside the file ({path.name}-wal, {path.name}-shm)"
        )
    disk_full = _primary_code(exc) == _SQLITE_FULL
    if disk_full or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return f"{where}: the disk is full"
    return f"{where}: {exc}"


def split_statements(script: str) -> list[str]:
    """Split a script into whole statements, as SQLite's own parser sees them."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    leftover = [ln for ln in current.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise ValueError(f"incomplete SQL statement: {current.strip()[:80]}")
    return statements
