"""A running task as the model gateway sees it (gateway/accounts.py: TaskAccount): its
session, what its session may still spend, and where its model calls are charged."""

from __future__ import annotations

import asyncio

from theazo.core.states import ErrorCode
from theazo.core.usage import Tokens
from theazo.scheduler.budgets import BudgetWatch
from theazo.scheduler.execution import TaskRun
from theazo.scheduler.outcome import failed


class RunAccount:
    def __init__(self, run: TaskRun, budgets: BudgetWatch) -> None:
        self._run = run
        self._budgets = budgets

    @property
    def session_id(self) -> str:
        return self._run.task.session_id

    @property
    def model_spent_micros(self) -> int:
        return self._run.model_micros

    async def budget_left_micros(self) -> int | None:
        return await self._budgets.budget_left(self._run)

    def record_model_call(self, model: str, tokens: Tokens, micros: int) -> None:
        self._run.record_model_call(model, tokens, micros)

    def stop_for_budget(self, message: str) -> None:
        outcome = failed(ErrorCode.BUDGET_EXCEEDED, message)
        asyncio.get_running_loop().create_task(self._run.stop_with(outcome))
