"""The dashboard's live list: every status and progress change of a project's tasks, as they
are committed, as Server-Sent Events.

It follows the store's notifications for the project (store/events.py), which are a fast
path, not the record: when some were dropped (a slow reader, a lost notice) it says
``resync`` and the page reads the list again. It never reads the database itself, so a
thousand open dashboards cost no queries until something happens.

    event: task                                  event: resync
    data: {"taskId": "task_…", "sessionId": …,   data: {}
           "kind": "progress", "progress": 0.5, "message": "…", "status": null}
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pydantic_core

from theazo.api import sse
from theazo.core import defaults
from theazo.core import events as kinds
from theazo.core.events import TaskEvent
from theazo.store.events import EventHub

RESYNC = b"event: resync\ndata: {}\n\n"


async def project_frames(hub: EventHub, project_id: str) -> AsyncIterator[bytes]:
    subscription = hub.subscribe(project_id=project_id)
    try:
        yield b"retry: %d\n\n" % defaults.STREAM_RETRY_MILLISECONDS
        yield RESYNC  # read the list once the stream is open: nothing in between is missed
        while not subscription.closed:
            if not await subscription.wait(defaults.DASHBOARD_EVENTS_KEEPALIVE_SECONDS):
                yield sse.KEEPALIVE
                continue
            pushed, must_read = subscription.take()
            if subscription.closed:
                return
            if must_read:
                yield RESYNC
            elif pushed:
                yield b"".join(_frame(event) for event in pushed)
    finally:
        subscription.close()


def _frame(event: TaskEvent) -> bytes:
    data = event.data
    status = event.task.status.value if event.task is not None else data.get("status")
    body = {
        "taskId": event.task_id,
        "sessionId": event.session_id,
        "kind": event.kind,
        "status": status if event.kind == kinds.STATUS else None,
        "progress": data.get("progress"),
        "message": data.get("message"),
    }
    return b"event: task\ndata: %s\n\n" % pydantic_core.to_json(body)
