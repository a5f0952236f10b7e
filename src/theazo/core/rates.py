"""Per-session rate limits on model calls: requests and tokens in a sliding minute, counted in
buckets of a second (``defaults.MODEL_GATEWAY_RATE_BUCKET_SECONDS``).

A session's window is its buckets of the last minute: the one of now and those before it, back
to a minute ago. A call is counted in the bucket of the moment it is let through, its tokens in
the bucket of the moment its answer has been metered. Past a limit the agent is told how long
to wait (``Retry-After``): until enough of the window's oldest buckets have left it.

The decision (``RateLimits.judge``) is made here, once; where the buckets live is the store's
choice (``Store.count_model_call``): in a node's memory (``MemoryRates``) for a deployment of one
node, in the database where several nodes share the sessions. No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from theazo.core import defaults


@dataclass(frozen=True, slots=True)
class Limited:
    """Why a call must wait, and for how long (whole seconds, at least one)."""

    reason: str
    retry_after_seconds: int


@dataclass(frozen=True, slots=True)
class RateBucket:
    """What a session did in one bucket (``bucket`` seconds since the epoch, divided by the
    bucket's length)."""

    bucket: int
    requests: int = 0
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A deployment's per-session limits; 0 is no limit."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    window_seconds: float = defaults.MODEL_GATEWAY_RATE_WINDOW_SECONDS
    bucket_seconds: float = defaults.MODEL_GATEWAY_RATE_BUCKET_SECONDS

    @property
    def enabled(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_minute)

    @property
    def buckets(self) -> int:
        """How many buckets the window holds (the one of now included)."""
        return max(1, round(self.window_seconds / self.bucket_seconds))

    def bucket(self, now: float) -> int:
        """The bucket of the moment ``now`` (seconds since the epoch)."""
        return math.floor(now / self.bucket_seconds)

    def first_bucket(self, now: float) -> int:
        """The oldest bucket still in the window at ``now``; those before it have left."""
        return self.bucket(now) - self.buckets + 1

    def judge(self, window: Iterable[RateBucket], now: float) -> Limited | None:
        """Whether a call may go now, given the session's buckets (older ones are ignored):
        None, or why not and for how long."""
        first = self.first_bucket(now)
        buckets = sorted((b for b in window if b.bucket >= first), key=lambda b: b.bucket)
        requests = [(b.bucket, b.requests) for b in buckets]
        tokens = [(b.bucket, b.tokens) for b in buckets]
        return self._over(
            requests, self.requests_per_minute, "the session made {} model calls", now
        ) or self._over(
            tokens, self.tokens_per_minute, "the session's model calls used {} tokens", now
        )

    def _over(
        self, counts: Sequence[tuple[int, int]], limit: int, made: str, now: float
    ) -> Limited | None:
        """Why a call must wait when ``counts`` reached ``limit`` (0: none), else None."""
        total = sum(count for _, count in counts)
        if not limit or total < limit:
            return None
        return Limited(
            f"{made.format(total)} in the last minute; its limit is {limit} a minute",
            self._until_under(counts, limit, now),
        )

    def _until_under(self, counts: Sequence[tuple[int, int]], limit: int, now: float) -> int:
        """Seconds until the oldest buckets have left the window with enough of the counts for
        the rest to be under ``limit``."""
        remaining = sum(count for _, count in counts)
        for bucket, count in counts:
            remaining -= count
            if remaining < limit:
                leaves = (bucket + self.buckets) * self.bucket_seconds
                return max(1, math.ceil(leaves - now))
        return max(1, math.ceil(self.window_seconds))


@dataclass(slots=True)
class MemoryRates:
    """The windows of a node's sessions in its own memory: right where the node is the
    deployment's only one (SQLite). Sessions with nothing left in their window are forgotten
    once a window, so memory stays bounded by the sessions active in the last minute."""

    _sessions: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    _swept_bucket: int | None = None

    def count_call(self, session_id: str, limits: RateLimits, now: float) -> Limited | None:
        """Count a call of the session now, or say why it must wait."""
        self._sweep(limits, now)
        window = self._window(session_id, limits, now)
        limited = limits.judge(
            (RateBucket(bucket, *counts) for bucket, counts in window.items()), now
        )
        if limited is None:
            window.setdefault(limits.bucket(now), [0, 0])[0] += 1
        return limited

    def count_tokens(self, session_id: str, limits: RateLimits, tokens: int, now: float) -> None:
        if tokens <= 0:
            return
        window = self._window(session_id, limits, now)
        window.setdefault(limits.bucket(now), [0, 0])[1] += tokens

    def _window(self, session_id: str, limits: RateLimits, now: float) -> dict[int, list[int]]:
        window = self._sessions.setdefault(session_id, {})
        first = limits.first_bucket(now)
        for bucket in [b for b in window if b < first]:
            del window[bucket]
        return window

    def _sweep(self, limits: RateLimits, now: float) -> None:
        first = limits.first_bucket(now)
        if self._swept_bucket is not None and self._swept_bucket >= first:
            return
        self._swept_bucket = limits.bucket(now)
        for session_id in list(self._sessions):
            if not self._window(session_id, limits, now):
                del self._sessions[session_id]
