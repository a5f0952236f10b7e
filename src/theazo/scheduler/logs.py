"""An agent's stdout and stderr as its task's log: chunks as read become lines, each with its
stream and the time it was read, up to the task's cap.

A chunk is cut at its newlines (``\\r\\n`` counts as one); text with no newline yet waits for
the rest of its line, but no longer than ``LOG_PARTIAL_LINE_SECONDS``, and a line longer than
``LOG_MAX_LINE_CHARS`` is cut into pieces. Bytes are decoded as UTF-8 as they come, a
character split across two chunks included; what is not UTF-8 becomes U+FFFD. Past the cap,
lines are dropped and counted, and the log says so: once when it happens, and at the end with
how much was dropped.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from datetime import datetime

from theazo.core import defaults
from theazo.core import events as task_events
from theazo.core.events import NewEvent
from theazo.core.json_values import storable_text

NOTE_PREFIX = "[theazo] "


class LogLines:
    """One run's output, line by line (see the module's docstring).

    Args:
        limit_bytes: What the task's log may hold, in bytes of UTF-8 text (a newline each).
        already: What it holds already (an earlier attempt's lines).
        clock: The time a line is stamped with.
    """

    def __init__(self, limit_bytes: int, already: int, clock: Callable[[], datetime]) -> None:
        self._limit = limit_bytes
        self.kept_bytes = already
        self.dropped_bytes = 0
        self._clock = clock
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace")
            for stream in (task_events.STDOUT, task_events.STDERR)
        }
        self._partial: dict[str, str] = {task_events.STDOUT: "", task_events.STDERR: ""}
        self._partial_since: dict[str, float] = {}

    def feed(self, stream: str, data: bytes, now: float) -> list[NewEvent]:
        """The lines ``data`` completes (``now``: a monotonic time, for partial lines)."""
        text = self._partial[stream] + self._decoders[stream].decode(data)
        *lines, rest = text.split("\n")
        found = [self._line(stream, line.removesuffix("\r")) for line in lines]
        while len(rest) > defaults.LOG_MAX_LINE_CHARS:
            found.append(self._line(stream, rest[: defaults.LOG_MAX_LINE_CHARS]))
            rest = rest[defaults.LOG_MAX_LINE_CHARS :]
        self._partial[stream] = rest
        if not rest:
            self._partial_since.pop(stream, None)
        elif lines or stream not in self._partial_since:
            self._partial_since[stream] = now
        return [event for event in found if event is not None]

    def waiting_since(self) -> float | None:
        """Since when the oldest text without its newline waits (None: none waits)."""
        return min(self._partial_since.values(), default=None)

    def overdue(self, now: float) -> list[NewEvent]:
        """Text that waited ``LOG_PARTIAL_LINE_SECONDS`` for its newline, as lines now."""
        found = []
        for stream, since in list(self._partial_since.items()):
            if now - since >= defaults.LOG_PARTIAL_LINE_SECONDS:
                found.append(self._line(stream, self._partial[stream]))
                self._partial[stream] = ""
                del self._partial_since[stream]
        return [event for event in found if event is not None]

    def close(self) -> list[NewEvent]:
        """The output ended: what is left, and a note of what the cap dropped."""
        found = []
        for stream, decoder in self._decoders.items():
            rest = self._partial[stream] + decoder.decode(b"", final=True)
            if rest:
                found.append(self._line(stream, rest))
            self._partial[stream] = ""
        self._partial_since.clear()
        if self.dropped_bytes:
            found.append(
                self._note(
                    f"{self.dropped_bytes} bytes of output were dropped: the log holds "
                    f"{self._limit} bytes at most"
                )
            )
        return [event for event in found if event is not None]

    def _line(self, stream: str, text: str) -> NewEvent | None:
        size = len(text.encode()) + 1
        if self.kept_bytes + size > self._limit:
            first = not self.dropped_bytes
            self.dropped_bytes += size
            if first:
                return self._note(
                    f"the log reached its limit of {self._limit} bytes; what follows is dropped"
                )
            return None
        self.kept_bytes += size
        return task_events.log_event(stream, storable_text(text), self._clock())

    def _note(self, text: str) -> NewEvent:
        return task_events.log_event(task_events.STDERR, NOTE_PREFIX + text, self._clock())
