"""What the dashboard shows and does, as operations on the domain: no HTTP here, and no SQL
(the store's named reads, store/project_reads.py). Every read and every change is scoped to
the signed-in project, through the same service the API uses, so tenancy is kept in one place.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from theazo.core import defaults
from theazo.core.errors import InvalidField, InvalidTransition, NotFound, Unauthenticated
from theazo.core.events import TaskEvent
from theazo.core.models import AgentInfo, Delivery, Task
from theazo.core.service import SessionView, TaskService
from theazo.core.states import TaskStatus
from theazo.dashboard import tokens
from theazo.store.base import ProjectOverview, TaskQuery, WorkerNode

_ACTIVE = (TaskStatus.QUEUED, TaskStatus.RUNNING)
_CURSOR_VERSION = "d1:"


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[Task]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Selection:
    """What a bulk cancel would stop: how many (at most the cap), and up to which task, so
    that the cancel confirmed stops those counted and none submitted since."""

    count: int
    capped: bool
    through: str | None  # a cursor naming the newest task counted


@dataclass(frozen=True, slots=True)
class BulkCancel:
    cancelled: list[str]
    already_ended: int


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    started_at: datetime
    ended_at: datetime | None
    outcome: str  # running, completed, failed, cancelled, or requeued (retried or lost)


@dataclass(frozen=True, slots=True)
class TaskDetail:
    task: Task
    timeline: list[TaskEvent]
    attempts: list[Attempt]
    deliveries: list[Delivery]


@dataclass(frozen=True, slots=True)
class Overview:
    queue: ProjectOverview
    nodes: list[WorkerNode]
    agents: list[AgentInfo]
    window_seconds: float
    now: datetime


class Dashboard:
    def __init__(self, service: TaskService) -> None:
        self.service = service
        self.store = service.store
        self._secret: str | None = None

    # --- signing in ------------------------------------------------------------------------
    async def sign_in(self, api_key: str) -> tuple[str, tokens.SignIn]:
        """A cookie for the key's project; ``Unauthenticated`` for a key not known here."""
        project_id = await self.service.authenticate(api_key.strip())
        if project_id is None:
            raise Unauthenticated("the API key is not known here")
        expires_at = self.store.now() + timedelta(hours=defaults.DASHBOARD_SESSION_HOURS)
        return tokens.mint(await self._cookie_secret(), project_id, expires_at)

    async def signed_in(self, cookie: str | None) -> tokens.SignIn | None:
        if not cookie:
            return None
        return tokens.verify(await self._cookie_secret(), cookie, self.store.now())

    async def _cookie_secret(self) -> str:
        if self._secret is None:
            self._secret = await self.store.deployment_secret("dashboard-sessions")
        return self._secret

    # --- tasks -----------------------------------------------------------------------------
    async def tasks(
        self, project_id: str, query: TaskQuery, limit: int, cursor: str | None
    ) -> TaskPage:
        before = None if cursor is None else await self._position(project_id, cursor)
        found = await self.store.list_project_tasks(project_id, query, limit + 1, before)
        page = found[:limit]
        more = len(found) > limit and page
        positioned = [await self._positioned(task) for task in page]
        return TaskPage(positioned, encode_cursor(page[-1]) if more else None)

    async def _positioned(self, task: Task) -> Task:
        if task.status is not TaskStatus.QUEUED:
            return task
        return replace(task, queue_position=await self.store.queue_position(task))

    async def _position(self, project_id: str, cursor: str) -> int:
        session_id, task_id = decode_cursor(cursor)
        try:
            return (await self.store.get_task(project_id, session_id, task_id)).id
        except NotFound:
            raise _cursor_refused() from None

    async def selection(self, project_id: str, query: TaskQuery) -> Selection:
        """The queued and running tasks ``query`` selects, as a bulk cancel would take them."""
        found = await self._cancellable(project_id, query, None)
        capped = len(found) > defaults.DASHBOARD_BULK_CANCEL_MAX
        found = found[: defaults.DASHBOARD_BULK_CANCEL_MAX]
        return Selection(len(found), capped, encode_cursor(found[0]) if found else None)

    async def cancel_selection(
        self, project_id: str, query: TaskQuery, through: str | None
    ) -> BulkCancel:
        """Cancel what ``selection`` counted: tasks no newer than ``through``, at most the cap.
        Tasks that ended meanwhile are counted apart, not an error."""
        if through is None:
            return BulkCancel([], 0)
        newest = await self._position(project_id, through)
        found = await self._cancellable(project_id, query, newest + 1)
        cancelled, ended = [], 0
        for task in found[: defaults.DASHBOARD_BULK_CANCEL_MAX]:
            try:
                await self.service.cancel(project_id, task.session_id, task.task_id)
                cancelled.append(task.task_id)
            except InvalidTransition:
                ended += 1
        return BulkCancel(cancelled, ended)

    async def _cancellable(
        self, project_id: str, query: TaskQuery, before_id: int | None
    ) -> list[Task]:
        statuses = tuple(s for s in (query.statuses or _ACTIVE) if s in _ACTIVE)
        if not statuses:
            return []
        narrowed = replace(query, statuses=statuses)
        limit = defaults.DASHBOARD_BULK_CANCEL_MAX + 1
        return await self.store.list_project_tasks(project_id, narrowed, limit, before_id)

    async def detail(self, project_id: str, session_id: str, task_id: str) -> TaskDetail:
        task = await self.service.get(project_id, session_id, task_id)
        timeline = await self.store.task_timeline(project_id, session_id, task_id)
        deliveries = await self.service.deliveries(project_id, session_id, task_id)
        return TaskDetail(task, timeline, attempts_of(timeline), deliveries)

    # --- sessions and the deployment -------------------------------------------------------
    async def sessions(
        self, project_id: str, after_user_id: str | None, limit: int
    ) -> list[SessionView]:
        found = await self.store.list_sessions(project_id, after_user_id, limit)
        return [await self.service.get_session(project_id, s.session_id) for s in found]

    async def overview(self, project_id: str) -> Overview:
        now = self.store.now()
        window = defaults.DASHBOARD_FAILURE_WINDOW_SECONDS
        queue = await self.store.project_overview(project_id, now - timedelta(seconds=window))
        agents = sorted(self.service.catalogue().values(), key=lambda a: a.name)
        return Overview(queue, await self.store.worker_nodes(), agents, window, now)


