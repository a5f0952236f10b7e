"""The budgets of the sessions a node runs tasks of: watched once per session, not per task.

A session with a budget is checked when one of its tasks here starts or charges, and again
when compute alone would spend what is left. One check saves this node's unsaved charges of
that session, reads the session's spend once (its running tasks' compute included, on every
node), and stops this node's tasks of the session if the budget is spent. Each heartbeat
reads the budgets of all the node's sessions in one query, so a budget set or lowered while
tasks run is noticed within a beat. A beat costs one query, however many tasks run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from theazo.core import cost, defaults
from theazo.core.states import ErrorCode
from theazo.observability.logs import task_fields
from theazo.scheduler.outcome import failed
from theazo.store.base import Spend, Store

if TYPE_CHECKING:
    from theazo.scheduler.execution import TaskRun

log = logging.getLogger("theazo.scheduler")


class BudgetWatch:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._runs: dict[str, set[TaskRun]] = {}  # session id → this node's runs in it
        self._budgets: dict[str, int | None] = {}  # as last read
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._checking: set[str] = set()
        self._again: set[str] = set()  # a check was asked for while one ran
        self._last_check: dict[str, float] = {}

    @property
    def sessions(self) -> list[str]:
        return list(self._runs)

    def track(self, run: TaskRun) -> None:
        session_id = run.task.session_id
        self._runs.setdefault(session_id, set()).add(run)
        if run.budget is not None:
            self._budgets[session_id] = run.budget
        if self._budgets.get(session_id) is not None:
            self.check_soon(session_id)

    def untrack(self, run: TaskRun) -> None:
        session_id = run.task.session_id
        runs = self._runs.get(session_id)
        if runs is None:
            return
        runs.discard(run)
        if not runs:
            del self._runs[session_id]
            self._budgets.pop(session_id, None)
            self._last_check.pop(session_id, None)
            timer = self._timers.pop(session_id, None)
            if timer is not None:
                timer.cancel()

    def charged(self, run: TaskRun) -> None:
        """A run's agent charged: its session's budget, if any, is checked soon."""
        if self._budgets.get(run.task.session_id) is not None:
            self.check_soon(run.task.session_id)

    async def budget_left(self, run: TaskRun) -> int | None:
        """What the run's session may still spend, in micros, now (this node's unsaved
        charges counted); None when it has no budget. One read of the session's spend."""
        session_id = run.task.session_id
        if self._budgets.get(session_id, run.budget) is None:
            return None
        spend, spent = await self._spend_now(session_id)
        if spend.budget is None:
            return None
        return spend.budget * cost.MICROS - spent

    async def _spend_now(self, session_id: str) -> tuple[Spend, int]:
        """The session's spend as the store has it, and with this node's unsaved charges
        added (micros). Each of its runs' saves is held meanwhile: a charge being saved is in
        neither the store's sum nor the run's pending charge until its save commits."""
        runs = list(self._runs.get(session_id, ()))  # ended ones too: their end is a save
        async with contextlib.AsyncExitStack() as held:
            for run in runs:
                await held.enter_async_context(run.saves_held())
            spend = await self.store.session_spend(session_id)
            spent = spend.spent_micros + sum(run.pending_charge for run in runs)
        self._budgets[session_id] = spend.budget
        return spend, spent

    async def refresh(self) -> None:
        """Read the budgets of every session this node runs tasks of (one query); check a
        session at once when its budget was set or changed."""
        budgets = await self.store.session_budgets(self.sessions)
        for session_id, budget in budgets.items():
            if session_id in self._runs and budget != self._budgets.get(session_id):
                self._budgets[session_id] = budget
                if budget is not None:
                    self.check_soon(session_id)

    def check_soon(self, session_id: str, delay: float = 0.0) -> None:
        if session_id in self._checking:
            self._again.add(session_id)
            return
        loop = asyncio.get_running_loop()
        spacing = self._last_check.get(session_id, float("-inf")) + defaults.BUDGET_CHECK_SPACING
        delay = max(delay, spacing - loop.time())
        timer = self._timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()
        self._timers[session_id] = loop.call_later(
            delay, lambda: loop.create_task(self._check(session_id))
        )

    async def _check(self, session_id: str) -> None:
        self._timers.pop(session_id, None)
        if session_id not in self._runs:
            return
        self._checking.add(session_id)
        self._last_check[session_id] = asyncio.get_running_loop().time()
        try:
            next_check = await self._check_now(session_id)
        except Exception as exc:
            log.warning(
                "the budget of session %s was not checked (%s)",
                session_id,
                exc,
                extra=task_fields(session_id=session_id),
            )
            next_check = defaults.STORE_RETRY_MAX_SECONDS
        finally:
            self._checking.discard(session_id)
        if session_id in self._again:
            self._again.discard(session_id)
            next_check = 0.0
        if next_check is not None and session_id in self._runs:
            self.check_soon(session_id, next_check)

    async def _check_now(self, session_id: str) -> float | None:
        """Check one session; returns when to look again (None: no need)."""
        runs = [run for run in self._runs.get(session_id, ()) if not run.ended]
        for run in runs:  # this node's charges land before the spend is read
            await run.flush()
        spend, spent = await self._spend_now(session_id)
        if spend.budget is None:
            return None
        if cost.minor_units(spent) >= spend.budget:
            await self._stop(runs, spend, spent)
            return None
        return _until_spent(spend, spent)

    async def _stop(self, runs: list[TaskRun], spend: Spend, spent: int) -> None:
        outcome = failed(
            ErrorCode.BUDGET_EXCEEDED,
            f"the session spent {cost.minor_units(spent)} of its budget of {spend.budget}; "
            "the task was stopped",
        )
        await asyncio.gather(*(run.stop_with(outcome) for run in runs if not run.ended))


def _until_spent(spend: Spend, spent: int) -> float | None:
    """When compute alone spends the rest of the budget (plus a little, to be past it)."""
    assert spend.budget is not None
    remaining = spend.budget * cost.MICROS - spent
    wait = cost.seconds_until_spent(remaining, spend.compute_rate_micros)
    return None if wait is None else wait + defaults.BUDGET_CHECK_SLACK_SECONDS
