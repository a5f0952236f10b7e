"""Task transitions, read from the status events a node's transactions commit.

Every change of a task's status is stored as a ``status`` event in the transaction that makes
it (store/sql.py), and the store hands each committed batch to ``EventHub.on_committed_here``
on the node that made it. So reading transitions from there counts each one exactly once in a
deployment, whoever made it: a claim, an agent's end, a cancel by the API, a rescue of a lost
node's tasks by another node. Pure logic, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from theazo.core import events as kinds
from theazo.core.events import TaskEvent
from theazo.core.models import Task
from theazo.core.states import TaskStatus


class Kind(StrEnum):
    SUBMITTED = "submitted"  # stored, queued
    STARTED = "started"  # a sandbox has it (an attempt began)
    RETRIED = "retried"  # a lost attempt's task is queued again for another one
    REQUEUED = "requeued"  # a claim whose answer was lost, given back as if never claimed
    FINISHED = "finished"  # completed, failed or cancelled: the task's status says which


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Kind
    task: Task  # as the transition left it
    at: datetime


def transitions(events: Iterable[TaskEvent]) -> Iterator[Transition]:
    """The transitions among ``events`` (one committed batch), in their order."""
    for event in events:
        task = event.task
        if event.kind != kinds.STATUS or task is None:
            continue
        yield Transition(_kind(event, task), task, event.at)


def _kind(event: TaskEvent, task: Task) -> Kind:
    status = task.status
    if status is TaskStatus.RUNNING:
        return Kind.STARTED
    if status.is_terminal:
        return Kind.FINISHED
    if event.seq == 1:  # a task's first event is its submit
        return Kind.SUBMITTED
    # Back in the queue: after a lost attempt it keeps that attempt's number; a claim given
    # back unstarted takes its number back (0 for a first attempt). A re-claimed retry given
    # back unstarted reads as a retry too: the store keeps no more than that.
    return Kind.RETRIED if task.attempt >= 1 else Kind.REQUEUED


def queue_wait_seconds(task: Task) -> float | None:
    """Submit → start of a first attempt (a retry's wait began when it was requeued, which the
    task does not keep)."""
    if task.attempt != 1 or task.started_at is None:
        return None
    return max(0.0, (task.started_at - task.created_at).total_seconds())


def run_seconds(task: Task) -> float | None:
    """Start → end of the attempt that ended the task; None for one that never started."""
    if task.started_at is None or task.finished_at is None:
        return None
    return max(0.0, (task.finished_at - task.started_at).total_seconds())