def attempts_of(timeline: Sequence[TaskEvent]) -> list[Attempt]:
    """Each run of the task, from its status events: when it started and how it ended."""
    attempts: list[Attempt] = []
    for event in timeline:
        shown = event.task
        if shown is None:
            continue
        current = attempts[-1] if attempts and attempts[-1].ended_at is None else None
        if shown.status is TaskStatus.RUNNING:
            if current is None or current.number != shown.attempt:
                attempts.append(Attempt(shown.attempt, event.at, None, "running"))
        elif current is not None:
            outcome = "requeued" if shown.status is TaskStatus.QUEUED else shown.status.value
            attempts[-1] = replace(current, ended_at=event.at, outcome=outcome)
    return attempts


def encode_cursor(task: Task) -> str:
    """Names the task a page ended with, by its session and public id (never the row id)."""
    text = f"{_CURSOR_VERSION}{task.session_id} {task.task_id}"
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _cursor_refused() from None
    parts = text.removeprefix(_CURSOR_VERSION).split(" ")
    if not text.startswith(_CURSOR_VERSION) or len(parts) != 2 or not all(parts):
        raise _cursor_refused()
    return parts[0], parts[1]


def _cursor_refused() -> InvalidField:
    return InvalidField(
        "cursor",
        "the cursor is not one this listing gave: pass it back as is",
        code="invalid_cursor",
    )
