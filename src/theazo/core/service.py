"""The Tasks API as operations on the domain: what a route calls once it has parsed a request.

It validates what the wire models cannot (agents, input schemas, durations, webhook URLs),
enforces tenancy (every lookup is scoped to the caller's project), and holds long polls on the
store's events. It does no HTTP and no SQL.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from theazo.core import cursors, defaults, ids, stream_tokens, streams
from theazo.core.durations import InvalidDuration, parse_duration
from theazo.core.errors import InvalidField, NotFound, StoreUnavailable
from theazo.core.events import TaskEvent
from theazo.core.inputs import InputChecker
from theazo.core.models import AgentInfo, Delivery, NewTask, Session, Task, WebhookSecret
from theazo.core.states import Priority, TaskStatus
from theazo.store.base import LimitsPatch, Store

WebhookUrlCheck = Callable[[str], Awaitable[None]]
Catalogue = Callable[[], Mapping[str, AgentInfo]]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    default_task_timeout_seconds: float = defaults.DEFAULT_TASK_TIMEOUT_SECONDS
    max_task_timeout_seconds: float = defaults.MAX_TASK_TIMEOUT_SECONDS
    max_wait_seconds: float = defaults.MAX_WAIT_SECONDS
    default_wait_seconds: float = defaults.DEFAULT_WAIT_SECONDS
    webhook_secret_overlap_seconds: float = defaults.WEBHOOK_SECRET_ROTATION_HOURS * 3600


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """A submit as the client sent it, its shapes already checked by the wire model."""

    agent: str
    input: Any
    priority: str = "normal"
    webhook: str | None = None
    webhook_events: tuple[str, ...] = ("completed",)
    timeout: str | float | None = None
    metadata: Mapping[str, str] | None = None
    retries: int = 0
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    session: Session
    cost_amount: int  # minor units: exactly the sum of its tasks' costs as shown, right now


class TaskService:
    def __init__(
        self,
        store: Store,
        catalogue: Catalogue,
        check_webhook_url: WebhookUrlCheck,
        settings: ServiceSettings | None = None,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.check_webhook_url = check_webhook_url
        self.settings = settings or ServiceSettings()
        self._key_cache: dict[str, str] = {}
        self._releasing = False
        self._reads: dict[tuple[int, str, str, str], asyncio.Future[Task]] = {}
        self._inputs = InputChecker()
        self._token_secret: str | None = None
        self.waits_held = 0  # long polls held now (a gauge of /metrics)

    # --- auth ------------------------------------------------------------------------------
    async def authenticate(self, api_key: str) -> str | None:
        """The project of a key, or None. Keys are looked up by hash; a hit is cached."""
        if not ids.is_well_formed_key(api_key):
            return None
        key_hash = ids.hash_api_key(api_key)
        cached = self._key_cache.get(key_hash)
        if cached is not None:
            return cached
        project_id = await self.store.project_for_key(key_hash)
        if project_id is not None:
            if len(self._key_cache) >= defaults.AUTH_CACHE_ENTRIES:
                self._key_cache.clear()
            self._key_cache[key_hash] = project_id
        return project_id

    # --- sessions --------------------------------------------------------------------------
    async def session_for_user(self, project_id: str, user_id: str) -> SessionView:
        session = await self.store.session_for_user(project_id, user_id)
        return await self._view(session)

    async def get_session(self, project_id: str, session_id: str) -> SessionView:
        return await self._view(await self.store.get_session(project_id, session_id))

    async def set_limits(self, project_id: str, session_id: str, patch: LimitsPatch) -> SessionView:
        session = await self.store.set_session_limits(project_id, session_id, patch)
        return await self._view(session)

    async def _view(self, session: Session) -> SessionView:
        now = self.store.now()
        amount = session.billed_amount
        if session.running_count:
            running = await self.store.running_tasks_of_session(session.session_id)
            amount += sum(task.cost_at(now).amount for task in running)
        return SessionView(session, amount)

    # --- tasks -----------------------------------------------------------------------------
    async def submit(self, project_id: str, session_id: str, request: SubmitRequest) -> Task:
        new_task = await self._validate(request)
        (task,) = await self.store.submit(project_id, session_id, [new_task])
        try:
            return await self._with_position(task)
        except StoreUnavailable:  # it is stored: answer so, not with a 503 a retry repeats
            return task

    async def wait_submitted(
        self, project_id: str, session_id: str, task: Task, timeout_seconds: float
    ) -> Task:
        """``wait`` after a submit that was stored: if the store fails meanwhile, the answer
        is the task as submitted (202), since an error would have the client submit again."""
        try:
            return await self.wait(project_id, session_id, task.task_id, timeout_seconds)
        except StoreUnavailable:
            return task

    async def submit_batch(
        self, project_id: str, session_id: str, requests: Sequence[SubmitRequest]
    ) -> list[Task]:
        new_tasks = []
        for index, request in enumerate(requests):
            try:
                new_tasks.append(await self._validate(request))
            except InvalidField as exc:
                raise InvalidField(
                    f"tasks[{index}].{exc.field}", f"tasks[{index}]: {exc.detail}", code=exc.code
                ) from exc
        return await self.store.submit(project_id, session_id, new_tasks)

    async def _validate(self, request: SubmitRequest) -> NewTask:
        agent = self.catalogue().get(request.agent)
        if agent is None:
            known = ", ".join(sorted(self.catalogue())) or "none"
            raise InvalidField(
                "agent",
                f"no agent named {request.agent!r} is served here (agents: {known})",
                code="unknown_agent",
            )
        self._inputs.check(agent, request.input)
        if request.webhook is not None:
            await self.check_webhook_url(request.webhook)
        return NewTask(
            agent=agent.name,
            input=request.input,
            priority=_priority(request.priority),
            timeout_seconds=self._timeout(request.timeout),
            max_attempts=request.retries + 1,
            metadata=dict(request.metadata or {}),
            webhook_url=request.webhook,
            webhook_events=request.webhook_events,
            idempotency_key=request.idempotency_key,
        )

    def _timeout(self, value: str | float | None) -> float:
        if value is None:
            return self.settings.default_task_timeout_seconds
        seconds = _timeout_seconds(value)
        if not 0 < seconds <= self.settings.max_task_timeout_seconds:
            raise InvalidField(
                "timeout",
                f"timeout must be more than 0 and at most "
                f"{self.settings.max_task_timeout_seconds:g}s",
                code="invalid_duration",
            )
        return seconds

    async def get(self, project_id: str, session_id: str, task_id: str) -> Task:
        task = await self.store.get_task(project_id, session_id, task_id)
        return await self._with_position(task)

    async def list(
        self,
        project_id: str,
        session_id: str,
        statuses: Sequence[TaskStatus],
        limit: int,
        cursor: str | None = None,
    ) -> list[Task]:
        """The session's tasks, newest first, after the task ``cursor`` names (see
        core/cursors.py); a cursor of another session is refused."""
        before_id = (
            None if cursor is None else await self._cursor_position(project_id, session_id, cursor)
        )
        tasks = await self.store.list_tasks(project_id, session_id, statuses, limit, before_id)
        return [await self._with_position(task) for task in tasks]

    async def _cursor_position(self, project_id: str, session_id: str, cursor: str) -> int:
        await self.store.get_session(project_id, session_id)  # an unknown session is a 404
        try:
            return (await self.store.get_task(project_id, session_id, cursors.decode(cursor))).id
        except NotFound:
            raise cursors.refused() from None

    async def _with_position(self, task: Task) -> Task:
        if task.status is not TaskStatus.QUEUED:
            return task
        position = await self.store.queue_position(task)
        return replace(task, queue_position=position)

    def wait_timeout(self, value: str | None) -> float:
        if value is None:
            return self.settings.default_wait_seconds
        return min(_timeout_seconds(value), self.settings.max_wait_seconds)

    async def wait(
        self, project_id: str, session_id: str, task_id: str, timeout_seconds: float
    ) -> Task:
        """Hold until the task is terminal or the (capped) timeout passes; then the task."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        events = self.store.events
        waiter = events.finish_waiter(task_id)  # before the first read: see EventHub
        self.waits_held += 1
        try:
            # Waits that arrive between two firings share one read too: ten thousand waits
            # opened on a hundred tasks cost a hundred reads, not ten thousand. A shared read
            # may have begun just before this wait arrived: right for a terminal task (that
            # is final), so an answer about a task still under way is read afresh below.
            task = await self._read_after(events.firings, project_id, session_id, task_id)
            while not task.status.is_terminal and not self._releasing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait({waiter}, timeout=remaining)
                if not waiter.done():  # the timeout
                    break
                firing = waiter.result()
                waiter = events.finish_waiter(task_id)  # again before reading
                task = await self._read_after(firing, project_id, session_id, task_id)
        finally:
            self.waits_held -= 1
            events.drop_waiter(task_id, waiter)
        if not task.status.is_terminal and not self._releasing:  # as it is now
            task = await self.store.get_task(project_id, session_id, task_id)
        return await self._with_position(task)

    async def _read_after(
        self, firing: int, project_id: str, session_id: str, task_id: str
    ) -> Task:
        """Read a task once for all the waits that need a read begun after the same firing
        (those it woke, and those that arrived since): such a read shows what that firing
        announced, and any later change fires again. (A thousand waits, one read.)"""
        key = (firing, project_id, session_id, task_id)
        shared = self._reads.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self.store.get_task(project_id, session_id, task_id))
            self._reads[key] = shared
            shared.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(shared)

    def release_waiters(self) -> None:
        """The node is stopping: answer every held wait now, with its task as it is, and end
        every stream (their clients resume from their last id, here or on another node)."""
        self._releasing = True
        self.store.events.resync_waiters()
        self.store.events.resync_subscriptions(closing=True)

    # --- events and logs -------------------------------------------------------------------
    async def task_stream(
        self, project_id: str, session_id: str, task_id: str, after: int | None
    ) -> AsyncIterator[builtins.list[TaskEvent]] | None:
        """The task's event stream from ``after`` (None: from the start, the task as it is now
        first); None when nothing can follow that id (the task ended before it)."""
        task = await self.get(project_id, session_id, task_id)
        if after is not None:
            _check_cursor(after, task.event_seq)
            if task.status.is_terminal and after >= task.event_seq:
                return None
        return streams.follow_task(self.store, project_id, task, after)

    async def session_stream(
        self, project_id: str, session_id: str, after: int | None
    ) -> AsyncIterator[builtins.list[TaskEvent]]:
        """The session's event stream after ``after`` (None: from its first event)."""
        last = await self.store.last_session_event(project_id, session_id)
        if after is not None:
            _check_cursor(after, last)
        return streams.follow_session(self.store, project_id, session_id, after or 0)

    async def task_logs(
        self, project_id: str, session_id: str, task_id: str, after: int, limit: int
    ) -> builtins.list[TaskEvent]:
        return await self.store.task_logs(project_id, session_id, task_id, after, limit)

    async def mint_stream_token(
        self, project_id: str, session_id: str, ttl: str | float | None
    ) -> tuple[str, stream_tokens.StreamGrant]:
        """A token that reads this session's streams and logs for ``ttl`` (default 15 min)."""
        await self.store.get_session(project_id, session_id)  # NotFound across tenants
        seconds = defaults.STREAM_TOKEN_TTL_SECONDS
        if ttl is not None:
            seconds = _duration("ttl", ttl)
            if not 0 < seconds <= defaults.STREAM_TOKEN_MAX_TTL_SECONDS:
                raise InvalidField(
                    "ttl",
                    f"ttl must be more than 0 and at most "
                    f"{defaults.STREAM_TOKEN_MAX_TTL_SECONDS:g}s",
                    code="invalid_duration",
                )
        expires_at = self.store.now() + timedelta(seconds=seconds)
        grant = stream_tokens.StreamGrant(project_id, session_id, expires_at)
        return stream_tokens.mint(await self._stream_token_secret(), grant), grant

    async def read_stream_token(self, token: str) -> stream_tokens.StreamGrant | None:
        secret = await self._stream_token_secret()
        return stream_tokens.verify(secret, token, self.store.now())

    async def _stream_token_secret(self) -> str:
        if self._token_secret is None:
            self._token_secret = await self.store.deployment_secret("stream-tokens")
        return self._token_secret

    async def cancel(self, project_id: str, session_id: str, task_id: str) -> Task:
        return await self.store.cancel(project_id, session_id, task_id)

    # --- webhooks --------------------------------------------------------------------------
    async def webhook_secrets(self, project_id: str) -> builtins.list[WebhookSecret]:
        """The secrets that sign now: the current one first, then those rotated out."""
        return await self.store.webhook_secrets(project_id)

    async def rotate_webhook_secret(self, project_id: str) -> builtins.list[WebhookSecret]:
        overlap = self.settings.webhook_secret_overlap_seconds
        return await self.store.rotate_webhook_secret(project_id, overlap)

    async def deliveries(
        self, project_id: str, session_id: str, task_id: str
    ) -> builtins.list[Delivery]:
        return await self.store.deliveries_of_task(project_id, session_id, task_id)

    async def redeliver(self, project_id: str, session_id: str, task_id: str) -> Delivery:
        """Queue the final webhook again; the delivery with its attempts so far."""
        queued = await self.store.redeliver(project_id, session_id, task_id)
        found = await self.store.deliveries_of_task(project_id, session_id, task_id)
        return next((d for d in found if d.id == queued.id), queued)


def _priority(label: str) -> Priority:
    try:
        return Priority.from_label(label)
    except KeyError:
        raise InvalidField(
            "priority",
            f"priority must be 'high', 'normal' or 'low', not {label!r}",
            code="invalid_priority",
        ) from None


def _timeout_seconds(value: str | float) -> float:
    """A ``timeout`` field or parameter in seconds; a 422 naming it if it is no duration."""
    return _duration("timeout", value)


def _duration(field: str, value: str | float) -> float:
    try:
        return parse_duration(value)
    except InvalidDuration as exc:
        raise InvalidField(field, str(exc), code="invalid_duration") from exc


def _check_cursor(after: int, last: int) -> None:
    """A stream's cursor is an id it was sent: never past the latest."""
    if after > last:
        raise InvalidField(
            "after",
            f"event {after} does not exist (the latest is {last}): resume from an id the "
            "stream sent",
            code="invalid_cursor",
        )
