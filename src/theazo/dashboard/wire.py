"""The JSON of the dashboard's own endpoints (/dashboard/api), camelCase like the API's.

These are not part of the public API (they are left out of /openapi.json): they serve the
page shipped beside them, and change with it. Tasks, sessions and deliveries are shown in the
public API's own shapes (api/wire.py), so the page reads one vocabulary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, StrictStr

from theazo.api.wire import (
    AgentOut,
    DeliveryOut,
    PriorityLabel,
    SessionOut,
    StatusLabel,
    WireModel,
    task_json,
)
from theazo.core.clock import to_rfc3339
from theazo.core.models import Task
from theazo.core.states import Priority, TaskStatus
from theazo.dashboard import tokens
from theazo.dashboard.views import Overview, TaskDetail
from theazo.store.base import TaskQuery

Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]


def dashboard_task(task: Task, now: datetime) -> dict[str, Any]:
    """A task as the API shows it, with the user whose session it is in."""
    return {**task_json(task, now), "userId": task.user_id}


class SignInBody(WireModel):
    api_key: Annotated[StrictStr, Field(min_length=1, max_length=200)]


class MeOut(WireModel):
    project_id: str
    csrf_token: str = Field(description="Send it as X-CSRF-Token with every change.")
    expires_at: str

    @classmethod
    def of(cls, sign_in: tokens.SignIn) -> MeOut:
        return cls(
            project_id=sign_in.project_id,
            csrf_token=sign_in.csrf_token,
            expires_at=to_rfc3339(sign_in.expires_at) or "",
        )


class Filter(WireModel):
    """Which tasks: every field left out selects everything."""

    status: list[StatusLabel] = Field(default_factory=list, max_length=5)
    agent: Name | None = None
    session_id: Name | None = None
    user_id: Name | None = None
    priority: PriorityLabel | None = None
    since: AwareDatetime | None = Field(default=None, description="Created at or after.")
    until: AwareDatetime | None = Field(default=None, description="Created before.")

    def to_query(self) -> TaskQuery:
        return TaskQuery(
            statuses=tuple(TaskStatus(s) for s in dict.fromkeys(self.status)),
            agent=self.agent,
            session_id=self.session_id,
            user_id=self.user_id,
            priority=None if self.priority is None else Priority.from_label(self.priority),
            created_after=self.since,
            created_before=self.until,
        )


class BulkCancelBody(Filter):
    through: Annotated[StrictStr, Field(max_length=400)] | None = Field(
        default=None, description="The selection's `through`: nothing newer is cancelled."
    )


class SelectionOut(WireModel):
    count: int
    capped: bool = Field(description="More tasks match than one bulk cancel stops.")
    through: str | None


class BulkCancelOut(WireModel):
    cancelled: list[str]
    already_ended: int


class AttemptOut(WireModel):
    number: int
    started_at: str
    ended_at: str | None
    outcome: str


class TimelineEntry(WireModel):
    at: str
    status: str
    attempt: int
    end: bool


class DetailOut(WireModel):
    task: dict[str, Any]
    timeline: list[TimelineEntry]
    attempts: list[AttemptOut]
    deliveries: list[DeliveryOut]

    @classmethod
    def of(cls, detail: TaskDetail, now: datetime) -> DetailOut:
        return cls(
            task=dashboard_task(detail.task, now),
            timeline=[
                TimelineEntry(
                    at=to_rfc3339(e.at) or "",
                    status=e.task.status.value,
                    attempt=e.task.attempt,
                    end=e.kind == "end",
                )
                for e in detail.timeline
                if e.task is not None
            ],
            attempts=[
                AttemptOut(
                    number=a.number,
                    started_at=to_rfc3339(a.started_at) or "",
                    ended_at=to_rfc3339(a.ended_at),
                    outcome=a.outcome,
                )
                for a in detail.attempts
            ],
            deliveries=[DeliveryOut.of(d) for d in detail.deliveries],
        )


class SessionPage(WireModel):
    data: list[SessionOut]
    next_after: str | None = Field(description="Pass as ?after= for the next page.")


class PriorityCounts(WireModel):
    priority: PriorityLabel
    queued: int
    running: int


class NodeOut(WireModel):
    worker_id: str
    host: str
    started_at: str
    heartbeat_at: str
    slots: int | None
    running: int
    free: int | None


class RecentOut(WireModel):
    window_seconds: float
    completed: int
    failed: int
    cancelled: int
    failure_rate: float | None = Field(description="failed / (completed + failed); null: none")


class OverviewOut(WireModel):
    queue: list[PriorityCounts]
    oldest_queued_at: str | None
    oldest_queued_seconds: float | None
    recent: RecentOut
    nodes: list[NodeOut]
    agents: list[AgentOut]

    @classmethod
    def of(cls, overview: Overview) -> OverviewOut:
        queue = overview.queue
        counts = {(c.status, c.priority): c.count for c in queue.active}
        ended = queue.ended_since
        completed = ended.get(TaskStatus.COMPLETED, 0)
        failed = ended.get(TaskStatus.FAILED, 0)
        oldest = queue.oldest_queued_at
        return cls(
            queue=[
                PriorityCounts(
                    priority=p.label,  # type: ignore[arg-type]
                    queued=counts.get((TaskStatus.QUEUED, p), 0),
                    running=counts.get((TaskStatus.RUNNING, p), 0),
                )
                for p in Priority
            ],
            oldest_queued_at=to_rfc3339(oldest),
            oldest_queued_seconds=None
            if oldest is None
            else max((overview.now - oldest).total_seconds(), 0.0),
            recent=RecentOut(
                window_seconds=overview.window_seconds,
                completed=completed,
                failed=failed,
                cancelled=ended.get(TaskStatus.CANCELLED, 0),
                failure_rate=failed / (completed + failed) if completed + failed else None,
            ),
            nodes=[
                NodeOut(
                    worker_id=n.worker_id,
                    host=n.host,
                    started_at=to_rfc3339(n.started_at) or "",
                    heartbeat_at=to_rfc3339(n.heartbeat_at) or "",
                    slots=n.slots,
                    running=n.running,
                    free=None if n.slots is None else max(n.slots - n.running, 0),
                )
                for n in overview.nodes
            ],
            agents=[AgentOut.of(a) for a in overview.agents],
        )


class StreamTokenOut(WireModel):
    token: str
