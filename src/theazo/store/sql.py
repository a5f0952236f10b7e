"""Every store operation, written once over named SQL queries.

A backend (``sqlite/``, ``postgres/``) supplies its ``queries.sql`` (the same names, each in
its dialect), a transaction, the two query primitives ``_one``/``_all``, how parameters and
rows are adapted, and the row locks a claim needs when several nodes claim at once. All the
logic of the operations (which rows change, in what order, which counters move, which events
follow the commit) lives here.

Parameters passed to queries are plain Python values: ``datetime``, ``list`` (for ``IN``
lists) and ``JsonValue`` (a JSON document); the backend adapts them.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from theazo.core import cost, defaults, ids, webhook_events
from theazo.core import events as task_events
from theazo.core.errors import BudgetExhausted, InvalidTransition, LimitReached, NotFound
from theazo.core.events import NewEvent, TaskEvent
from theazo.core.models import (
    ClaimedTask,
    Delivery,
    DeliveryAttempt,
    NewTask,
    Outcome,
    Session,
    Task,
    WebhookSecret,
)
from theazo.core.states import ErrorCode, Priority, TaskStatus
from theazo.core.usage import NetworkUsage, Tokens, UsageUpdate
from theazo.store import rows
from theazo.store.base import (
    UNSET,
    Candidate,
    LimitsPatch,
    Spend,
    Store,
    choose_claims,
    fair_keys,
)
from theazo.store.project_reads import ProjectReads

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class JsonValue:
    """A JSON document as a query parameter (the backend encodes it)."""

    value: Any


def _network_params(network: NetworkUsage) -> dict[str, int]:
    return {
        "net_sent": network.sent,
        "net_received": network.received,
        "net_connections": network.connections,
    }


def _usage_param(update: UsageUpdate | None) -> JsonValue | None:
    """A task's usage as the store keeps it; None leaves what it holds."""
    return None if update is None else JsonValue(update.usage.as_json())


def _token_params(tokens: Tokens) -> dict[str, int]:
    return {
        "tokens_input": tokens.input,
        "tokens_output": tokens.output,
        "tokens_cached": tokens.cached,
    }


class Event:
    WORK = "work"  # there may be tasks to claim
    FINISHED = "finished"  # a task reached a terminal state (payload: task id)
    CANCEL = "cancel"  # a running task was cancelled (payload: task id)
    DELIVERY = "delivery"  # a webhook delivery is due
    TASK_EVENTS = "events"  # task events were stored (payload: an EventBatch)


@dataclass(frozen=True, slots=True, eq=False)
class EventBatch:
    """The task events one transaction stored: fired here after the commit, announced to
    other nodes as the range of ids of each task (they read the events themselves)."""

    events: tuple[TaskEvent, ...]

    def notices(self, max_chars: int) -> list[str]:
        """``task_pk first last task_id session_id project_id`` per task, ``;``-separated,
        in payloads of at most ``max_chars``."""
        ranges: dict[int, list[Any]] = {}
        for event in self.events:
            found = ranges.get(event.task_pk)
            if found is None:
                ranges[event.task_pk] = [
                    event.task_pk, event.seq, event.seq,
                    event.task_id, event.session_id, event.project_id,
                ]  # fmt: skip
            else:
                found[1], found[2] = min(found[1], event.seq), max(found[2], event.seq)
        payloads: list[str] = []
        current = ""
        for entry in ranges.values():
            text = " ".join(str(part) for part in entry)
            if current and len(current) + 1 + len(text) > max_chars:
                payloads.append(current)
                current = ""
            current = f"{current};{text}" if current else text
        if current:
            payloads.append(current)
        return payloads


def parse_notice(payload: str) -> list[tuple[int, int, int, str, str, str]]:
    """The ranges an ``EventBatch`` notice names (see ``EventBatch.notices``)."""
    found = []
    for entry in payload.split(";"):
        pk, first, last, task_id, session_id, project_id = entry.split(" ")
        found.append((int(pk), int(first), int(last), task_id, session_id, project_id))
    return found


