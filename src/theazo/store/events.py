"""In-process notifications: what the store tells the rest of the node after a commit.

The SQLite store fires these itself once a transaction has committed; the PostgreSQL store
fires them when a NOTIFY arrives from any node. Consumers never poll the database to learn
that something happened, and never hear of a change that was rolled back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from theazo.core import defaults
from theazo.core.events import TaskEvent

WorkListener = Callable[[], None]
CancelListener = Callable[[str], None]  # task_id
TaskListener = Callable[[str], None]  # task_id
CommittedListener = Callable[[Sequence[TaskEvent]], None]


class Subscription:
    """Task events as they are committed, for one reader (a stream), with a wake-up.

    What it holds is a fast path, not the record: a reader numbers what it has sent, and reads
    the store again when an event is missing (``resync`` set, or a gap in the ids), so a lost
    or late notification costs a read, never an event. It holds at most
    ``SUBSCRIPTION_MAX_PENDING`` events; past that it drops them and asks for a read.
    """

    __slots__ = (
        "_hub",
        "_keys",
        "_pending",
        "_waiter",
        "_woken",
        "closed",
        "resync",
        "session_only",
    )

    def __init__(
        self, hub: EventHub, keys: tuple[tuple[str, str], ...], *, session_only: bool
    ) -> None:
        self._hub = hub
        self._keys = keys
        self._pending: deque[TaskEvent] = deque()
        # A bare future and a timer, not an asyncio.Event and wait_for: a thousand idle
        # streams should cost a thousand small objects, not a thousand more tasks.
        self._waiter: asyncio.Future[bool] | None = None
        self._woken = False
        self.session_only = session_only  # only the session stream's events (status, progress)
        self.resync = False
        self.closed = False  # the node is stopping: end the stream, the client resumes

    @property
    def keys(self) -> tuple[tuple[str, str], ...]:
        return self._keys

    def push(self, event: TaskEvent) -> None:
        if self.session_only and not event.in_session_stream:
            return
        if len(self._pending) >= defaults.SUBSCRIPTION_MAX_PENDING:
            self._pending.clear()
            self.resync = True
        else:
            self._pending.append(event)
        self._wake()

    def wake_to_read(self, *, closing: bool = False) -> None:
        self._pending.clear()
        self.resync = True
        self.closed = self.closed or closing
        self._wake()

    def _wake(self) -> None:
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def take(self) -> tuple[list[TaskEvent], bool]:
        """What arrived since the last call, and whether the reader must read the store
        instead (then it does so now: the flag is cleared)."""
        taken, resync = list(self._pending), self.resync
        self._pending.clear()
        self._woken = False
        self.resync = False
        return taken, resync

    async def wait(self, timeout: float) -> bool:
        """True when something arrived (or a read is due) within ``timeout`` seconds."""
        if self._woken:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        self._hub.unsubscribe(self)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class EventHub:
    def __init__(self) -> None:
        self._finish_waiters: dict[str, set[asyncio.Future[int]]] = {}
        self._firings = 0  # a waiter learns which firing woke it (see TaskService.wait)
        self._work_listeners: list[WorkListener] = []
        self._cancel_listeners: list[CancelListener] = []
        self._finished_listeners: list[TaskListener] = []
        self._delivery_listeners: list[WorkListener] = []
        self._subscriptions: dict[tuple[str, str], set[Subscription]] = {}
        self._resync_listeners: list[WorkListener] = []
        self._committed_listeners: list[CommittedListener] = []

    # --- subscribing ---------------------------------------------------------------------
    def on_work_available(self, listener: WorkListener) -> None:
        self._work_listeners.append(listener)

    def on_cancel_requested(self, listener: CancelListener) -> None:
        self._cancel_listeners.append(listener)

    def on_task_finished(self, listener: TaskListener) -> None:
        self._finished_listeners.append(listener)

    def on_delivery_ready(self, listener: WorkListener) -> None:
        self._delivery_listeners.append(listener)

    def on_resync(self, listener: WorkListener) -> None:
        """Called when notifications may have been lost (see ``resync``)."""
        self._resync_listeners.append(listener)

    def on_committed_here(self, listener: CommittedListener) -> None:
        """Called with the task events each transaction of *this node* stored, once it has
        committed; never with another node's (which ``task_events`` also brings). So each
        change is heard once in the deployment, by the node that made it: what metrics count
        and structured logs record."""
        self._committed_listeners.append(listener)

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

    def subscribe(
        self,
        *,
        task_id: str | None = None,
        session_id: str | None = None,
        project_id: str | None = None,
    ) -> Subscription:
        """The events of a task, of a session (its status and progress events), or of a
        project (the same, across its sessions): subscribe *before* reading the store, then
        read from the cursor, so nothing committed in between is missed."""
        keys: list[tuple[str, str]] = []
        if task_id is not None:
            keys.append(("task", task_id))
        if session_id is not None:
            keys.append(("session", session_id))
        if project_id is not None:
            keys.append(("project", project_id))
        if len(keys) != 1:
            raise ValueError("subscribe to one task, one session or one project")
        subscription = Subscription(self, tuple(keys), session_only=task_id is None)
        self._subscriptions.setdefault(keys[0], set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        for key in subscription.keys:
            subscribers = self._subscriptions.get(key)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscriptions[key]

    def wants(self, task_id: str, session_id: str, project_id: str) -> bool:
        """Whether anyone here follows this task (a node need not read what nobody reads)."""
        subscriptions = self._subscriptions
        return (
            ("task", task_id) in subscriptions
            or ("session", session_id) in subscriptions
            or ("project", project_id) in subscriptions
        )

    @property
    def subscription_count(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())

    def resync_subscriptions(self, *, closing: bool = False) -> None:
        """Every reader reads the store again (notifications may have been lost); with
        ``closing``, every stream ends (the node stops; clients resume elsewhere)."""
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                subscription.wake_to_read(closing=closing)

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

    def committed_here(self, events: Sequence[TaskEvent]) -> None:
        for listener in self._committed_listeners:
            listener(events)

    def task_events(self, events: Iterable[TaskEvent]) -> None:
        """Committed events, in their order, to whoever follows their task, session or
        project."""
        subscriptions = self._subscriptions
        if not subscriptions:
            return
        for event in events:
            for key in (
                ("task", event.task_id),
                ("session", event.session_id),
                ("project", event.project_id),
            ):
                for subscription in subscriptions.get(key, ()):
                    subscription.push(event)

    def resync_waiters(self) -> None:
        """Wake every waiter to read its task again: notifications may have been lost."""
        waiters, self._finish_waiters = self._finish_waiters, {}
        self._firings += 1
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(self._firings)

    def resync(self) -> None:
        """Notifications may have been lost (the connection that brings them dropped):
        every waiter reads its task again, and every listener checks what it holds."""
        self.resync_waiters()
        for listener in self._resync_listeners:
            listener()

    def task_finished(self, task_id: str) -> None:
        self._firings += 1
        for future in self._finish_waiters.pop(task_id, ()):
            if not future.done():
                future.set_result(self._firings)
        for listener in self._finished_listeners:
            listener(task_id)
