"""Background duties of a node, each small, on its own interval, with a ``run_once`` that tests
call directly: the heartbeat (renew the node's lease, read its sessions' budgets) and the
rescuer (give back or fail the tasks of nodes whose lease passed) and the pruner (delete
the tasks kept past their retention). None costs more with more running tasks: a beat is one
row and one query, a rescue a walk of the expired nodes, a prune a walk of the oldest
finished tasks by their index."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

from theazo.core import defaults
from theazo.core.errors import StoreUnavailable
from theazo.observability.logs import task_fields
from theazo.scheduler.dispatcher import Dispatcher
from theazo.store.base import Store

log = logging.getLogger("theazo.scheduler")


class PeriodicDuty:
    interval_seconds: float
    name = "duty"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.run_once()
            except StoreUnavailable as exc:  # the database's moment, not a bug: no traceback
                log.warning(
                    "%s failed (%s); trying again in %.3gs", self.name, exc, self.interval_seconds
                )
            except Exception:
                log.exception("%s failed; trying again in %.3gs", self.name, self.interval_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Heartbeat(PeriodicDuty):
    name = "heartbeat"

    def __init__(
        self, dispatcher: Dispatcher, interval_seconds: float = defaults.HEARTBEAT_SECONDS
    ) -> None:
        super().__init__()
        self.dispatcher = dispatcher
        self.interval_seconds = interval_seconds

    async def run_once(self) -> None:
        await self.dispatcher.beat()


class Rescuer(PeriodicDuty):
    name = "rescuer"

    def __init__(
        self,
        store: Store,
        interval_seconds: float = defaults.RESCUE_INTERVAL_SECONDS,
        alive_worker_id: str = "",
    ) -> None:
        super().__init__()
        self.store = store
        self.interval_seconds = interval_seconds
        # This node's own worker: alive as long as this runs, whatever its lease says (a
        # beat that failed for a while is no reason to kill our own tasks).
        self.alive_worker_id = alive_worker_id

    async def run_once(self, dead_worker_ids: Sequence[str] = (), *, orphans: bool = False) -> None:
        rescued = await self.store.rescue_lost_tasks(
            dead_worker_ids, alive_worker_id=self.alive_worker_id, orphans=orphans
        )
        silent_since = self.store.now() - timedelta(
            seconds=self.store.settings.lease_seconds * defaults.STALE_WORKER_LEASES
        )
        await self.store.forget_silent_workers(silent_since)
        for task in rescued:
            log.warning(
                "task %s: its worker was lost during attempt %d; now %s",
                task.task_id,
                task.attempt,
                task.status.value,
                extra=task_fields(task),
            )


class Pruner(PeriodicDuty):
    """Deletes finished tasks once they are older than the retention, with their events, log
    and webhook deliveries, in batches so no transaction holds the database for long. Every
    worker node runs one; on PostgreSQL they skip each other's rows."""

    name = "pruner"

    def __init__(
        self,
        store: Store,
        retention_seconds: float,
        interval_seconds: float = defaults.PRUNE_INTERVAL_SECONDS,
        batch: int = defaults.PRUNE_BATCH,
    ) -> None:
        super().__init__()
        self.store = store
        self.retention_seconds = retention_seconds
        self.interval_seconds = interval_seconds
        self.batch = batch

    async def run_once(self) -> None:
        await self.prune()

    async def prune(self) -> int:
        """Prune what is due now; returns how many tasks went."""
        finished_before = self.store.now() - timedelta(seconds=self.retention_seconds)
        pruned = 0
        while True:
            gone = await self.store.prune_finished_tasks(finished_before, self.batch)
            pruned += gone
            if gone < self.batch:
                break
            await asyncio.sleep(0)  # let the node's other work in between batches
        if pruned:
            log.info("pruned %d tasks finished before %s", pruned, finished_before.isoformat())
        return pruned
