"""Event streams without I/O, shared by ``Theazo`` and ``AsyncTheazo``: reading Server-Sent
Events line by line, turning them into typed events, and resuming after a dropped connection.

A ``StreamFollower`` holds one stream's state: the id of the last event received (sent as
``Last-Event-ID`` when it reconnects, so nothing is lost and nothing comes twice), whether the
stream is over, and how long to wait before the next attempt. The sync and async clients only
send its requests, feed it the lines they read, and sleep when it says so.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import httpx
import pydantic

from theazo.sdk._exceptions import APIConnectionError, TheazoError
from theazo.sdk._models import (
    ChargeEvent,
    EndEvent,
    LogEvent,
    ProgressEvent,
    StatusEvent,
    StreamEvent,
    Task,
)

STREAM_READ_TIMEOUT_SECONDS: Final = 45.0  # three of the server's 15 s keep-alives: a dead link
STREAM_MAX_RETRIES: Final = 10  # attempts in a row that bring nothing, before giving up
STREAM_RETRY_CAP_SECONDS: Final = 5.0  # the longest wait between two attempts
_RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(slots=True)
class SSEParser:
    """The event-stream format (HTML Living Standard, "server-sent events"), one line at a
    time; ``feed`` returns a complete event when a blank line ends one."""

    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _id: str | None = None
    retry_ms: int | None = None

    def feed(self, line: str) -> tuple[str | None, str, str] | None:
        """(id, event name, data) of the event this line completes, else None."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: a keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> tuple[str | None, str, str] | None:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        event_id, self._id = self._id, None
        return event_id, event, "\n".join(data)


def to_event(event_id: str | None, name: str, data: str) -> StreamEvent | None:
    """The typed event; None for a name this SDK does not know (a newer server's)."""
    try:
        payload = json.loads(data)
        number = int(event_id or 0)
        if name in ("status", "end"):
            model = StatusEvent if name == "status" else EndEvent
            return model(id=number, task=Task.model_validate(payload), data=payload)
        kinds: dict[str, type[StreamEvent]] = {
            "progress": ProgressEvent,
            "log": LogEvent,
            "charge": ChargeEvent,
        }
        known = kinds.get(name)
        if known is None:
            return None
        return known.model_validate({**payload, "id": number, "data": payload})
    except (ValueError, pydantic.ValidationError) as exc:
        raise TheazoError(f"the server sent a {name!r} event we cannot read: {exc}") from exc


class StreamFollower:
    """One stream's state across its connections (see the module's docstring).

    Args:
        build: Makes the request for the stream from the last id received (None: from the
            start).
        after: Resume after this id from the first connection on.
        ends: The stream ends by itself (a task's, at ``end``), or runs until closed.
        max_retries: Attempts in a row that may fail (no answer, a 5xx, a 429) before
            ``APIConnectionError`` is raised.
        deadline: A time (of ``clock``) after which the stream stops, without an error.
    """

    def __init__(
        self,
        build: Callable[[int | None], httpx.Request],
        *,
        after: int | None,
        ends: bool,
        clock: Callable[[], float],
        max_retries: int = STREAM_MAX_RETRIES,
        deadline: float | None = None,
    ) -> None:
        self._build = build
        self.last_id = after
        self._ends = ends
        self._clock = clock
        self._max_retries = max_retries
        self._deadline = deadline
        self._failures = 0
        self._parser = SSEParser()
        self.done = False

    def request(self) -> httpx.Request:
        """The request for the next connection (from the last id received)."""
        # A half-received event is sent again after the last id; the server's retry stays.
        self._parser = SSEParser(retry_ms=self._parser.retry_ms)
        request = self._build(self.last_id)
        if self._deadline is not None:
            remaining = max(self._deadline - self._clock(), 0.001)
            timeouts = dict(request.extensions.get("timeout", {}))
            read = timeouts.get("read")
            timeouts["read"] = remaining if read is None else min(read, remaining)
            request.extensions["timeout"] = timeouts
        return request

    def opened(self, response: httpx.Response) -> bool:
        """Whether the response is a stream to read. 204 means the task ended before the id
        we resume from (the stream is over); an error status raises, or (5xx, 429) counts as a
        failed attempt. The error's body must have been read."""
        if response.status_code == 204:
            self.done = True
            return False
        if response.is_success:
            return True
        from theazo.sdk._base import error_from_response

        error = error_from_response(response)
        if response.status_code not in _RETRYABLE_STATUSES:
            raise error
        self.failed(error)
        return False

    def feed(self, line: str) -> StreamEvent | None:
        """The event a line completes, if any (and the stream's end after ``end``)."""
        if self.expired():
            self.done = True
            return None
        parsed = self._parser.feed(line)
        if parsed is None:
            return None
        event = to_event(*parsed)
        if parsed[0] is not None and parsed[0].strip().isdigit():
            self.last_id = int(parsed[0])
        self._failures = 0
        if isinstance(event, EndEvent):
            self.done = True
        return event

    def closed(self) -> None:
        """The server closed the stream (it stops, or restarts): a task stream that has not
        ended and a session stream both go on from the last id."""
        if not self._ends and self.expired():
            self.done = True

    def failed(self, error: Exception) -> None:
        """An attempt failed; raise once too many did in a row (or the deadline passed)."""
        if self.expired():
            self.done = True
            return
        self._failures += 1
        if self._failures > self._max_retries:
            if isinstance(error, TheazoError):
                raise error
            raise APIConnectionError(f"the event stream failed {self._failures} times: {error}")

    def expired(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def delay(self) -> float:
        """Seconds to wait before the next connection: the server's ``retry:``, then growing
        with each failure in a row (with jitter), at most ``STREAM_RETRY_CAP_SECONDS``."""
        base = (self._parser.retry_ms or 1000) / 1000
        if self._failures <= 1:
            wait = base if self._failures else min(base, 0.1)
        else:
            wait = min(base * 2 ** (self._failures - 1), STREAM_RETRY_CAP_SECONDS)
            wait *= random.uniform(0.8, 1.2)
        if self._deadline is not None:
            wait = min(wait, max(self._deadline - self._clock(), 0.0))
        return wait
