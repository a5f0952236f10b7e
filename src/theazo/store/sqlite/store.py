"""The embedded store: one SQLite file in WAL mode, one connection, one writer.

All calls run on the server's event loop thread. Each method does its SQL without awaiting in
between, so transactions never interleave; SQLite commits in tens of microseconds, which is
cheaper than handing every call to a thread. Writes take ``BEGIN IMMEDIATE`` so another process
(``theazo keys create``) waits for the lock instead of failing half-way.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from theazo.core import cost, defaults, ids
from theazo.core.errors import BudgetExhausted, InvalidTransition, LimitReached, NotFound
from theazo.core.models import (
    ClaimedTask,
    NewTask,
    Outcome,
    Session,
    Task,
    TaskError,
)
from theazo.core.states import ErrorCode, Priority, TaskStatus
from theazo.store.base import (
    UNSET,
    Candidate,
    LimitsPatch,
    Store,
    StoreSettings,
    choose_claims,
    fair_keys,
)
from theazo.store.sqlfiles import load_queries, load_text, migration_files

_PACKAGE = "theazo.store.sqlite"
Q = load_queries(_PACKAGE)
Row = sqlite3.Row


def to_micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def task_from_row(row: Row) -> Task:
    error = None
    if row["error_code"] is not None:
        error = TaskError(row["error_code"], row["error_message"] or "")
    created_at = from_micros(row["created_at"])
    assert created_at is not None
    return Task(
        id=row["id"],
        task_id=row["task_id"],
        project_id=row["project_id"],
        session_id=row["session_id"],
        user_id=row["user_id"],
        agent=row["agent"],
        status=TaskStatus(row["status"]),
        priority=Priority(row["priority"]),
        input=_loads(row["input"]),
        progress=row["progress"],
        message=row["message"],
        output=_loads(row["output"]),
        error=error,
        compute_micros=row["compute_micros"],
        charged_micros=row["charged_micros"],
        compute_price_micros=row["compute_price_micros"],
        webhook_url=row["webhook_url"],
        webhook_events=tuple(json.loads(row["webhook_events"])),
        metadata=json.loads(row["metadata"]),
        timeout_seconds=row["timeout_ms"] / 1000,
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        idempotency_key=row["idempotency_key"],
        created_at=created_at,
        started_at=from_micros(row["started_at"]),
        finished_at=from_micros(row["finished_at"]),
        worker_id=row["worker_id"],
        fair_key=row["fair_key"],
    )


class SQLiteStore(Store):
    single_node = True
    safety_sweep_seconds = None

    def __init__(
        self,
        path: str | Path,
        settings: StoreSettings | None = None,
        *,
        synchronous: str = "NORMAL",
        clock: Any = None,
    ) -> None:
        super().__init__(settings or StoreSettings(), clock)
        self.path = Path(path)
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._after_commit: list[tuple[str, str | None]] = []

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        self.open_sync()

    def open_sync(self) -> None:
        """Connect and migrate; usable without an event loop (the CLI's key commands)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {self._synchronous_level()}")
        db.execute("PRAGMA foreign_keys = ON")
        self._db = db
        os.chmod(self.path, 0o600)  # the database holds key hashes and users' data
        self._migrate()

    def _synchronous_level(self) -> str:
        level = self._synchronous.upper()
        if level not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"unknown SQLite synchronous level {self._synchronous!r}")
        return level

    def _migrate(self) -> None:
        migrations = migration_files(f"{_PACKAGE}")
        latest = migrations[-1][0]
        with self._write():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _split_statements(load_text(_PACKAGE, "schema.sql")):
                    self.db.execute(statement)
            else:
                for number, text in migrations:
                    if number > version:
                        for statement in _split_statements(text):
                            self.db.execute(statement)
            if version < latest:
                self.db.execute(f"PRAGMA user_version = {latest:d}")

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; events queued inside it fire only after COMMIT."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            self._after_commit.clear()
            raise
        db.execute("COMMIT")
        self._fire_events()

    def _emit(self, event: str, task_id: str | None = None) -> None:
        self._after_commit.append((event, task_id))

    def _fire_events(self) -> None:
        pending, self._after_commit = self._after_commit, []
        work = False
        for event, task_id in pending:
            if event == "work":
                work = True
            elif event == "finished" and task_id is not None:
                self.events.task_finished(task_id)
            elif event == "cancel" and task_id is not None:
                self.events.cancel_requested(task_id)
        if work:
            self.events.work_available()

    def _one(self, query: str, **params: Any) -> Row | None:
        row: Row | None = self.db.execute(Q[query], params).fetchone()
        return row

    def _all(self, query: str, **params: Any) -> list[Row]:
        return self.db.execute(Q[query], params).fetchall()

    def _now(self) -> tuple[datetime, int]:
        now = self.now()
        return now, to_micros(now)

    # --- projects and keys -----------------------------------------------------------------
    async def create_project(self) -> str:
        return self.create_project_sync()

    def create_project_sync(self) -> str:
        project_id = ids.new_project_id()
        with self._write():
            self._one("insert_project", project_id=project_id, now=self._now()[1])
        return project_id

    async def project_exists(self, project_id: str) -> bool:
        return self._one("project_exists", project_id=project_id) is not None

    async def add_api_key(self, project_id: str, key_hash: str, hint: str) -> None:
        self.add_api_key_sync(project_id, key_hash, hint)

    def add_api_key_sync(self, project_id: str, key_hash: str, hint: str) -> None:
        with self._write():
            self._one(
                "insert_api_key",
                key_hash=key_hash,
                project_id=project_id,
                hint=hint,
                now=self._now()[1],
            )

    async def project_for_key(self, key_hash: str) -> str | None:
        return self.project_for_key_sync(key_hash)

    def project_for_key_sync(self, key_hash: str) -> str | None:
        row = self._one("key_by_hash", key_hash=key_hash)
        if row is None or not ids.hashes_match(row["key_hash"], key_hash):
            return None
        project_id: str = row["project_id"]
        return project_id

    async def count_api_keys(self) -> int:
        return self.count_api_keys_sync()

    def count_api_keys_sync(self) -> int:
        row = self._one("count_api_keys")
        assert row is not None
        count: int = row[0]
        return count

    # --- sessions --------------------------------------------------------------------------
    def _session_from_row(self, row: Row) -> Session:
        created_at = from_micros(row["created_at"])
        assert created_at is not None
        return Session(
            session_id=row["session_id"],
            project_id=row["project_id"],
            user_id=row["user_id"],
            created_at=created_at,
            limits=self.limits_of(row["max_running"], row["max_queued"], row["budget"]),
            task_count=row["task_count"],
            queued_count=row["queued_count"],
            running_count=row["running_count"],
            spent_micros=row["spent_micros"],
            billed_amount=row["billed_amount"],
        )

    async def session_for_user(self, project_id: str, user_id: str) -> Session:
        row = self._one("session_by_user", project_id=project_id, user_id=user_id)
        if row is None:
            with self._write():
                self._one(
                    "insert_session",
                    session_id=ids.new_session_id(),
                    project_id=project_id,
                    user_id=user_id,
                    now=self._now()[1],
                )
            row = self._one("session_by_user", project_id=project_id, user_id=user_id)
        assert row is not None
        return self._session_from_row(row)

    def _session_row(self, project_id: str, session_id: str) -> Row:
        row = self._one("session_by_id", project_id=project_id, session_id=session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        return row

    async def get_session(self, project_id: str, session_id: str) -> Session:
        return self._session_from_row(self._session_row(project_id, session_id))

    async def set_session_limits(
        self, project_id: str, session_id: str, patch: LimitsPatch
    ) -> Session:
        with self._write():
            row = self._session_row(project_id, session_id)
            values = {
                "max_running": row["max_running"],
                "max_queued": row["max_queued"],
                "budget": row["budget"],
            }
            for name in values:
                change = getattr(patch, name)
                if change is not UNSET:
                    values[name] = change
            updated = self._one(
                "update_session_limits", project_id=project_id, session_id=session_id, **values
            )
            assert updated is not None
            self._emit("work")  # a raised running limit may let queued tasks start
        return self._session_from_row(updated)

    async def running_tasks_of_session(self, session_id: str) -> list[Task]:
        return [
            task_from_row(r) for r in self._all("running_tasks_of_session", session_id=session_id)
        ]

    def _live_spend(self, session: Row, now: datetime) -> int:
        running = self._all("running_tasks_of_session", session_id=session["session_id"])
        live = sum(task_from_row(r).live_compute_micros(now) for r in running)
        spent: int = session["spent_micros"]
        return spent + live

    # --- tasks: the client side ------------------------------------------------------------
    async def submit(
        self, project_id: str, session_id: str, new_tasks: Sequence[NewTask]
    ) -> list[Task]:
        now, now_us = self._now()
        with self._write():
            session = self._session_row(project_id, session_id)
            results: list[Task | None] = [None] * len(new_tasks)
            fresh: list[int] = []
            for index, new in enumerate(new_tasks):
                existing = self._existing_idempotent(session_id, new.idempotency_key)
                if existing is not None:
                    results[index] = existing
                else:
                    fresh.append(index)
            if fresh:
                self._check_admission(session, len(fresh), now)
                keys = self._assign_fair_keys(session_id, [new_tasks[i] for i in fresh])
                for index, key in zip(fresh, keys, strict=True):
                    results[index] = self._insert_task(session, new_tasks[index], key, now_us)
                self._one("count_submitted", session_id=session_id, count=len(fresh))
                self._emit("work")
        return [task for task in results if task is not None]

    def _existing_idempotent(self, session_id: str, key: str | None) -> Task | None:
        if key is None:
            return None
        row = self._one("task_by_idempotency_key", session_id=session_id, idempotency_key=key)
        return None if row is None else task_from_row(row)

    def _check_admission(self, session: Row, count: int, now: datetime) -> None:
        limits = self.limits_of(session["max_running"], session["max_queued"], session["budget"])
        if session["queued_count"] + count > limits.max_queued:
            raise LimitReached(
                f"the session has {session['queued_count']} queued tasks; "
                f"its limit is {limits.max_queued}",
                code="session_queue_full",
                retry_after_seconds=defaults.SESSION_QUEUE_FULL_RETRY_AFTER_SECONDS,
            )
        if limits.budget is not None:
            spent = self._live_spend(session, now)
            if cost.minor_units(spent) >= limits.budget:
                raise BudgetExhausted(
                    f"the session has spent {cost.minor_units(spent)} of its budget of "
                    f"{limits.budget}"
                )

    def _assign_fair_keys(self, session_id: str, new_tasks: Sequence[NewTask]) -> list[int]:
        """Fair-share keys, in order, for tasks of one session (see ``fair_keys``)."""
        per_priority: dict[Priority, int] = {}
        for new in new_tasks:
            per_priority[new.priority] = per_priority.get(new.priority, 0) + 1
        ranges: dict[Priority, Iterator[int]] = {}
        for priority, count in per_priority.items():
            last = self._one("session_last_key", session_id=session_id, priority=priority)
            front = self._one("queue_front_key", priority=priority)
            highest = self._one("highest_key", priority=priority)
            assert highest is not None
            keys = fair_keys(
                count,
                scheduling=self.settings.scheduling,
                session_last_key=0 if last is None else last[0],
                queue_front_key=None if front is None else front[0],
                highest_key=highest[0],
            )
            self._one(
                "set_session_last_key",
                session_id=session_id,
                priority=priority,
                last_key=keys[-1],
            )
            ranges[priority] = iter(keys)
        return [next(ranges[new.priority]) for new in new_tasks]

    def _insert_task(self, session: Row, new: NewTask, fair_key: int, now_us: int) -> Task:
        row = self._one(
            "insert_task",
            task_id=ids.new_task_id(),
            project_id=session["project_id"],
            session_id=session["session_id"],
            user_id=session["user_id"],
            agent=new.agent,
            priority=int(new.priority),
            fair_key=fair_key,
            input=_dumps(new.input),
            webhook_url=new.webhook_url,
            webhook_events=_dumps(list(new.webhook_events)),
            metadata=_dumps(new.metadata),
            timeout_ms=round(new.timeout_seconds * 1000),
            max_attempts=new.max_attempts,
            idempotency_key=new.idempotency_key,
            now=now_us,
        )
        assert row is not None
        return task_from_row(row)

    def _task_row(self, project_id: str, session_id: str, task_id: str) -> Row:
        row = self._one(
            "task_by_public_id", project_id=project_id, session_id=session_id, task_id=task_id
        )
        if row is None:
            raise NotFound(f"no task {task_id!r} in session {session_id!r}", code="task_not_found")
        return row

    async def get_task(self, project_id: str, session_id: str, task_id: str) -> Task:
        return task_from_row(self._task_row(project_id, session_id, task_id))

    async def list_tasks(
        self,
        project_id: str,
        session_id: str,
        statuses: Sequence[TaskStatus],
        limit: int,
        before_id: int | None,
    ) -> list[Task]:
        self._session_row(project_id, session_id)
        before = before_id if before_id is not None else 2**63 - 1
        if statuses:
            rows = self._all(
                "list_tasks_with_status",
                session_id=session_id,
                statuses=_dumps([s.value for s in statuses]),
                before_id=before,
                limit=limit,
            )
        else:
            rows = self._all("list_tasks", session_id=session_id, before_id=before, limit=limit)
        return [task_from_row(r) for r in rows]

    async def queue_position(self, task: Task) -> int:
        row = self._one(
            "queue_position", priority=int(task.priority), fair_key=task.fair_key, id=task.id
        )
        assert row is not None
        count: int = row[0]
        return count

    async def cancel(self, project_id: str, session_id: str, task_id: str) -> Task:
        now, now_us = self._now()
        with self._write():
            current = task_from_row(self._task_row(project_id, session_id, task_id))
            if current.status is TaskStatus.CANCELLED:
                return current
            if current.status.is_terminal:
                raise InvalidTransition(
                    f"task {task_id} is already {current.status.value}",
                    code="task_not_cancellable",
                )
            if current.status is TaskStatus.QUEUED:
                row = self._one("cancel_queued", id=current.id, now=now_us)
                self._one("dequeue_one", session_id=session_id)
            else:
                compute = current.live_compute_micros(now)
                row = self._one(
                    "cancel_running",
                    id=current.id,
                    attempt=current.attempt,
                    now=now_us,
                    compute_micros=compute,
                )
                assert row is not None
                self._release(task_from_row(row), spent_micros=compute)
                self._emit("cancel", task_id)
                self._emit("work")  # a running slot is free
            assert row is not None  # the write lock is held: the status read above holds
            self._emit("finished", task_id)
        return task_from_row(row)

    # --- tasks: the worker side ------------------------------------------------------------
    async def register_worker(self, worker_id: str, host: str, pid: int) -> None:
        with self._write():
            self._one("upsert_worker", worker_id=worker_id, host=host, pid=pid, now=self._now()[1])

    async def remove_worker(self, worker_id: str) -> None:
        with self._write():
            self._one("delete_worker", worker_id=worker_id)

    async def claim(self, worker_id: str, limit: int) -> list[ClaimedTask]:
        if limit <= 0:
            return []
        now, now_us = self._now()
        lease = self.lease_deadline(now)
        with self._write():
            rows = self._all(
                "claim_candidates",
                default_max_running=self.settings.default_limits.max_running,
                scan=limit * defaults.CLAIM_SCAN_FACTOR,
            )
            chosen = choose_claims(
                (Candidate(r["id"], r["session_id"], r["free_slots"]) for r in rows), limit
            )
            if not chosen:
                return []
            started = self._all(
                "start_tasks",
                ids=_dumps(chosen),
                now=now_us,
                worker_id=worker_id,
                lease_expires_at=to_micros(lease),
                compute_price_micros=self.settings.compute_price_micros,
            )
            per_session: dict[str, int] = {}
            for row in started:
                per_session[row["session_id"]] = per_session.get(row["session_id"], 0) + 1
            for session_id, count in per_session.items():
                self._one("count_started", session_id=session_id, count=count)
        budgets = {r["session_id"]: r["budget"] for r in rows}
        order = {task_id: position for position, task_id in enumerate(chosen)}
        tasks = sorted((task_from_row(r) for r in started), key=lambda t: order[t.id])
        return [ClaimedTask(task, lease, budgets[task.session_id]) for task in tasks]

    def _running_attempt(self, task_id: str, attempt: int) -> Task | None:
        row = self._one("running_attempt", task_id=task_id, attempt=attempt)
        return None if row is None else task_from_row(row)

    async def report_progress(
        self,
        task_id: str,
        attempt: int,
        progress: float | None,
        message: str | None,
        charged_micros: int,
    ) -> Task | None:
        with self._write():
            current = self._running_attempt(task_id, attempt)
            if current is None:
                return None
            row = self._one(
                "report_progress",
                id=current.id,
                attempt=attempt,
                progress=progress,
                message=message,
                charged_micros=charged_micros,
            )
            if charged_micros:
                self._one("add_spent", session_id=current.session_id, spent_micros=charged_micros)
        return None if row is None else task_from_row(row)

    async def finish(self, task_id: str, attempt: int, outcome: Outcome) -> Task | None:
        now, now_us = self._now()
        with self._write():
            current = self._running_attempt(task_id, attempt)
            if current is None:
                return None
            compute = current.live_compute_micros(now)
            error = outcome.error
            row = self._one(
                "finish_task",
                id=current.id,
                attempt=attempt,
                status=outcome.status.value,
                output=None
                if outcome.status is not TaskStatus.COMPLETED
                else _dumps(outcome.output),
                error_code=None if error is None else error.code,
                error_message=None if error is None else error.message,
                progress=outcome.progress,
                message=outcome.message,
                compute_micros=compute,
                charged_micros=outcome.charged_micros,
                now=now_us,
            )
            assert row is not None
            finished = task_from_row(row)
            self._release(finished, spent_micros=compute + outcome.charged_micros)
            self._emit("finished", task_id)
            self._emit("work")
        return finished

    def _release(self, finished: Task, *, spent_micros: int) -> None:
        """A running task ended: free its session's slot and add its cost to the totals."""
        self._one(
            "release_running",
            session_id=finished.session_id,
            spent_micros=spent_micros,
            billed_amount=finished.cost_at(self.now()).amount,
        )

    async def heartbeat(self, worker_id: str) -> set[str]:
        now, now_us = self._now()
        with self._write():
            self._one("touch_worker", worker_id=worker_id, now=now_us)
            rows = self._all(
                "renew_leases",
                worker_id=worker_id,
                lease_expires_at=to_micros(self.lease_deadline(now)),
            )
        return {r["task_id"] for r in rows}

    async def rescue_lost_tasks(self, dead_worker_ids: Sequence[str] = ()) -> list[Task]:
        now_us = self._now()[1]
        rescued: list[Task] = []
        with self._write():
            rows = self._all("expired_tasks", now=now_us)
            for worker_id in dead_worker_ids:
                rows.extend(self._all("running_tasks_of_worker", worker_id=worker_id))
                self._one("delete_worker", worker_id=worker_id)
            seen: set[int] = set()
            for row in rows:
                if row["id"] in seen:
                    continue
                seen.add(row["id"])
                rescued.append(self._rescue(task_from_row(row), now_us))
        return rescued

    def _rescue(self, task: Task, now_us: int) -> Task:
        if task.attempt < task.max_attempts:
            row = self._one("requeue_lost", id=task.id, attempt=task.attempt)
            self._one("requeue_running", session_id=task.session_id)
            self._emit("work")
        else:
            row = self._one(
                "fail_lost",
                id=task.id,
                attempt=task.attempt,
                error_code=ErrorCode.WORKER_LOST,
                error_message=(
                    f"the worker running attempt {task.attempt} of this task stopped "
                    "answering; the task was not finished"
                ),
                now=now_us,
            )
            assert row is not None
            self._release(task_from_row(row), spent_micros=0)
            self._emit("finished", task.task_id)
            self._emit("work")
        assert row is not None
        return task_from_row(row)

    async def other_workers(self, worker_id: str) -> list[str]:
        return [r["worker_id"] for r in self._all("other_workers", worker_id=worker_id)]


def _split_statements(script: str) -> list[str]:
    """Split a script into whole statements, as SQLite's own parser sees them."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement: {current.strip()[:80]}")
    return statements
