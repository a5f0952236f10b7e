"""Task events: what the task and session streams carry, and how a task's status at the time
of an event is kept without copying the whole task into every event.

A task's events are numbered from 1 by ``seq`` (the task stream's ids); the status and
progress events of a session are numbered again by ``session_seq`` (the session stream's ids).
A ``status`` event stores only what changes over a task's life (a *snapshot*); the rest
(input, agent, metadata…) is read from the task itself when the event is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from theazo.core import cost
from theazo.core.models import Task
from theazo.core.states import TaskStatus

STATUS: Final = "status"
PROGRESS: Final = "progress"
LOG: Final = "log"
CHARGE: Final = "charge"
END: Final = "end"
KINDS: Final = frozenset({STATUS, PROGRESS, LOG, CHARGE, END})
SESSION_KINDS: Final = frozenset({STATUS, PROGRESS})  # what the session stream carries

STDOUT: Final = "stdout"
STDERR: Final = "stderr"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a run reports, before the store numbers it."""

    kind: str  # progress, log or charge
    data: dict[str, Any]
    at: datetime


@dataclass(slots=True, eq=False, weakref_slot=True)
class TaskEvent:
    """A stored event of one task; never changed once made (not frozen only because a frozen
    dataclass is slow to make, and a batch submit makes a thousand).

    ``task`` is the task as the event shows it, for ``status`` and ``end`` (None otherwise).
    Events compare (and hash) by identity, and may be weakly referred to: the one event a
    commit told every stream about is written once for all of them (api/sse.py).
    """

    task_pk: int
    task_id: str
    session_id: str
    project_id: str
    seq: int
    session_seq: int | None
    kind: str
    data: dict[str, Any]
    at: datetime
    task: Task | None = field(default=None, compare=False)

    @property
    def in_session_stream(self) -> bool:
        return self.session_seq is not None


def progress_event(progress: float | None, message: str | None, at: datetime) -> NewEvent:
    return NewEvent(PROGRESS, {"progress": progress, "message": message}, at)


def charge_event(micros: int, description: str | None, total_micros: int, at: datetime) -> NewEvent:
    """A charge of ``micros``; ``total_micros`` is the task's exact cost once it is added."""
    return NewEvent(
        CHARGE,
        {"amountMicros": micros, "description": description, "costMicros": total_micros},
        at,
    )


def log_event(stream: str, text: str, at: datetime) -> NewEvent:
    return NewEvent(LOG, {"stream": stream, "text": text}, at)


# --- status snapshots ------------------------------------------------------------------------
def snapshot(task: Task) -> dict[str, Any]:
    """What a status event keeps of the task: the fields that change while it lives; nothing
    for a task just submitted (most events of a batch submit), which is all as it was sent."""
    if task.status is TaskStatus.QUEUED and task.attempt == 0:
        return {}
    return {
        "status": task.status.value,
        "attempt": task.attempt,
        "progress": task.progress,
        "message": task.message,
        "computeMicros": task.compute_micros,
        "chargedMicros": task.charged_micros,
        "startedAt": micros(task.started_at),
        "finishedAt": micros(task.finished_at),
    }


def task_at(current: Task, kept: dict[str, Any]) -> Task:
    """The task as a status event saw it: ``current`` (read after the event) with the event's
    snapshot. A terminal state never changes again, so the current task shows it whole; an
    earlier state had no output and no error yet."""
    if not kept:  # as submitted
        return replace(
            current,
            status=TaskStatus.QUEUED,
            attempt=0,
            progress=None,
            message=None,
            compute_micros=0,
            charged_micros=0,
            started_at=None,
            finished_at=None,
            output=None,
            error=None,
            queue_position=None,
        )
    status = TaskStatus(kept["status"])
    if status.is_terminal and current.status is status:
        return current
    return replace(
        current,
        status=status,
        attempt=int(kept["attempt"]),
        progress=kept["progress"],
        message=kept["message"],
        compute_micros=int(kept["computeMicros"]),
        charged_micros=int(kept["chargedMicros"]),
        started_at=_moment(kept["startedAt"]),
        finished_at=_moment(kept["finishedAt"]),
        output=None,
        error=None,
        queue_position=None,
    )


def charge_amount(data: dict[str, Any]) -> int | float:
    """A charge's amount in minor units, as the agent gave it (fractions kept)."""
    micros = int(data["amountMicros"])
    whole, rest = divmod(micros, cost.MICROS)
    return whole if rest == 0 else micros / cost.MICROS


def micros(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)
