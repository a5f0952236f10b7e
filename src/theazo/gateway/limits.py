"""Per-session rate limits on model calls, as the gateway applies them: requests and tokens in
a sliding minute (core/rates.py decides), counted where the deployment's store keeps them (in
the node's memory on SQLite, the deployment's only node; in the database on PostgreSQL, so a
session's calls through every node's gateway count together). A request is counted when it is
let through; its tokens when its answer has been metered.
"""

from __future__ import annotations

import logging
from typing import Protocol

from theazo.core.errors import StoreUnavailable
from theazo.core.rates import Limited, RateLimits

log = logging.getLogger("theazo.gateway")


class RateCounts(Protocol):
    """Where sessions' windows are kept: the store (``Store.count_model_call``)."""

    async def count_model_call(self, session_id: str, limits: RateLimits) -> Limited | None: ...

    async def count_model_tokens(
        self, session_id: str, limits: RateLimits, tokens: int
    ) -> None: ...


class SessionRates:
    def __init__(self, limits: RateLimits, counts: RateCounts) -> None:
        self.limits = limits
        self._counts = counts

    @property
    def enabled(self) -> bool:
        return self.limits.enabled

    async def admit(self, session_id: str) -> Limited | None:
        """Count a request of the session, or say why it must wait. ``StoreUnavailable`` when
        the windows cannot be read: a call is not let through uncounted."""
        if not self.enabled:
            return None
        return await self._counts.count_model_call(session_id, self.limits)

    async def used(self, session_id: str, tokens: int) -> None:
        if not self.limits.tokens_per_minute or tokens <= 0:
            return
        try:
            await self._counts.count_model_tokens(session_id, self.limits, tokens)
        except StoreUnavailable as exc:  # the call is made and charged; only its count is lost
            log.warning(
                "session %s: %d tokens not counted in its rate limit: %s", session_id, tokens, exc
            )
