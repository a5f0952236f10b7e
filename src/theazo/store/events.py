"""In-process notifications: what the store tells the rest of the node after a commit.

The SQLite store fires these itself once a transaction has committed; the PostgreSQL store
fires them when a NOTIFY arrives from any node. Consumers never poll the database to learn
that something happened, and never hear of a change that was rolled back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

WorkListener = Callable[[], None]
CancelListener = Callable[[str], None]  # task_id
TaskListener = Callable[[str], None]  # task_id


class EventHub:
    def __init__(self) -> None:
        self._finish_waiters: dict[str, set[asyncio.Future[int]]] = {}
        self._firings = 0  # a waiter learns which firing woke it (see TaskService.wait)
        self._work_listeners: list[WorkListener] = []
        self._cancel_listeners: list[CancelListener] = []
        self._finished_listeners: list[TaskListener] = []
        self._delivery_listeners: list[WorkListener] = []

    # --- subscribing ---------------------------------------------------------------------
    def on_work_available(self, listener: WorkListener) -> None:
        self._work_listeners.append(listener)

    def on_cancel_requested(self, listener: CancelListener) -> None:
        self._cancel_listeners.append(listener)

    def on_task_finished(self, listener: TaskListener) -> None:
        self._finished_listeners.append(listener)

    def on_delivery_ready(self, listener: WorkListener) -> None:
        self._delivery_listeners.append(listener)

    def finish_waiter(self, task_id: str) -> asyncio.Future[int]:
        """A future resolved, with the number of the firing, when the task reaches a terminal
        state (or when every waiter must read its task again).

        Register it *before* reading the task, then await it only if the read showed a
        non-terminal state; that order cannot miss a transition in between.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._finish_waiters.setdefault(task_id, set()).add(future)
        return future

    def drop_waiter(self, task_id: str, future: asyncio.Future[int]) -> None:
        waiters = self._finish_waiters.get(task_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._finish_waiters[task_id]

    @property
    def firings(self) -> int:
        """The number of the latest firing: a read begun now shows what every firing up to
        it announced."""
        return self._firings

    @property
    def waiter_count(self) -> int:
        return sum(len(w) for w in self._finish_waiters.values())

    # --- publishing (called by the store after commit) ------------------------------------
    def work_available(self) -> None:
        for listener in self._work_listeners:
            listener()

    def cancel_requested(self, task_id: str) -> None:
        for listener in self._cancel_listeners:
            listener(task_id)

    def delivery_ready(self) -> None:
        for listener in self._delivery_listeners:
            listener()

    def resync_waiters(self) -> None:
        """Wake every waiter to read its task again: notifications may have been lost."""
        waiters, self._finish_waiters = self._finish_waiters, {}
        self._firings += 1
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(self._firings)

    def task_finished(self, task_id: str) -> None:
        self._firings += 1
        for future in self._finish_waiters.pop(task_id, ()):
            if not future.done():
                future.set_result(self._firings)
        for listener in self._finished_listeners:
            listener(task_id)
