"""The scale-out store: PostgreSQL through psycopg 3 (async) and a connection pool.

Several nodes share one database. Claims take rows with ``FOR UPDATE SKIP LOCKED`` and lock the
sessions they start tasks in, so per-session limits hold across nodes. Every transaction that
changes something other nodes care about sends ``pg_notify`` before it commits (PostgreSQL
delivers notifications only on commit, never for a rolled-back transaction); each node LISTENs
on a dedicated connection and turns what it hears into local events. A dropped listener
reconnects and then wakes everything that waits, since notifications sent meanwhile are lost;
the dispatcher's slow safety sweep covers the same gap for claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from theazo.core import defaults
from theazo.core.clock import Clock
from theazo.core.errors import StoreFull, StoreUnavailable
from theazo.core.models import Session, Task
from theazo.core.rates import Limited, RateBucket, RateLimits
from theazo.store import rows
from theazo.store.base import StoreSettings
from theazo.store.sql import Event, EventBatch, JsonValue, Row, SQLStore, fire, parse_notice
from theazo.store.sqlfiles import load_queries, load_text, migration_files

log = logging.getLogger("theazo.store")

_PACKAGE = "theazo.store.postgres"
Q = {name: text.encode() for name, text in load_queries(_PACKAGE).items()}
Connection = psycopg.AsyncConnection[dict[str, Any]]

_current: contextvars.ContextVar[Connection | None] = contextvars.ContextVar(
    "theazo_pg_connection", default=None
)
Pending = list[tuple[str, str | EventBatch | None]]
_pending: contextvars.ContextVar[Pending | None] = contextvars.ContextVar(
    "theazo_pg_events", default=None
)
Range = tuple[int, int, int, str, str, str]  # task pk, first and last id, task, session, project


def _same(value: Any) -> Any:
    return value


def _adapt(value: Any) -> Any:
    return Json(value.value) if isinstance(value, JsonValue) else value


class PostgresStore(SQLStore):
    single_node = False
    safety_sweep_seconds = defaults.SAFETY_SWEEP_SECONDS

    def __init__(
        self, url: str, settings: StoreSettings | None = None, *, clock: Clock | None = None
    ) -> None:
        super().__init__(settings or StoreSettings(), clock)
        self.url = url
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._pool_check: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._channels: dict[str, str] = {}
        # Our own notifications come back to our listener; the events already fired here.
        self._origin = uuid.uuid4().hex[:12]
        # Other nodes' task events, announced by id ranges, read here in order (one reader).
        self._notices: asyncio.Queue[list[Range]] = asyncio.Queue(defaults.PG_EVENT_NOTICES_QUEUED)
        self._notice_reader: asyncio.Task[None] | None = None
        self._rates_prune_at: int | None = None  # the bucket of the next prune

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            min_size=defaults.PG_POOL_MIN,
            max_size=defaults.PG_POOL_MAX,
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": round(defaults.PG_CONNECT_TIMEOUT_SECONDS),
            },
            open=False,
            name="theazo",
            # A connection the server closed (a restart, a failover, pg_terminate_backend)
            # waits in the pool looking healthy; checked before use, it is replaced instead
            # of failing the next transaction.
            check=AsyncConnectionPool.check_connection,
            timeout=defaults.PG_POOL_WAIT_SECONDS,
        )
        try:
            await pool.open(wait=True, timeout=defaults.PG_CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout as exc:
            await pool.close()
            raise ConnectionError(f"cannot connect to PostgreSQL at {_safe(self.url)}") from exc
        self._pool = pool
        await self._migrate()
        schema = await self._one_raw(b"SELECT current_schema() AS schema")
        prefix = f"theazo_{schema['schema'] if schema else 'public'}"
        self._channels = {
            Event.WORK: f"{prefix}_work",
            Event.FINISHED: f"{prefix}_done",
            Event.CANCEL: f"{prefix}_cancel",
            Event.DELIVERY: f"{prefix}_delivery",
            Event.TASK_EVENTS: f"{prefix}_events",
        }
        self._notice_reader = asyncio.get_running_loop().create_task(self._read_notices())
        self._listener = asyncio.get_running_loop().create_task(self._listen())
        await asyncio.wait_for(self._listening.wait(), defaults.PG_CONNECT_TIMEOUT_SECONDS)

    async def _migrate(self) -> None:
        """Bring the schema up to date, once, even when several nodes start together."""
        migrations = migration_files(_PACKAGE)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                b"SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.theazo'))"
            )
            await conn.execute(
                b"CREATE TABLE IF NOT EXISTS theazo_migrations ("
                b" version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute(b"SELECT version FROM theazo_migrations")
            applied = {row["version"] for row in await cursor.fetchall()}
            if not applied:
                await conn.execute(load_text(_PACKAGE, "schema.sql").encode())
                pending = [number for number, _ in migrations]
            else:
                pending = []
                for number, text in migrations:
                    if number not in applied:
                        await conn.execute(text.encode())
                        pending.append(number)
            for number in pending:
                await conn.execute(
                    b"INSERT INTO theazo_migrations (version) VALUES (%s)", (number,)
                )

    async def close(self) -> None:
        for background in (self._listener, self._notice_reader, self._pool_check):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        self._listener = self._notice_reader = self._pool_check = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    # --- transactions and queries ----------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if _current.get() is not None:  # already inside one: join it
            yield
            return
        events: Pending = []
        try:
            async with self.pool.connection() as conn:
                connection_token = _current.set(conn)
                events_token = _pending.set(events)
                try:
                    async with conn.transaction():
                        yield
                        await self._notify(conn, events)
                finally:
                    _current.reset(connection_token)
                    _pending.reset(events_token)
        except psycopg.Error as exc:  # the pool, the COMMIT, the ROLLBACK
            raise self._failed(exc) from exc
        fire(self, events)  # only once the COMMIT succeeded

    async def _notify(self, conn: Connection, events: Pending) -> None:
        """Send the transaction's notifications, once each and in order, in one statement: a
        round trip each would lengthen every transaction that holds a lock."""
        params: list[str] = []
        for event, payload in dict.fromkeys(events):
            texts = (
                payload.notices(defaults.PG_NOTIFY_PAYLOAD_CHARS)
                if isinstance(payload, EventBatch)
                else [payload or ""]
            )
            for text in texts:
                params += [self._channels[event], f"{self._origin}:{text}"]
        if not params:
            return
        calls = b", ".join([b"pg_notify(%s, %s)"] * (len(params) // 2))
        await conn.execute(b"SELECT " + calls, params)

    def _emit(self, event: str, task_id: str | EventBatch | None = None) -> None:
        events = _pending.get()
        if events is None:
            raise RuntimeError("events are emitted inside a transaction")
        events.append((event, task_id))

    async def _one(self, query: str, **params: Any) -> Row | None:
        return await self._run(Q[query], params, many=False)  # type: ignore[return-value]

    async def _all(self, query: str, **params: Any) -> list[Row]:
        return await self._run(Q[query], params, many=True)  # type: ignore[return-value]

    async def _one_raw(self, statement: bytes) -> Row | None:
        return await self._run(statement, {}, many=False)  # type: ignore[return-value]

    async def _run(
        self, statement: bytes, params: dict[str, Any], *, many: bool
    ) -> Row | list[Row] | None:
        adapted = {name: _adapt(value) for name, value in params.items()}
        conn = _current.get()
        try:
            if conn is not None:
                cursor = await conn.execute(statement, adapted)
                return await _fetch(cursor, many)
            async with self.pool.connection() as own:  # a read on its own: commits at once
                cursor = await own.execute(statement, adapted)
                return await _fetch(cursor, many)
        except psycopg.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: psycopg.Error) -> Exception:
        """The error to raise for ``exc``. A lost connection rarely dies alone (a restart or a
        failover takes them all): the pool's idle connections are checked at once, so the
        next requests get live ones instead of each finding a dead one, and waiting after
        it (the pool backs off a second and more between the checks of one request)."""
        error = store_error(exc)
        idle = self._pool_check is None or self._pool_check.done()
        if isinstance(error, StoreUnavailable) and self._pool is not None and idle:
            self._pool_check = asyncio.get_running_loop().create_task(self._check_pool())
        return error

    async def _check_pool(self) -> None:
        try:
            await self.pool.check()
        except Exception as exc:  # the pool reconnects on its own; this only hastens it
            log.debug("checking the pool's connections failed: %s", exc)

    async def _claim_sessions(self, candidates: Sequence[Row]) -> dict[str, Row]:
        # Other nodes may be claiming in the same sessions: lock their rows (in one order,
        # so two claims cannot deadlock) and read the running counts again under the lock.
        session_ids = sorted({row["session_id"] for row in candidates})
        locked = await self._all("sessions_by_ids", session_ids=session_ids)
        return {row["session_id"]: row for row in locked}

    def _task(self, row: Row) -> Task:
        return rows.task_from_row(row, _same, _same)

    def _time(self, value: Any) -> datetime | None:
        moment: datetime | None = value
        return moment

    def _json(self, value: Any) -> Any:
        return value

    def _session(self, row: Row) -> Session:
        return rows.session_from_row(self, row, _same)

    # --- model-call rates: in the database, shared by the nodes ----------------------------
    async def count_model_call(self, session_id: str, limits: RateLimits) -> Limited | None:
        now = self.now().timestamp()
        first = limits.first_bucket(now)
        async with self.transaction():
            await self._one("lock_model_call_rates", session_id=session_id)
            window = await self._all("model_call_window", session_id=session_id, first_bucket=first)
            limited = limits.judge(
                (RateBucket(row["bucket"], row["requests"], row["tokens"]) for row in window), now
            )
            if limited is None:
                await self._one(
                    "count_model_call", session_id=session_id, bucket=limits.bucket(now)
                )
        await self._prune_model_call_rates(limits, now)
        return limited

    async def count_model_tokens(self, session_id: str, limits: RateLimits, tokens: int) -> None:
        if tokens > 0:
            bucket = limits.bucket(self.now().timestamp())
            await self._one(
                "count_model_tokens", session_id=session_id, bucket=bucket, tokens=tokens
            )

    async def _prune_model_call_rates(self, limits: RateLimits, now: float) -> None:
        """Once a window, delete every session's buckets that have left theirs: each node that
        counts calls does, so the table holds about a minute of the deployment's calls."""
        bucket = limits.bucket(now)
        if self._rates_prune_at is not None and bucket < self._rates_prune_at:
            return
        self._rates_prune_at = bucket + limits.buckets
        await self._one("prune_model_call_rates", first_bucket=limits.first_bucket(now))

    # --- notifications from other nodes ----------------------------------------------------
    async def _listen(self) -> None:
        """Hold a LISTEN connection open for ever; reconnect with back-off when it drops.

        A connection can die without a word (a failover, a cut network): one that has been
        silent for a while is asked a question, and a failed answer counts as a drop.
        """
        delay = defaults.PG_LISTEN_RETRY_SECONDS
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # psycopg's errors, and anything a dead socket gives
                log.warning(
                    "the notification connection failed (%s); reconnecting in %ss",
                    _first_line(exc),
                    delay,
                )
            await asyncio.sleep(delay)

    async def _listen_once(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, connect_timeout=round(defaults.PG_CONNECT_TIMEOUT_SECONDS)
        )
        async with conn:
            for channel in self._channels.values():
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            if self._listening.is_set():  # a reconnect: whatever was sent meanwhile is lost
                self.events.work_available()
                self.events.resync()
                self.events.resync_subscriptions()
            self._listening.set()
            while True:
                async for notify in conn.notifies(timeout=defaults.PG_LISTEN_CHECK_SECONDS):
                    self._on_notify(notify.channel, notify.payload)
                await conn.execute(b"SELECT 1")  # silent for a while: still there?

    def _on_notify(self, channel: str, payload: str) -> None:
        origin, _, payload = payload.partition(":")
        if origin == self._origin:
            return
        if channel == self._channels[Event.WORK]:
            self.events.work_available()
        elif channel == self._channels[Event.FINISHED]:
            self.events.task_finished(payload)
        elif channel == self._channels[Event.CANCEL]:
            self.events.cancel_requested(payload)
        elif channel == self._channels[Event.DELIVERY]:
            self.events.delivery_ready()
        elif channel == self._channels[Event.TASK_EVENTS]:
            self._on_events_notice(payload)

    def _on_events_notice(self, payload: str) -> None:
        wanted = [r for r in parse_notice(payload) if self.events.wants(r[3], r[4], r[5])]
        if not wanted:
            return  # nobody here follows these tasks: nothing to read
        try:
            self._notices.put_nowait(wanted)
        except asyncio.QueueFull:  # far behind: every stream reads from its cursor instead
            self.events.resync_subscriptions()

    async def _read_notices(self) -> None:
        """Read what other nodes announced, in the order they announced it, for this node's
        streams: one read serves every stream that follows the same tasks."""
        while True:
            ranges = await self._notices.get()
            while not self._notices.empty() and len(ranges) < defaults.PG_EVENT_RANGES_PER_READ:
                ranges += self._notices.get_nowait()
            try:
                events = await self.events_in_ranges([r[:3] for r in ranges])
            except (psycopg.Error, PoolTimeout):
                log.warning("could not read other nodes' task events; streams read them again")
                self.events.resync_subscriptions()
                continue
            self.events.task_events(events)


def store_error(exc: psycopg.Error) -> Exception:
    """What a failed call means to the rest of Theazo: a lost or refused connection, a pool
    that cannot hand one out, a server shutting down, a serialization failure, a full disk
    are ``StoreUnavailable`` (trying again may work); a constraint or a bad statement is a
    bug of ours and stays what it is."""
    if isinstance(exc, psycopg.errors.DiskFull):
        return StoreFull(
            f"PostgreSQL's disk is full: {_first_line(exc)}",
            retry_after_seconds=defaults.STORE_FULL_RETRY_AFTER_SECONDS,
        )
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(
            f"PostgreSQL failed: {_first_line(exc)}",
            retry_after_seconds=defaults.STORE_RETRY_AFTER_SECONDS,
        )
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _fetch(cursor: psycopg.AsyncCursor[dict[str, Any]], many: bool) -> Row | list[Row] | None:
    if cursor.description is None:  # a statement that returns no rows
        return [] if many else None
    if many:
        return list(await cursor.fetchall())
    return await cursor.fetchone()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the given URL"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
