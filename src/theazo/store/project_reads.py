"""What the dashboard reads, written once over named SQL queries for every backend: a
project's tasks across its sessions, its sessions, its queue at a glance, the nodes, and a
task's timeline. Reads only; nothing here changes a row."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from theazo.core import defaults
from theazo.core.events import TaskEvent
from theazo.core.models import Session, Task
from theazo.core.states import Priority, TaskStatus
from theazo.store.base import ActiveCount, ProjectOverview, Store, TaskQuery, WorkerNode

Row = Mapping[str, Any]
_EVERY_STATUS = [status.value for status in TaskStatus]
_NEWEST = 2**63 - 1


class ProjectReads(Store, abc.ABC):
    """The dashboard's reads; a SQL store supplies the primitives below."""

    @abc.abstractmethod
    async def _one(self, query: str, **params: Any) -> Row | None: ...

    @abc.abstractmethod
    async def _all(self, query: str, **params: Any) -> list[Row]: ...

    @abc.abstractmethod
    def _task(self, row: Row) -> Task: ...

    @abc.abstractmethod
    def _session(self, row: Row) -> Session: ...

    @abc.abstractmethod
    def _time(self, value: Any) -> datetime | None:
        """A time as the driver returns it."""

    @abc.abstractmethod
    async def _task_row(
        self, project_id: str, session_id: str, task_id: str, *, lock: bool = False
    ) -> Row: ...

    @abc.abstractmethod
    def _event(
        self,
        row: Row,
        task: Task | None,
        task_id: str | None = None,
        project_id: str | None = None,
    ) -> TaskEvent: ...

    async def list_project_tasks(
        self, project_id: str, query: TaskQuery, limit: int, before_id: int | None
    ) -> list[Task]:
        before = _NEWEST if before_id is None else before_id
        if query == TaskQuery():  # the list as it first opens: a walk down the index
            rows = await self._all(
                "project_tasks_newest", project_id=project_id, before_id=before, limit=limit
            )
            return [self._task(row) for row in rows]
        # Every filter is always passed, null meaning "any": one query text for every
        # combination, rather than SQL assembled from the filters given.
        rows = await self._all(
            "project_tasks",
            project_id=project_id,
            before_id=before,
            statuses=[s.value for s in query.statuses] or _EVERY_STATUS,
            agent=query.agent,
            session_id=query.session_id,
            user_id=query.user_id,
            priority=None if query.priority is None else int(query.priority),
            created_after=query.created_after,
            created_before=query.created_before,
            limit=limit,
        )
        return [self._task(row) for row in rows]

    async def list_sessions(
        self, project_id: str, after_user_id: str | None, limit: int
    ) -> list[Session]:
        rows = await self._all(
            "project_sessions",
            project_id=project_id,
            after_user_id=after_user_id or "",
            limit=limit,
        )
        return [self._session(row) for row in rows]

    async def project_overview(self, project_id: str, ended_since: datetime) -> ProjectOverview:
        active = await self._all("project_active_counts", project_id=project_id)
        oldest = await self._one("project_oldest_queued", project_id=project_id)
        ended = await self._all("project_ended_since", project_id=project_id, since=ended_since)
        return ProjectOverview(
            active=tuple(
                ActiveCount(TaskStatus(r["status"]), Priority(r["priority"]), r["count"])
                for r in active
            ),
            oldest_queued_at=None if oldest is None else self._time(oldest["oldest"]),
            ended_since={TaskStatus(r["status"]): r["count"] for r in ended},
        )

    async def worker_nodes(self) -> list[WorkerNode]:
        rows = await self._all("worker_nodes")
        return [
            WorkerNode(
                worker_id=r["worker_id"],
                host=r["host"],
                pid=r["pid"],
                started_at=_required(self._time(r["started_at"])),
                heartbeat_at=_required(self._time(r["heartbeat_at"])),
                lease_expires_at=_required(self._time(r["lease_expires_at"])),
                slots=r["slots"],
                running=r["running"],
            )
            for r in rows
        ]

    async def task_timeline(
        self, project_id: str, session_id: str, task_id: str
    ) -> list[TaskEvent]:
        task = self._task(await self._task_row(project_id, session_id, task_id))
        rows = await self._all(
            "task_status_events", task_pk=task.id, limit=defaults.TIMELINE_MAX_EVENTS
        )
        if rows:  # read again: the task at least as new as its last event read
            task = self._task(await self._task_row(project_id, session_id, task_id))
        return [self._event(row, task) for row in rows]


def _required(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment
