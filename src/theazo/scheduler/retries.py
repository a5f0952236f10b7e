"""Store calls in a task's life, tried again until they succeed.

A claim, a progress report, a task's end, a release: each is one guarded transaction, so
trying it again after a failure is safe (a repeat that finds the work done changes nothing).
A database that fails for a moment (``StoreUnavailable``) is waited out with a doubling
back-off; any other error is a bug and is tried only a few times, so that a task it hits is
given back instead of held for ever. A node that is stopping gives up at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from theazo.core import defaults
from theazo.core.errors import StoreUnavailable

log = logging.getLogger("theazo.scheduler")

T = TypeVar("T")


class GaveUp(Exception):
    """A store call was not done: the node is stopping, or the call kept failing."""


class Backoff:
    """Doubling waits, from the first to the longest, started over by ``reset``."""

    def __init__(
        self,
        first: float = defaults.STORE_RETRY_FIRST_SECONDS,
        longest: float = defaults.STORE_RETRY_MAX_SECONDS,
    ) -> None:
        self.first = first
        self.longest = longest
        self.next = first

    def take(self) -> float:
        delay, self.next = self.next, min(self.next * 2, self.longest)
        return delay

    def reset(self) -> None:
        self.next = self.first


async def retrying(
    call: Callable[[], Awaitable[T]],
    what: str,
    *,
    stopping: asyncio.Event,
    bug_attempts: int = defaults.STORE_BUG_ATTEMPTS,
    fields: Mapping[str, Any] | None = None,
) -> T:
    """``call()``'s result, once it succeeds; ``GaveUp`` when ``stopping`` is set first or
    when it raised something other than ``StoreUnavailable`` ``bug_attempts`` times.
    ``fields`` go with each log record (``extra``): the ids of the task it is for."""
    backoff = Backoff()
    bugs = 0
    while True:
        if stopping.is_set():
            raise GaveUp(f"the node is stopping; could not {what}")
        try:
            return await call()
        except StoreUnavailable as exc:
            log.warning("could not %s (%s); trying again", what, exc.detail, extra=fields)
        except Exception as exc:
            bugs += 1
            log.error("could not %s (attempt %d)", what, bugs, exc_info=exc, extra=fields)
            if bugs >= bug_attempts:
                raise GaveUp(f"could not {what}: {exc}") from exc
        try:
            await asyncio.wait_for(stopping.wait(), backoff.take())
        except TimeoutError:
            pass
