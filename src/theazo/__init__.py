"""Theazo: run AI agents as asynchronous, sandboxed tasks.

The public surface::

    from theazo import agent, Context                 # writing agents
    from theazo import Theazo, AsyncTheazo            # the client SDK
    from theazo import TheazoError, APIError, ...     # its exceptions

The SDK is imported on first use, so a sandbox that only runs agents does not load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from theazo.agent import agent
from theazo.sandbox.context import Context

if TYPE_CHECKING:
    from theazo.sdk import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AsyncTheazo,
        AuthenticationError,
        BadRequestError,
        BudgetExhaustedError,
        ConflictError,
        NotFoundError,
        PayloadTooLargeError,
        RateLimitError,
        ServerError,
        Task,
        Theazo,
        TheazoError,
        UnprocessableEntityError,
    )

__version__ = "0.1.0"

_SDK_NAMES = {
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncTheazo",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExhaustedError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "Task",
    "Theazo",
    "TheazoError",
    "UnprocessableEntityError",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncTheazo",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExhaustedError",
    "ConflictError",
    "Context",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "Task",
    "Theazo",
    "TheazoError",
    "UnprocessableEntityError",
    "agent",
]


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        from theazo import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'theazo' has no attribute {name!r}")
