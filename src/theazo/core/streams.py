"""Following a task's or a session's events: replay from a cursor, then what happens, live.

A stream subscribes to the store's notifications *before* it reads, then reads the store from
its cursor and sends what it finds, then sends what the subscription brings. Each stream's
ids are consecutive, so when a pushed event is not the next one (a notification lost, late,
or dropped for a slow reader) the stream reads the store again from its cursor. Nothing is
sent twice, nothing is skipped, and no stream ever polls the database: it reads only when
woken, or when it falls behind.

A stream yields its events in batches (what one read or one wake-up brought), so the HTTP
layer writes each batch at once; an empty batch means "nothing for a while", and the HTTP layer
sends a keep-alive then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from theazo.core import defaults
from theazo.core import events as kinds
from theazo.core.events import TaskEvent
from theazo.core.models import Task
from theazo.store.base import Store
from theazo.store.events import Subscription

SNAPSHOT_ID = 0  # the id of a fresh task stream's first event: "the task as it is now"


def snapshot_event(task: Task, now: datetime) -> TaskEvent:
    """A fresh task stream's first event: the task as it is now, at id 0, so that a client
    that resumes from it (``Last-Event-ID: 0``) is sent everything that follows."""
    return TaskEvent(
        task_pk=task.id,
        task_id=task.task_id,
        session_id=task.session_id,
        project_id=task.project_id,
        seq=SNAPSHOT_ID,
        session_seq=None,
        kind=kinds.STATUS,
        data={},
        at=now,
        task=task,
    )


async def follow_task(
    store: Store,
    project_id: str,
    task: Task,
    after: int | None,
    *,
    keepalive_seconds: float = defaults.STREAM_KEEPALIVE_SECONDS,
) -> AsyncIterator[list[TaskEvent]]:
    """The events of ``task`` (as just read, with its queue position), until its ``end``.

    Without a cursor: first the task as it is now (id 0), then its events from the first, but
    not the status changes that this first event already shows. With ``after``: every event
    after that id.
    """
    subscription = store.events.subscribe(task_id=task.task_id)
    try:
        cursor, shown_up_to = (SNAPSHOT_ID, task.event_seq) if after is None else (after, 0)
        first = [snapshot_event(task, store.now())] if after is None else []

        async def read(cursor: int) -> list[TaskEvent]:
            current, found = await store.task_events(
                project_id, task.session_id, task.task_id, cursor, defaults.STREAM_PAGE_EVENTS
            )
            if not found and current.status.is_terminal and cursor >= current.event_seq:
                # Ended before tasks had events (an older database): end it all the same.
                return [replace(snapshot_event(current, store.now()), seq=cursor, kind=kinds.END)]
            return found

        async for batch in _follow(subscription, cursor, read, _task_id, keepalive_seconds):
            shown = [e for e in batch if not (e.kind == kinds.STATUS and e.seq <= shown_up_to)]
            ended = next((i for i, e in enumerate(shown) if e.kind == kinds.END), None)
            if ended is not None:
                yield first + shown[: ended + 1]
                return
            if shown or first or not batch:
                yield first + shown
            first = []
    finally:
        subscription.close()


async def follow_session(
    store: Store,
    project_id: str,
    session_id: str,
    after: int,
    *,
    keepalive_seconds: float = defaults.STREAM_KEEPALIVE_SECONDS,
) -> AsyncIterator[list[TaskEvent]]:
    """The status and progress events of every task of the session after its id ``after``,
    for as long as the caller reads."""
    subscription = store.events.subscribe(session_id=session_id)
    try:

        async def read(cursor: int) -> list[TaskEvent]:
            return await store.session_events(
                project_id, session_id, cursor, defaults.STREAM_PAGE_EVENTS
            )

        async for batch in _follow(subscription, after, read, _session_id, keepalive_seconds):
            yield batch
    finally:
        subscription.close()


Read = Callable[[int], Awaitable[list[TaskEvent]]]


def _task_id(event: TaskEvent) -> int:
    return event.seq


def _session_id(event: TaskEvent) -> int:
    assert event.session_seq is not None
    return event.session_seq


async def _follow(
    subscription: Subscription,
    cursor: int,
    read: Read,
    id_of: Callable[[TaskEvent], int],
    keepalive_seconds: float,
) -> AsyncIterator[list[TaskEvent]]:
    """Replay from ``cursor`` with ``read``, then follow ``subscription``; one stream's ids
    are consecutive, so a pushed event that is not the next one sends us back to ``read``."""
    while True:
        while True:  # catch up from the store
            found = await read(cursor)
            if found:
                cursor = id_of(found[-1])
            yield found
            if len(found) < defaults.STREAM_PAGE_EVENTS:
                break
        while True:  # live, from what the subscription brings
            if subscription.closed:
                return
            if not await subscription.wait(keepalive_seconds):
                yield []
                continue
            pushed, must_read = subscription.take()
            if subscription.closed:
                return
            fresh = [e for e in pushed if id_of(e) > cursor]
            if must_read or any(id_of(e) != cursor + 1 + i for i, e in enumerate(fresh)):
                break
            if fresh:
                cursor = id_of(fresh[-1])
                yield fresh
