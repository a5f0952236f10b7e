"""What the gateway needs of a running task: its session, its budget, and where its model
calls are charged. The scheduler's runs provide it (scheduler/model_calls.py); the gateway
knows nothing of the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from theazo.core.usage import Tokens


class TaskAccount(Protocol):
    @property
    def session_id(self) -> str: ...

    @property
    def model_spent_micros(self) -> int:
        """What this attempt's model calls cost so far."""
        ...

    async def budget_left_micros(self) -> int | None:
        """What the session may still spend (its running tasks' unsaved charges counted);
        None when it has no budget."""
        ...

    def record_model_call(self, model: str, tokens: Tokens, micros: int) -> None:
        """Add a call's tokens to the task's usage and charge its cost to the session."""
        ...

    def stop_for_budget(self, message: str) -> None:
        """End the task ``budget_exceeded`` (a call would have crossed the budget)."""
        ...


# The account of a task by its id; None when this node runs no such task now.
Accounts = Callable[[str], TaskAccount | None]
