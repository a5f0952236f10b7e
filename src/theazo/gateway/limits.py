"""Per-session rate limits on model calls: requests and tokens in the last minute.

A sliding window per session, kept by the node that runs the session's tasks (each node
counts the calls of its own sandboxes: a session whose tasks run on several nodes may make
up to that many times the limit). A request is counted when it is let through; its tokens
when its answer has been metered. Past a limit the agent is told how long to wait
(``Retry-After``): until enough of the minute's calls have aged out of it.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from theazo.core import defaults


@dataclass(frozen=True, slots=True)
class Limited:
    reason: str
    retry_after_seconds: int


@dataclass(slots=True)
class _Window:
    requests: collections.deque[float] = field(default_factory=collections.deque)
    tokens: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    token_sum: int = 0

    def expire(self, now: float, window: float) -> None:
        while self.requests and self.requests[0] <= now - window:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - window:
            self.token_sum -= self.tokens.popleft()[1]


class RateLimits:
    def __init__(
        self,
        requests_per_minute: int,
        tokens_per_minute: int,
        clock: Callable[[], float],
        window_seconds: float = defaults.MODEL_GATEWAY_RATE_WINDOW_SECONDS,
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._window = window_seconds
        self._sessions: dict[str, _Window] = {}
        self._swept = clock()

    @property
    def enabled(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_minute)

    def admit(self, session_id: str) -> Limited | None:
        """Count a request of the session, or say why it must wait."""
        if not self.enabled:
            return None
        now = self._clock()
        if now - self._swept > self._window:
            self.forget_idle()
        window = self._sessions.setdefault(session_id, _Window())
        window.expire(now, self._window)
        rpm, tpm = self.requests_per_minute, self.tokens_per_minute
        if rpm and len(window.requests) >= rpm:
            wait = window.requests[len(window.requests) - rpm] + self._window - now
            return Limited(
                f"the session made {len(window.requests)} model calls in the last minute; "
                f"its limit is {rpm} a minute",
                _seconds(wait),
            )
        if tpm and window.token_sum >= tpm:
            return Limited(
                f"the session's model calls used {window.token_sum} tokens in the last minute; "
                f"its limit is {tpm} a minute",
                _seconds(self._until_under(window, tpm, now)),
            )
        window.requests.append(now)
        return None

    def used(self, session_id: str, tokens: int) -> None:
        if not self.tokens_per_minute or tokens <= 0:
            return
        window = self._sessions.setdefault(session_id, _Window())
        window.tokens.append((self._clock(), tokens))
        window.token_sum += tokens

    def forget_idle(self) -> None:
        """Drop the windows of sessions with nothing left in them (bounded memory)."""
        now = self._swept = self._clock()
        for session_id, window in list(self._sessions.items()):
            window.expire(now, self._window)
            if not window.requests and not window.tokens:
                del self._sessions[session_id]

    def _until_under(self, window: _Window, limit: int, now: float) -> float:
        remaining = window.token_sum
        for at, tokens in window.tokens:
            remaining -= tokens
            if remaining < limit:
                return at + self._window - now
        return self._window


def _seconds(wait: float) -> int:
    return max(1, math.ceil(wait))