class SQLStore(ProjectReads, abc.ABC):
    # --- what a backend provides -----------------------------------------------------------
    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One write transaction. Events emitted inside it fire after it commits."""

    # _one, _all, _task, _session and _time: declared by ProjectReads, which this extends.

    @abc.abstractmethod
    def _json(self, value: Any) -> Any:
        """A JSON column as the driver returns it."""

    @abc.abstractmethod
    def _emit(self, event: str, task_id: str | EventBatch | None = None) -> None:
        """Queue an event for after the commit (and for other nodes, where there are any)."""

    async def _claim_sessions(self, candidates: Sequence[Row]) -> dict[str, Row]:
        """The sessions of a claim's candidates, with their running counts as they are now.
        With one writer, the candidates' own columns are current; a backend where nodes claim
        at once locks the sessions' rows and reads them again (see postgres/store.py)."""
        return {row["session_id"]: row for row in candidates}

    # --- projects and keys -----------------------------------------------------------------
    async def create_project(self) -> str:
        project_id = ids.new_project_id()
        async with self.transaction():
            await self._one("insert_project", project_id=project_id, now=self.now())
        return project_id

    async def project_exists(self, project_id: str) -> bool:
        return await self._one("project_exists", project_id=project_id) is not None

    async def add_api_key(self, project_id: str, key_hash: str, hint: str) -> None:
        async with self.transaction():
            await self._one(
                "insert_api_key",
                key_hash=key_hash,
                project_id=project_id,
                hint=hint,
                now=self.now(),
            )

    async def project_for_key(self, key_hash: str) -> str | None:
        row = await self._one("key_by_hash", key_hash=key_hash)
        if row is None or not ids.hashes_match(row["key_hash"], key_hash):
            return None
        project_id: str = row["project_id"]
        return project_id

    async def count_api_keys(self) -> int:
        row = await self._one("count_api_keys")
        assert row is not None
        count: int = row["count"]
        return count

    # --- sessions --------------------------------------------------------------------------
    async def session_for_user(self, project_id: str, user_id: str) -> Session:
        row = await self._one("session_by_user", project_id=project_id, user_id=user_id)
        if row is None:
            async with self.transaction():
                await self._one(
                    "insert_session",
                    session_id=ids.new_session_id(),
                    project_id=project_id,
                    user_id=user_id,
                    now=self.now(),
                )
            row = await self._one("session_by_user", project_id=project_id, user_id=user_id)
        assert row is not None
        return self._session(row)

    async def _session_row(self, project_id: str, session_id: str, *, lock: bool = False) -> Row:
        query = "session_by_id_for_update" if lock else "session_by_id"
        row = await self._one(query, project_id=project_id, session_id=session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        return row

    async def get_session(self, project_id: str, session_id: str) -> Session:
        return self._session(await self._session_row(project_id, session_id))

    async def set_session_limits(
        self, project_id: str, session_id: str, patch: LimitsPatch
    ) -> Session:
        async with self.transaction():
            row = await self._session_row(project_id, session_id, lock=True)
            values = {name: row[name] for name in ("max_running", "max_queued", "budget")}
            for name in values:
                change = getattr(patch, name)
                if change is not UNSET:
                    values[name] = change
            updated = await self._one(
                "update_session_limits", project_id=project_id, session_id=session_id, **values
            )
            assert updated is not None
            self._emit(Event.WORK)  # a raised running limit may let queued tasks start
        return self._session(updated)

    async def running_tasks_of_session(self, session_id: str) -> list[Task]:
        rows = await self._all("running_tasks_of_session", session_id=session_id)
        return [self._task(r) for r in rows]

    async def _live_spend(self, session: Row, now: datetime) -> int:
        running = await self.running_tasks_of_session(session["session_id"])
        spent: int = session["spent_micros"]
        return spent + sum(task.live_compute_micros(now) for task in running)

    async def session_budgets(self, session_ids: Sequence[str]) -> dict[str, int | None]:
        if not session_ids:
            return {}
        rows = await self._all("session_budgets", session_ids=list(session_ids))
        return {row["session_id"]: row["budget"] for row in rows}

    async def session_spend(self, session_id: str) -> Spend:
        now = self.now()
        session = await self._one("session_by_internal_id", session_id=session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        running = await self.running_tasks_of_session(session_id)
        live = sum(task.live_compute_micros(now) for task in running)
        return Spend(
            budget=session["budget"],
            spent_micros=session["spent_micros"] + live,
            compute_rate_micros=sum(task.compute_price_micros for task in running),
        )

    # --- tasks: the client side ------------------------------------------------------------
    async def submit(
        self, project_id: str, session_id: str, new_tasks: Sequence[NewTask]
    ) -> list[Task]:
        now = self.now()
        async with self.transaction():
            session = await self._session_row(project_id, session_id, lock=True)
            results: list[Task | None] = []
            fresh: list[int] = []
            first_with_key: dict[str, int] = {}  # a key repeated in one batch: its first task
            for index, new in enumerate(new_tasks):
                existing = await self._existing_idempotent(session_id, new.idempotency_key)
                results.append(existing)
                key = new.idempotency_key
                if existing is None and (key is None or key not in first_with_key):
                    fresh.append(index)
                    if key is not None:
                        first_with_key[key] = index
            if fresh:
                await self._check_admission(session, len(fresh), now)
                keys = await self._assign_fair_keys(session_id, [new_tasks[i] for i in fresh])
                inserted = await self._insert_tasks(
                    session, [(new_tasks[i], key) for i, key in zip(fresh, keys, strict=True)], now
                )
                for index, task in zip(fresh, inserted, strict=True):
                    results[index] = task
                counted = await self._one(
                    "count_submitted", session_id=session_id, count=len(fresh)
                )
                assert counted is not None
                await self._store_submitted(inserted, counted["event_seq"], now)
                self._emit(Event.WORK)
        for index, new in enumerate(new_tasks):
            if results[index] is None and new.idempotency_key is not None:
                results[index] = results[first_with_key[new.idempotency_key]]
        return [task for task in results if task is not None]

    async def _existing_idempotent(self, session_id: str, key: str | None) -> Task | None:
        if key is None:
            return None
        row = await self._one("task_by_idempotency_key", session_id=session_id, idempotency_key=key)
        return None if row is None else self._task(row)

    async def _check_admission(self, session: Row, count: int, now: datetime) -> None:
        limits = self.limits_of(session["max_running"], session["max_queued"], session["budget"])
        if session["queued_count"] + count > limits.max_queued:
            raise LimitReached(
                f"the session has {session['queued_count']} queued tasks; "
                f"its limit is {limits.max_queued}",
                code="session_queue_full",
                retry_after_seconds=defaults.SESSION_QUEUE_FULL_RETRY_AFTER_SECONDS,
            )
        if limits.budget is not None:
            spent = cost.minor_units(await self._live_spend(session, now))
            if spent >= limits.budget:
                raise BudgetExhausted(
                    f"the session has spent {spent} of its budget of {limits.budget}"
                )

    async def _assign_fair_keys(self, session_id: str, new_tasks: Sequence[NewTask]) -> list[int]:
        """Fair-share keys, in order, for tasks of one session (see ``fair_keys``)."""
        counts: dict[Priority, int] = {}
        for new in new_tasks:
            counts[new.priority] = counts.get(new.priority, 0) + 1
        keys: dict[Priority, Iterator[int]] = {}
        for priority, count in counts.items():
            inputs = await self._one("fair_key_inputs", session_id=session_id, priority=priority)
            assert inputs is not None
            assigned = fair_keys(
                count,
                scheduling=self.settings.scheduling,
                session_last_key=inputs["session_last"] or 0,
                queue_front_key=inputs["queue_front"],
                highest_key=inputs["highest"],
            )
            await self._one(
                "set_session_last_key",
                session_id=session_id,
                priority=priority,
                last_key=assigned[-1],
            )
            keys[priority] = iter(assigned)
        return [next(keys[new.priority]) for new in new_tasks]

    async def _insert_tasks(
        self, session: Row, new_tasks: Sequence[tuple[NewTask, int]], now: datetime
    ) -> list[Task]:
        """Insert tasks (each with its fair key) in one statement; returned in the same order."""
        rows = [
            {
                "ord": position,
                "task_id": ids.new_task_id(),
                "agent": new.agent,
                "priority": int(new.priority),
                "fair_key": fair_key,
                "input": new.input,
                "webhook_url": new.webhook_url,
                "webhook_events": list(new.webhook_events),
                "metadata": new.metadata,
                "timeout_ms": round(new.timeout_seconds * 1000),
                "max_attempts": new.max_attempts,
                "idempotency_key": new.idempotency_key,
            }
            for position, (new, fair_key) in enumerate(new_tasks)
        ]
        inserted = await self._all(
            "insert_tasks",
            rows=JsonValue(rows),
            project_id=session["project_id"],
            session_id=session["session_id"],
            user_id=session["user_id"],
            now=now,
        )
        internal_ids = {row["task_id"]: row["id"] for row in inserted}
        # The rows hold nothing we did not just write but their ids: build the records here
        # rather than read a thousand JSON inputs back.
        return [
            _queued_task(session, new, row["task_id"], internal_ids[row["task_id"]], key, now)
            for row, (new, key) in zip(rows, new_tasks, strict=True)
        ]

    async def _task_row(
        self, project_id: str, session_id: str, task_id: str, *, lock: bool = False
    ) -> Row:
        row = await self._one(
            "task_by_public_id_for_update" if lock else "task_by_public_id",
            project_id=project_id,
            session_id=session_id,
            task_id=task_id,
        )
        if row is None:
            raise NotFound(f"no task {task_id!r} in session {session_id!r}", code="task_not_found")
        return row

    async def get_task(self, project_id: str, session_id: str, task_id: str) -> Task:
        return self._task(await self._task_row(project_id, session_id, task_id))

    async def list_tasks(
        self,
        project_id: str,
        session_id: str,
        statuses: Sequence[TaskStatus],
        limit: int,
        before_id: int | None,
    ) -> list[Task]:
        await self._session_row(project_id, session_id)
        before = before_id if before_id is not None else 2**63 - 1
        if statuses:
            rows = await self._all(
                "list_tasks_with_status",
                session_id=session_id,
                statuses=[s.value for s in statuses],
                before_id=before,
                limit=limit,
            )
        else:
            rows = await self._all(
                "list_tasks", session_id=session_id, before_id=before, limit=limit
            )
        return [self._task(r) for r in rows]

    async def queue_position(self, task: Task) -> int:
        row = await self._one(
            "queue_position",
            priority=int(task.priority),
            fair_key=task.fair_key,
            id=task.id,
            cap=defaults.QUEUE_POSITION_CAP,
        )
        assert row is not None
        count: int = row["count"]
        return count

    async def unfinished_by_priority(self) -> dict[tuple[TaskStatus, Priority], int]:
        rows = await self._all("unfinished_by_priority")
        return {
            (TaskStatus(row["status"]), Priority(row["priority"])): int(row["count"])
            for row in rows
        }

    async def cancel(self, project_id: str, session_id: str, task_id: str) -> Task:
        now = self.now()
        async with self.transaction():
            current = self._task(await self._task_row(project_id, session_id, task_id, lock=True))
            if current.status is TaskStatus.CANCELLED:
                return current
            if current.status.is_terminal:
                raise InvalidTransition(
                    f"task {task_id} is already {current.status.value}",
                    code="task_not_cancellable",
                )
            if current.status is TaskStatus.QUEUED:
                row = await self._one("cancel_queued", id=current.id, now=now)
                await self._session_row(project_id, session_id, lock=True)
                counted = await self._one("dequeue_one", session_id=session_id)
                assert row is not None and counted is not None
                await self._store_end(self._task(row), counted["event_seq"], now)
                await self._announce(self._task(row), webhook_events.COMPLETED)
            else:
                compute = current.live_compute_micros(now)
                row = await self._one(
                    "cancel_running",
                    id=current.id,
                    attempt=current.attempt,
                    now=now,
                    compute_micros=compute,
                )
                assert row is not None
                await self._release(self._task(row), spent_micros=compute, now=now)
                self._emit(Event.CANCEL, task_id)
                self._emit(Event.WORK)  # a running slot is free
            assert row is not None  # the row is locked: the status read above still holds
            self._emit(Event.FINISHED, task_id)
        return self._task(row)

    # --- tasks: the worker side ------------------------------------------------------------
    async def register_worker(
        self, worker_id: str, host: str, pid: int, slots: int | None = None
    ) -> None:
        now = self.now()
        async with self.transaction():
            await self._one(
                "upsert_worker",
                worker_id=worker_id,
                host=host,
                pid=pid,
                now=now,
                lease_expires_at=self.lease_deadline(now),
                slots=slots,
            )

    async def remove_worker(self, worker_id: str) -> None:
        """A worker leaving for good: whatever it still runs is lost with it (settled in the
        same transaction, so that no running task is ever without its worker's row)."""
        now = self.now()
        async with self.transaction():
            for row in await self._all("running_tasks_of_worker", worker_id=worker_id):
                await self._rescue(self._task(row), now)
            await self._one("delete_worker", worker_id=worker_id)

    async def other_workers(self, worker_id: str) -> list[str]:
        return [r["worker_id"] for r in await self._all("other_workers", worker_id=worker_id)]

    async def forget_silent_workers(self, silent_since: datetime) -> int:
        async with self.transaction():
            gone = await self._all("delete_silent_workers", silent_since=silent_since)
        return len(gone)

    async def prune_finished_tasks(self, finished_before: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        async with self.transaction():
            rows = await self._all("prunable_tasks", finished_before=finished_before, limit=limit)
            if not rows:
                return 0
            task_ids = [row["task_id"] for row in rows]
            await self._all("delete_attempts_of_tasks", task_ids=task_ids)
            await self._all("delete_deliveries_of_tasks", task_ids=task_ids)
            gone = await self._all("delete_tasks", ids=[row["id"] for row in rows])
        return len(gone)

    async def claim(self, worker_id: str, limit: int) -> list[ClaimedTask]:
        if limit <= 0:
            return []
        now = self.now()
        lease = self.lease_deadline(now)
        async with self.transaction():
            chosen, sessions = await self._choose(limit)
            if not chosen:
                return []
            await self._one("claim_lease", worker_id=worker_id, now=now, lease_expires_at=lease)
            rows = await self._all(
                "start_tasks",
                ids=chosen,
                now=now,
                worker_id=worker_id,
                lease_expires_at=lease,
                compute_price_micros=self.settings.compute_price_micros,
            )
            started = [self._task(row) for row in rows]
            order = {internal_id: position for position, internal_id in enumerate(chosen)}
            started.sort(key=lambda t: order[t.id])
            per_session: dict[str, int] = {}
            for task in started:
                per_session[task.session_id] = per_session.get(task.session_id, 0) + 1
            counted = await self._all("count_started", started=JsonValue(per_session))
            await self._store_status_events(
                [(task, task.event_seq) for task in started],
                {row["session_id"]: row["event_seq"] for row in counted},
                now,
            )
            for task in started:
                await self._announce(task, webhook_events.STARTED)
        return [ClaimedTask(t, lease, sessions[t.session_id]["budget"]) for t in started]

    async def _choose(self, limit: int) -> tuple[list[int], dict[str, Row]]:
        """The ids to start, in order, and their sessions. The candidate window grows when
        sessions with fewer free slots than queued tasks filled it."""
        scan = limit * defaults.CLAIM_SCAN_FACTOR
        while True:
            rows = await self._all(
                "claim_candidates",
                default_max_running=self.settings.default_limits.max_running,
                scan=scan,
            )
            if not rows:
                return [], {}
            sessions = await self._claim_sessions(rows)
            free = {
                sid: self.limits_of(s["max_running"], None, None).max_running - s["running_count"]
                for sid, s in sessions.items()
            }
            chosen = choose_claims(
                (Candidate(r["id"], r["session_id"], free[r["session_id"]]) for r in rows), limit
            )
            if len(chosen) == limit or len(rows) < scan or scan >= defaults.CLAIM_MAX_SCAN:
                return chosen, sessions
            scan *= defaults.CLAIM_SCAN_FACTOR

    async def _running_attempt(self, task_id: str, attempt: int) -> Task | None:
        row = await self._one("running_attempt_for_update", task_id=task_id, attempt=attempt)
        return None if row is None else self._task(row)

    async def report_progress(
        self,
        task_id: str,
        attempt: int,
        progress: float | None,
        message: str | None,
        charged_micros: int,
        *,
        announce: bool = False,
        events: Sequence[NewEvent] = (),
        log_bytes: int = 0,
        usage: UsageUpdate | None = None,
    ) -> Task | None:
        async with self.transaction():
            row = await self._one(
                "report_progress",
                task_id=task_id,
                attempt=attempt,
                progress=progress,
                message=message,
                charged_micros=charged_micros,
                events=len(events),
                log_bytes=log_bytes,
                usage=_usage_param(usage),
            )
            if row is None:
                return None
            reported = self._task(row)
            in_session = _in_session(events)
            session_seq = None
            added = Tokens() if usage is None else usage.added
            if charged_micros or in_session or added:
                counted = await self._one(
                    "add_spent",
                    session_id=reported.session_id,
                    spent_micros=charged_micros,
                    events=in_session,
                    **_token_params(added),
                )
                assert counted is not None
                session_seq = counted["event_seq"]
            await self._store_reported(reported, events, session_seq)
            if announce:
                await self._announce(reported, webhook_events.PROGRESS)
        return reported

    async def append_logs(self, task: Task, events: Sequence[NewEvent], log_bytes: int) -> None:
        if not events:
            return
        async with self.transaction():
            row = await self._one(
                "add_log_events", id=task.id, events=len(events), log_bytes=log_bytes
            )
            if row is not None:  # else the task is gone (deleted with its events)
                await self._store_reported(self._task(row), events, None)

    async def finish(self, task_id: str, attempt: int, outcome: Outcome) -> Task | None:
        now = self.now()
        async with self.transaction():
            current = await self._running_attempt(task_id, attempt)
            if current is None:
                return None
            compute = current.live_compute_micros(now)
            error = outcome.error
            completed = outcome.status is TaskStatus.COMPLETED
            row = await self._one(
                "finish_task",
                id=current.id,
                attempt=attempt,
                status=outcome.status.value,
                output=JsonValue(outcome.output) if completed else None,
                error_code=None if error is None else error.code,
                error_message=None if error is None else error.message,
                progress=outcome.progress,
                message=outcome.message,
                compute_micros=compute,
                charged_micros=outcome.charged_micros,
                now=now,
                events=len(outcome.events),
                log_bytes=outcome.log_bytes,
                usage=_usage_param(outcome.usage),
                **_network_params(outcome.network),
            )
            assert row is not None
            finished = self._task(row)
            await self._release(
                finished,
                spent_micros=compute + outcome.charged_micros,
                now=now,
                reported=outcome.events,
                tokens=Tokens() if outcome.usage is None else outcome.usage.added,
            )
            self._emit(Event.FINISHED, task_id)
            self._emit(Event.WORK)
        return finished

    async def add_network_usage(self, task_id: str, attempt: int, network: NetworkUsage) -> None:
        if not network:
            return
        async with self.transaction():
            await self._one(
                "add_network_usage", task_id=task_id, attempt=attempt, **_network_params(network)
            )

    async def _announce(self, task: Task, event: str) -> None:
        """Queue the webhook of a task event, in the transaction that made it happen, so the
        one cannot be committed without the other."""
        if task.webhook_url is None or event not in task.webhook_events:
            return
        await self._one(
            "insert_delivery",
            message_id=webhook_events.new_message_id(),
            project_id=task.project_id,
            session_id=task.session_id,
            task_id=task.task_id,
            event=event,
            url=task.webhook_url,
            payload=JsonValue(webhook_events.payload(task, event, self.now())),
            now=self.now(),
        )
        self._emit(Event.DELIVERY)

    async def _release(
        self,
        finished: Task,
        *,
        spent_micros: int,
        now: datetime,
        reported: Sequence[NewEvent] = (),
        tokens: Tokens = Tokens(),
    ) -> None:
        """A running task ended: free its session's slot, add its cost to the totals, and
        announce the end (after the run's last ``reported`` events)."""
        in_session = _in_session(reported)
        counted = await self._one(
            "release_running",
            session_id=finished.session_id,
            spent_micros=spent_micros,
            billed_amount=finished.cost_at(self.now()).amount,
            events=1 + in_session,
            **_token_params(tokens),
        )
        assert counted is not None
        last_in_session: int = counted["event_seq"]
        await self._store_reported(
            finished, reported, last_in_session - 1, last_seq=finished.event_seq - 2
        )
        await self._store_end(finished, last_in_session, now)
        await self._announce(finished, webhook_events.COMPLETED)

    async def heartbeat(self, worker_id: str) -> bool:
        now = self.now()
        async with self.transaction():
            renewed = await self._one(
                "renew_worker_lease",
                worker_id=worker_id,
                now=now,
                lease_expires_at=self.lease_deadline(now),
            )
        return renewed is not None

    async def attempts_held(self, worker_id: str) -> dict[str, int]:
        rows = await self._all("attempts_held_by_worker", worker_id=worker_id)
        return {row["task_id"]: row["attempt"] for row in rows}

    async def release(self, task_id: str, attempt: int, *, started: bool) -> Task | None:
        now = self.now()
        async with self.transaction():
            current = await self._running_attempt(task_id, attempt)
            if current is None:
                return None
            if started:
                return await self._rescue(current, now, why="could not record how it ended")
            row = await self._one("unclaim", id=current.id, attempt=attempt)
            counted = await self._one("requeue_running", session_id=current.session_id)
            self._emit(Event.WORK)
            assert row is not None and counted is not None
            requeued = self._task(row)
            await self._store_status_events(
                [(requeued, requeued.event_seq)], {current.session_id: counted["event_seq"]}, now
            )
            return requeued

    async def rescue_lost_tasks(
        self,
        dead_worker_ids: Sequence[str] = (),
        *,
        alive_worker_id: str = "",
        orphans: bool = False,
    ) -> list[Task]:
        now = self.now()
        rescued: list[Task] = []
        async with self.transaction():
            rows = await self._all(
                "lost_tasks", now=now, alive_worker_id=alive_worker_id, limit=defaults.RESCUE_BATCH
            )
            if orphans:
                rows.extend(await self._all("orphaned_tasks", limit=defaults.RESCUE_BATCH))
            for worker_id in dead_worker_ids:
                rows.extend(await self._all("running_tasks_of_worker", worker_id=worker_id))
                await self._one("delete_worker", worker_id=worker_id)
            seen: set[int] = set()
            for row in rows:
                if row["id"] not in seen:
                    seen.add(row["id"])
                    rescued.append(await self._rescue(self._task(row), now))
        return rescued

    async def _rescue(self, task: Task, now: datetime, *, why: str = "stopped answering") -> Task:
        """Give a lost attempt's task another attempt, or fail it when it has none left."""
        if task.attempt < task.max_attempts:
            row = await self._one("requeue_lost", id=task.id, attempt=task.attempt)
            counted = await self._one("requeue_running", session_id=task.session_id)
            self._emit(Event.WORK)
            assert row is not None and counted is not None
            requeued = self._task(row)
            await self._store_status_events(
                [(requeued, requeued.event_seq)], {task.session_id: counted["event_seq"]}, now
            )
            return requeued
        row = await self._one(
            "fail_lost",
            id=task.id,
            attempt=task.attempt,
            error_code=ErrorCode.WORKER_LOST,
            error_message=(
                f"the worker running attempt {task.attempt} of this task {why}; "
                "the task was not finished"
            ),
            now=now,
        )
        assert row is not None
        failed = self._task(row)
        await self._release(failed, spent_micros=0, now=now)
        self._emit(Event.FINISHED, task.task_id)
        self._emit(Event.WORK)
        return failed

    # --- events ----------------------------------------------------------------------------
    async def _store_status_events(
        self, changed: Sequence[tuple[Task, int]], session_last: Mapping[str, int], now: datetime
    ) -> None:
        """The status events of tasks that just changed, each at its own id (``seq``), in
        the order given; ``session_last`` is each session's last id once they are counted."""
        per_session: dict[str, int] = {}
        for task, _ in changed:
            per_session[task.session_id] = per_session.get(task.session_id, 0) + 1
        next_in_session = {sid: session_last[sid] - n + 1 for sid, n in per_session.items()}
        events = []
        for task, seq in changed:
            session_seq = next_in_session[task.session_id]
            next_in_session[task.session_id] += 1
            snapshot = task_events.snapshot(task)
            events.append(_numbered(task, seq, session_seq, task_events.STATUS, snapshot, now))
        await self._store_events(events)

    async def _store_submitted(
        self, inserted: Sequence[Task], session_last: int, now: datetime
    ) -> None:
        """The first event of each task just submitted (``queued``, as it was sent: nothing to
        keep but its ids), in one small statement for a whole batch."""
        first = session_last - len(inserted) + 1
        await self._one(
            "insert_submitted_events",
            task_pks=[task.id for task in inserted],
            session_id=inserted[0].session_id,
            first_session_seq=first,
            now=now,
        )
        events = tuple(
            _numbered(task, 1, first + i, task_events.STATUS, {}, now)
            for i, task in enumerate(inserted)
        )
        self._emit(Event.TASK_EVENTS, EventBatch(events))

    async def _store_end(self, task: Task, session_seq: int, now: datetime) -> None:
        """A task reached its terminal state: its last status event, then its ``end``."""
        snapshot = task_events.snapshot(task)
        status = _numbered(task, task.event_seq - 1, session_seq, task_events.STATUS, snapshot, now)
        end = _numbered(task, task.event_seq, None, task_events.END, {}, now)
        await self._store_events([status, end])

    async def _store_reported(
        self,
        task: Task,
        reported: Sequence[NewEvent],
        session_last: int | None,
        *,
        last_seq: int | None = None,
    ) -> None:
        """A run's events, numbered up to ``last_seq`` (default: the task's last id) and the
        session's last id."""
        seq = (task.event_seq if last_seq is None else last_seq) - len(reported)
        in_session = _in_session(reported)
        session_seq = None if session_last is None else session_last - in_session
        events = []
        for new in reported:
            seq += 1
            numbered_in_session = None
            if session_seq is not None and new.kind in task_events.SESSION_KINDS:
                session_seq += 1
                numbered_in_session = session_seq
            events.append(
                _numbered(task, seq, numbered_in_session, new.kind, new.data, new.at, shown=False)
            )
        await self._store_events(events)

    async def _store_events(self, events: Sequence[TaskEvent]) -> None:
        if not events:
            return
        await self._one(
            "insert_events",
            events=JsonValue(
                [
                    {
                        "task_pk": e.task_pk,
                        "seq": e.seq,
                        "session_id": e.session_id,
                        "session_seq": e.session_seq,
                        "kind": e.kind,
                        "data": e.data,
                        "at": task_events.micros(e.at),
                    }
                    for e in events
                ]
            ),
        )
        self._emit(Event.TASK_EVENTS, EventBatch(tuple(events)))

    async def task_events(
        self, project_id: str, session_id: str, task_id: str, after: int, limit: int
    ) -> tuple[Task, list[TaskEvent]]:
        task = self._task(await self._task_row(project_id, session_id, task_id))
        rows = await self._all("task_events_after", task_pk=task.id, after=after, limit=limit)
        if rows:  # read again: the task as it is at least as new as its last event read
            task = self._task(await self._task_row(project_id, session_id, task_id))
        return task, [self._event(row, task) for row in rows]

    async def task_logs(
        self, project_id: str, session_id: str, task_id: str, after: int, limit: int
    ) -> list[TaskEvent]:
        task = self._task(await self._task_row(project_id, session_id, task_id))
        rows = await self._all("task_logs_after", task_pk=task.id, after=after, limit=limit)
        return [self._event(row, task) for row in rows]

    async def session_events(
        self, project_id: str, session_id: str, after: int, limit: int
    ) -> list[TaskEvent]:
        await self._session_row(project_id, session_id)
        rows = await self._all(
            "session_events_after", session_id=session_id, after=after, limit=limit
        )
        return await self._events_with_tasks(rows)

    async def last_session_event(self, project_id: str, session_id: str) -> int:
        session = await self._session_row(project_id, session_id)
        last: int = session["event_seq"]
        return last

    async def events_in_ranges(self, ranges: Sequence[tuple[int, int, int]]) -> list[TaskEvent]:
        """The events with ids ``first``..``last`` of each task ``pk`` (what other nodes
        announced), in each task's order."""
        wanted = [{"task_pk": pk, "first": first, "last": last} for pk, first, last in ranges]
        rows = await self._all("events_in_ranges", ranges=JsonValue(wanted))
        return await self._events_with_tasks(rows)

    async def _events_with_tasks(self, rows: Sequence[Row]) -> list[TaskEvent]:
        """Events of several tasks; those that show a task get it, read after them."""
        shown = sorted({r["task_pk"] for r in rows if r["kind"] in _SHOWS_TASK})
        tasks: dict[int, Task] = {}
        if shown:
            tasks = {t.id: t for t in map(self._task, await self._all("tasks_by_pks", ids=shown))}
        events = []
        for row in rows:
            task = tasks.get(row["task_pk"])
            if task is None and row["kind"] in _SHOWS_TASK:
                continue  # deleted since: its events went with it
            events.append(self._event(row, task, row["task_id"], row["project_id"]))
        return events

    def _event(
        self,
        row: Row,
        task: Task | None,
        task_id: str | None = None,
        project_id: str | None = None,
    ) -> TaskEvent:
        data = self._json(row["data"])
        kind: str = row["kind"]
        shown = None
        if task is not None and kind in _SHOWS_TASK:
            shown = task if kind == task_events.END else task_events.task_at(task, data)
        at = self._time(row["created_at"])
        assert at is not None
        return TaskEvent(
            row["task_pk"],
            task_id or (task.task_id if task else ""),
            row["session_id"],
            project_id or (task.project_id if task else ""),
            row["seq"],
            row["session_seq"],
            kind,
            data,
            at,
            shown,
        )

    async def deployment_secret(self, name: str) -> str:
        row = await self._one("deployment_secret", name=name)
        if row is None:
            async with self.transaction():  # two nodes may race: the first one's stays
                await self._one(
                    "insert_deployment_secret",
                    name=name,
                    secret=ids.new_secret_token(),
                    now=self.now(),
                )
            row = await self._one("deployment_secret", name=name)
        assert row is not None
        secret: str = row["secret"]
        return secret

    # --- webhooks --------------------------------------------------------------------------
    async def webhook_secrets(self, project_id: str) -> list[WebhookSecret]:
        secrets = await self._secrets(project_id)
        if secrets:
            return secrets
        async with self.transaction():
            await self._one("project_for_update", project_id=project_id)
            if not await self._secrets(project_id):  # another node may have been first
                await self._one(
                    "insert_webhook_secret",
                    project_id=project_id,
                    secret=webhook_events.new_secret(),
                    now=self.now(),
                )
        return await self._secrets(project_id)

    async def _secrets(self, project_id: str) -> list[WebhookSecret]:
        found = await self._all("webhook_secrets", project_id=project_id, now=self.now())
        current = [r for r in found if r["expires_at"] is None]
        previous = [r for r in found if r["expires_at"] is not None]
        return [rows.secret_from_row(r, self._time) for r in [*current, *previous]]

    async def rotate_webhook_secret(
        self, project_id: str, overlap_seconds: float
    ) -> list[WebhookSecret]:
        now = self.now()
        async with self.transaction():
            await self._one("project_for_update", project_id=project_id)
            await self._one(
                "retire_webhook_secrets",
                project_id=project_id,
                expires_at=now + timedelta(seconds=overlap_seconds),
            )
            await self._one(
                "insert_webhook_secret",
                project_id=project_id,
                secret=webhook_events.new_secret(),
                now=now,
            )
        return await self._secrets(project_id)

    async def claim_deliveries(self, limit: int, lease_seconds: float) -> list[Delivery]:
        now = self.now()
        async with self.transaction():
            due = await self._all("due_deliveries", now=now, limit=limit)
            if not due:
                return []
            leased = await self._all(
                "lease_deliveries",
                ids=[r["id"] for r in due],
                lease_until=now + timedelta(seconds=lease_seconds),
            )
        return [self._delivery(r) for r in leased]

    async def record_delivery_attempt(
        self,
        delivery: Delivery,
        attempt: DeliveryAttempt,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        async with self.transaction():
            await self._one(
                "insert_delivery_attempt",
                delivery_id=delivery.id,
                attempted_at=attempt.attempted_at,
                duration_ms=attempt.duration_ms,
                http_status=attempt.http_status,
                error=attempt.error,
                response_body=attempt.response_body,
            )
            status = "delivered" if delivered else "pending" if retry_at else "failed"
            await self._one(
                "settle_delivery",
                id=delivery.id,
                status=status,
                next_attempt_at=retry_at if status == "pending" else None,
                delivered_at=attempt.attempted_at if delivered else None,
            )
            if status == "pending":
                self._emit(Event.DELIVERY)

    async def next_delivery_due(self) -> datetime | None:
        row = await self._one("next_delivery_due")
        return None if row is None else self._time(row["due"])

    async def deliveries_of_task(
        self, project_id: str, session_id: str, task_id: str
    ) -> list[Delivery]:
        await self._task_row(project_id, session_id, task_id)  # NotFound across tenants
        found = await self._all("deliveries_of_task", project_id=project_id, task_id=task_id)
        attempts = await self._all("attempts_of_task", project_id=project_id, task_id=task_id)
        history: dict[int, list[DeliveryAttempt]] = {}
        for row in attempts:
            history.setdefault(row["delivery_id"], []).append(
                rows.attempt_from_row(row, self._time)
            )
        return [self._delivery(r, tuple(history.get(r["id"], ()))) for r in found]

    async def redeliver(self, project_id: str, session_id: str, task_id: str) -> Delivery:
        async with self.transaction():
            task = self._task(await self._task_row(project_id, session_id, task_id, lock=True))
            if not task.status.is_terminal:
                raise InvalidTransition(
                    f"task {task_id} is {task.status.value}; only a finished task's webhook "
                    "can be sent again",
                    code="task_not_finished",
                )
            row = await self._one(
                "redeliver", project_id=project_id, task_id=task_id, now=self.now()
            )
            if row is None:
                raise InvalidTransition(
                    f"task {task_id} has no webhook to send again", code="no_webhook"
                )
            self._emit(Event.DELIVERY)
        return self._delivery(row)

    def _delivery(self, row: Row, history: tuple[DeliveryAttempt, ...] = ()) -> Delivery:
        return rows.delivery_from_row(row, self._time, self._json, history)


_SHOWS_TASK = frozenset({task_events.STATUS, task_events.END})


def _in_session(events: Sequence[NewEvent]) -> int:
    return sum(1 for e in events if e.kind in task_events.SESSION_KINDS)


def _numbered(
    task: Task,
    seq: int,
    session_seq: int | None,
    kind: str,
    data: dict[str, Any],
    at: datetime,
    *,
    shown: bool = True,
) -> TaskEvent:
    """An event of ``task`` at its ids; a status or end event shows the task (as changed)."""
    return TaskEvent(
        task_pk=task.id,
        task_id=task.task_id,
        session_id=task.session_id,
        project_id=task.project_id,
        seq=seq,
        session_seq=session_seq,
        kind=kind,
        data=data,
        at=at,
        task=task if shown else None,
    )


def _queued_task(
    session: Row, new: NewTask, task_id: str, internal_id: int, fair_key: int, now: datetime
) -> Task:
    """The record of a task just inserted, as the database holds it."""
    return Task(
        id=internal_id,
        task_id=task_id,
        project_id=session["project_id"],
        session_id=session["session_id"],
        user_id=session["user_id"],
        agent=new.agent,
        status=TaskStatus.QUEUED,
        priority=new.priority,
        input=new.input,
        progress=None,
        message=None,
        output=None,
        error=None,
        compute_micros=0,
        charged_micros=0,
        compute_price_micros=0,
        webhook_url=new.webhook_url,
        webhook_events=tuple(new.webhook_events),
        metadata=dict(new.metadata),
        timeout_seconds=round(new.timeout_seconds * 1000) / 1000,
        attempt=0,
        max_attempts=new.max_attempts,
        idempotency_key=new.idempotency_key,
        created_at=now,
        started_at=None,
        finished_at=None,
        worker_id=None,
        fair_key=fair_key,
        event_seq=1,
    )


def fire(store: Store, pending: Sequence[tuple[str, str | EventBatch | None]]) -> None:
    """Deliver events collected during a committed transaction to this node's listeners."""
    work = delivery = False
    for event, payload in pending:
        if event == Event.WORK:
            work = True
        elif event == Event.DELIVERY:
            delivery = True
        elif event == Event.TASK_EVENTS and isinstance(payload, EventBatch):
            store.events.committed_here(payload.events)
            store.events.task_events(payload.events)
        elif event == Event.FINISHED and isinstance(payload, str):
            store.events.task_finished(payload)
        elif event == Event.CANCEL and isinstance(payload, str):
            store.events.cancel_requested(payload)
    if work:
        store.events.work_available()
    if delivery:
        store.events.delivery_ready()
