"""The dispatcher: claims queued tasks when there is room and runs each in a sandbox.

It wakes on the store's events (a submit, a finished task, a raised limit), never on a timer
of its own; a backend whose events can be lost (PostgreSQL's NOTIFY over a dropped connection)
adds a slow safety sweep. One claim fills every free slot at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass

from theazo.core import defaults, ids
from theazo.core.states import ErrorCode
from theazo.sandbox.pool import SandboxPool
from theazo.scheduler.execution import RunSettings, TaskRun
from theazo.scheduler.outcome import failed
from theazo.store.base import Store

log = logging.getLogger("theazo.scheduler")


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    concurrency: int = defaults.CONCURRENCY
    safety_sweep_seconds: float | None = None  # None: trust the store's events
    run: RunSettings = RunSettings()


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{ids.new_id('w')[2:10]}"


class Dispatcher:
    def __init__(
        self,
        store: Store,
        pool: SandboxPool,
        settings: DispatchSettings,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.runs: dict[str, TaskRun] = {}
        self._run_tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._claiming = True
        self._loop_task: asyncio.Task[None] | None = None
        self._all_done = asyncio.Event()
        self._all_done.set()

    async def start(self) -> None:
        await self.store.register_worker(self.worker_id, socket.gethostname(), os.getpid())
        self.store.events.on_work_available(self._wake.set)
        self.store.events.on_cancel_requested(self._on_cancel_requested)
        self._wake.set()  # tasks may be waiting from before we started
        self._loop_task = asyncio.get_running_loop().create_task(self._dispatch_loop())

    @property
    def free_slots(self) -> int:
        return self.settings.concurrency - len(self.runs)

    async def _dispatch_loop(self) -> None:
        while self._claiming:
            await self._wait_for_work()
            self._wake.clear()
            while self._claiming and self.free_slots > 0:
                try:
                    claimed = await self.store.claim(self.worker_id, self.free_slots)
                except Exception:
                    log.exception("claiming tasks failed; retrying on the next wake-up")
                    break
                asked = self.free_slots
                for item in claimed:
                    self._start(TaskRun(item, self.store, self.pool, self.settings.run))
                if len(claimed) < asked:  # nothing more may start now; the next event says
                    break

    async def _wait_for_work(self) -> None:
        sweep = self.settings.safety_sweep_seconds
        if sweep is None:
            await self._wake.wait()
            return
        try:
            await asyncio.wait_for(self._wake.wait(), sweep)
        except TimeoutError:
            pass

    def _start(self, run: TaskRun) -> None:
        self.runs[run.task_id] = run
        self._all_done.clear()
        task = asyncio.get_running_loop().create_task(self._supervise(run))
        self._run_tasks.add(task)
        task.add_done_callback(self._run_tasks.discard)

    async def _supervise(self, run: TaskRun) -> None:
        try:
            await run.run()
        except Exception:
            log.exception("task %s: the run failed inside theazo", run.task_id)
        finally:
            self.runs.pop(run.task_id, None)
            if not self.runs:
                self._all_done.set()
            self._wake.set()

    def _on_cancel_requested(self, task_id: str) -> None:
        run = self.runs.get(task_id)
        if run is not None:
            run.request_kill()

    def stop_runs_not_ours(self, still_ours: set[str], checked_at: float) -> None:
        """Kill the sandboxes of tasks the store no longer has running under this worker.

        Only runs claimed before ``checked_at`` (loop time) count: a claim that committed
        after the store answered is not in ``still_ours`` yet.
        """
        for task_id, run in list(self.runs.items()):
            if run.claimed_at >= checked_at or run.ended:  # new, or ended by us meanwhile
                continue
            if task_id not in still_ours and run.sandbox is not None:
                log.warning("task %s is no longer ours (cancelled or rescued); killing it", task_id)
                run.request_kill()

    async def drain(self, grace_seconds: float) -> None:
        """Stop claiming; give running tasks ``grace_seconds``, then fail the rest."""
        self._claiming = False
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        try:
            await asyncio.wait_for(self._all_done.wait(), grace_seconds)
        except TimeoutError:
            outcome = failed(
                ErrorCode.WORKER_SHUTDOWN,
                f"the node running this task shut down; it did not end within {grace_seconds:g}s",
            )
            await asyncio.gather(*(run.stop_with(outcome) for run in list(self.runs.values())))
            try:  # their sandboxes get SIGTERM, then SIGKILL: this cannot take long
                await asyncio.wait_for(self._all_done.wait(), defaults.DRAIN_KILL_WAIT_SECONDS)
            except TimeoutError:  # the pool's close kills whatever is left
                log.error("tasks still running at shutdown: %s", ", ".join(self.runs))
        await self.store.remove_worker(self.worker_id)
