"""Server-Sent Events on the wire: how a task event is written, and the response that holds a
stream open until it ends, the client leaves, or the node stops.

Each event is three lines and a blank one (docs/api.md, "Events")::

    id: 7
    event: progress
    data: {"taskId":"task_…","progress":0.5,"message":"Half way"}

A comment line (``: keep-alive``) goes out when nothing else did for a while, so proxies keep
the connection, and ``retry:`` first tells ``EventSource`` how soon to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any, Literal

import pydantic_core
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from theazo.api import wire
from theazo.core import cost, defaults
from theazo.core import events as kinds
from theazo.core.clock import to_rfc3339
from theazo.core.events import TaskEvent

StreamKind = Literal["task", "session"]
KEEPALIVE = b": keep-alive\n\n"
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx would otherwise hold the events back in its buffer
}


def event_data(event: TaskEvent) -> dict[str, Any]:
    """The JSON ``data`` of an event (the same in the task and the session stream)."""
    data = event.data
    if event.kind in (kinds.STATUS, kinds.END):
        assert event.task is not None
        return wire.task_json(event.task, event.at)
    if event.kind == kinds.PROGRESS:
        return {"taskId": event.task_id, "progress": data["progress"], "message": data["message"]}
    if event.kind == kinds.LOG:
        return {
            "taskId": event.task_id,
            "stream": data["stream"],
            "text": data["text"],
            "at": to_rfc3339(event.at),
        }
    return {  # a charge
        "taskId": event.task_id,
        "amount": kinds.charge_amount(data),
        "description": data["description"],
        "cost": {"amount": cost.minor_units(int(data["costMicros"])), "currency": "usd"},
    }


# What each event looks like on the wire, for as long as the event is in use: the same event
# pushed to a thousand streams of one session is written once, and forgotten with it.
_WRITTEN: dict[StreamKind, weakref.WeakKeyDictionary[TaskEvent, bytes]] = {
    "task": weakref.WeakKeyDictionary(),
    "session": weakref.WeakKeyDictionary(),
}


def frame(event: TaskEvent, stream: StreamKind) -> bytes:
    """One event as the stream sends it."""
    written = _WRITTEN[stream]
    found = written.get(event)
    if found is None:
        found = written[event] = _frame(event, stream)
    return found


def _frame(event: TaskEvent, stream: StreamKind) -> bytes:
    event_id = event.seq if stream == "task" else event.session_seq
    assert event_id is not None  # the session stream carries only session events
    data = pydantic_core.to_json(event_data(event))
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event.kind.encode(), data)


async def frames(
    batches: AsyncIterator[list[TaskEvent]], stream: StreamKind
) -> AsyncIterator[bytes]:
    """What a stream sends: ``retry:`` first, then each batch of events in one write, and a
    keep-alive for an empty batch."""
    yield b"retry: %d\n\n" % defaults.STREAM_RETRY_MILLISECONDS
    async for batch in batches:
        yield b"".join(frame(e, stream) for e in batch) if batch else KEEPALIVE


class EventStreamResponse(Response):
    """A ``text/event-stream`` answer written from ``body`` as it comes.

    The stream runs in the request's own task; one small watcher cancels it when the client
    goes away (a send to a closed connection would not tell us), so an abandoned stream stops
    at once and costs nothing more.
    """

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[bytes]) -> None:
        super().__init__(status_code=200, headers=HEADERS, media_type=self.media_type)
        # No Content-Length: the stream's length is unknown (it goes chunked).
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        left = False

        async def watch() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            left = True
            handler.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not left:
                raise
            handler.uncancel()  # our own cancel: the client is gone, nothing more to send
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await _close(self._body)


async def _close(body: AsyncIterator[bytes]) -> None:
    closer = getattr(body, "aclose", None)
    if closer is not None:
        await closer()
