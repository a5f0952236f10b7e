"""Time, as the store and scheduler see it. Injectable so tests of leases need no sleeping."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@functools.lru_cache(maxsize=256)  # a batch's thousand tasks share one createdAt
def to_rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
