"""A task's attempts as the dashboard shows them, from its status events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from theazo.core.events import TaskEvent
from theazo.core.models import Task
from theazo.core.states import Priority, TaskStatus
from theazo.dashboard.views import Attempt, attempts_of

T0 = datetime(2026, 6, 1, tzinfo=UTC)
TASK = Task(
    id=1, task_id="task_x", project_id="p", session_id="s", user_id="u", agent="echo",
    status=TaskStatus.QUEUED, priority=Priority.NORMAL, input=None, progress=None,
    message=None, output=None, error=None, compute_micros=0, charged_micros=0,
    compute_price_micros=0, webhook_url=None, webhook_events=(), metadata={},
    timeout_seconds=60, attempt=0, max_attempts=3, idempotency_key=None, created_at=T0,
    started_at=None, finished_at=None, worker_id=None, fair_key=1,
)  # fmt: skip


def _event(seconds: int, status: TaskStatus, attempt: int, kind: str = "status") -> TaskEvent:
    shown = replace(TASK, status=status, attempt=attempt)
    at = T0 + timedelta(seconds=seconds)
    return TaskEvent(1, "task_x", "s", "p", seconds, None, kind, {}, at, shown)


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_lost_attempt_then_a_completed_one() -> None:
    timeline = [
        _event(0, TaskStatus.QUEUED, 0),
        _event(1, TaskStatus.RUNNING, 1),
        _event(5, TaskStatus.QUEUED, 1),  # its node was lost: back in the queue
        _event(6, TaskStatus.RUNNING, 2),
        _event(9, TaskStatus.COMPLETED, 2),
        _event(9, TaskStatus.COMPLETED, 2, kind="end"),
    ]
    assert attempts_of(timeline) == [
        Attempt(1, _at(1), _at(5), "requeued"),
        Attempt(2, _at(6), _at(9), "completed"),
    ]


def test_a_running_attempt_has_not_ended_and_a_cancelled_queued_task_never_ran() -> None:
    assert attempts_of([_event(0, TaskStatus.QUEUED, 0), _event(2, TaskStatus.RUNNING, 1)]) == [
        Attempt(1, _at(2), None, "running")
    ]
    assert attempts_of([_event(0, TaskStatus.QUEUED, 0), _event(3, TaskStatus.CANCELLED, 0)]) == []
