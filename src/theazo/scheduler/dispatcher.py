"""The dispatcher: claims queued tasks when there is room and runs each in a sandbox.

It wakes on the store's events (a submit, a finished task, a raised limit) and on the zygotes'
news of spares, never on a timer of its own; a backend whose events can be lost (PostgreSQL's
NOTIFY over a dropped connection) adds a slow safety sweep. A claim takes as many tasks as
there are free slots *and* sandboxes ready for them: a task is ``running`` (and billed) only
once a sandbox has it, and waits ``queued`` while the zygotes make more. While the queue is
deep it asks the zygotes to keep a sandbox ready for every free slot (up to a bound).

The node holds its running tasks through one lease (its worker row), renewed by ``beat``. So
what it runs and what the store says it runs must agree, or tasks would be held for ever by a
live node: a run whose end could not be recorded is given back (``release``), and after
anything that may have made the two differ (a claim whose answer was lost, a lease that
lapsed, notifications that were lost) ``reconcile`` compares them once, kills what is no
longer ours, and gives back what we hold but do not run.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from dataclasses import dataclass

from theazo.core import defaults, ids
from theazo.core.models import ClaimedTask
from theazo.core.states import ErrorCode
from theazo.observability.logs import task_fields
from theazo.sandbox.pool import SandboxPool
from theazo.scheduler.budgets import BudgetWatch
from theazo.scheduler.execution import RunSettings, TaskRun
from theazo.scheduler.model_calls import RunAccount
from theazo.scheduler.outcome import failed
from theazo.scheduler.retries import Backoff, GaveUp, retrying
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
        self.budgets = BudgetWatch(store)
        # Set once the node stops for good: store calls still being tried give up, and the
        # node's lease, no longer renewed, settles what they were for.
        self.stopping = asyncio.Event()
        self._run_tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._claiming = True
        self._claim_lock = asyncio.Lock()  # a claim and a reconcile never interleave
        self._claim_backoff = Backoff()
        self._loop_task: asyncio.Task[None] | None = None
        self._all_done = asyncio.Event()
        self._all_done.set()
        self._releasing: dict[str, tuple[int, bool]] = {}  # task id → (attempt, started)
        self._release_task: asyncio.Task[None] | None = None
        self._reconcile_due = False
        self._lease_valid_until = float("-inf")  # loop time; a later renewal reconciles
        self._unspawned = 0  # runs claimed whose sandbox is not asked for yet
        self._spares_wanted = pool.settings.spares

    async def start(self) -> None:
        started = asyncio.get_running_loop().time()
        await self._register()
        self._lease_valid_until = started + self.store.settings.lease_seconds
        self.store.events.on_work_available(self._wake.set)
        self.store.events.on_cancel_requested(self._on_cancel_requested)
        self.store.events.on_resync(self._on_resync)
        self.pool.on_spares_changed(self._wake.set)
        self._wake.set()  # tasks may be waiting from before we started
        self._loop_task = asyncio.get_running_loop().create_task(self._dispatch_loop())

    async def _register(self) -> None:
        await self.store.register_worker(
            self.worker_id, socket.gethostname(), os.getpid(), self.settings.concurrency
        )

    def account(self, task_id: str) -> RunAccount | None:
        """The running task ``task_id`` as the model gateway charges it; None if not ours."""
        run = self.runs.get(task_id)
        if run is None or run.ended:
            return None
        return RunAccount(run, self.budgets)

    @property
    def free_slots(self) -> int:
        """Slots not taken by a task whose end is still to be recorded: a run whose end is in
        the store no longer holds one while its sandbox is torn down."""
        return self.settings.concurrency - sum(1 for r in self.runs.values() if not r.settled)

    @property
    def startable(self) -> int:
        """Tasks that may start now: free slots with a ready sandbox each."""
        return min(self.free_slots, self.pool.spares_ready - self._unspawned)

    def _want_spares(self, queue_deep: bool) -> None:
        """Ask for a sandbox ready for every free slot while tasks wait; the usual few after."""
        base = self.pool.settings.spares
        wanted = (
            max(base, min(self.free_slots, defaults.SANDBOX_SPARES_AHEAD)) if queue_deep else base
        )
        if wanted != self._spares_wanted:
            self._spares_wanted = wanted
            self.pool.set_spares(wanted)

    # --- claiming --------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while self._claiming:
            await self._wait_for_work()
            self._wake.clear()
            while self._claiming and self.startable > 0:
                asked = self.startable
                try:
                    async with self._claim_lock:
                        claimed = await self.store.claim(self.worker_id, asked)
                        for item in claimed:
                            self._start(item)
                except Exception as exc:
                    # Its answer may be lost with the tasks it started: compare once the
                    # store answers again, and claim again after a pause.
                    self._reconcile_due = True
                    delay = self._claim_backoff.take()
                    log.warning("claiming tasks failed (%s); again in %.2fs", exc, delay)
                    asyncio.get_running_loop().call_later(delay, self._wake.set)
                    break
                self._claim_backoff.reset()
                self._want_spares(queue_deep=len(claimed) == asked)
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

    def _start(self, item: ClaimedTask) -> None:
        run = TaskRun(
            item,
            self.store,
            self.pool,
            self.settings.run,
            stopping=self.stopping,
            on_charge=self.budgets.charged,
            on_spawn_sent=self._spawn_sent,
        )
        self._unspawned += 1
        self.runs[run.task_id] = run
        self.budgets.track(run)
        self._all_done.clear()
        task = asyncio.get_running_loop().create_task(self._supervise(run))
        self._run_tasks.add(task)
        task.add_done_callback(self._run_tasks.discard)

    async def _supervise(self, run: TaskRun) -> None:
        try:
            await run.run()
        except Exception:
            log.exception(
                "task %s: the run failed inside theazo", run.task_id, extra=task_fields(run.task)
            )
        finally:
            self.runs.pop(run.task_id, None)
            self.budgets.untrack(run)
            if not run.settled:  # its end is not in the store: give the task back
                self._release_later(run.task_id, run.task.attempt, started=True)
            if not self.runs:
                self._all_done.set()
            self._wake.set()

    def _spawn_sent(self) -> None:
        self._unspawned -= 1

    def _on_cancel_requested(self, task_id: str) -> None:
        run = self.runs.get(task_id)
        if run is not None:
            run.request_kill()

    # --- the lease -------------------------------------------------------------------------
    async def beat(self) -> None:
        """Renew the node's lease (one row), and do what a beat owes: compare with the store
        if anything may have made us differ, and read the budgets of our sessions."""
        started = asyncio.get_running_loop().time()
        registered = await self.store.heartbeat(self.worker_id)
        if not registered:  # forgotten after a long silence: our tasks were taken meanwhile
            await self._register()
        lapsed = not registered or started > self._lease_valid_until
        self._lease_valid_until = started + self.store.settings.lease_seconds
        if lapsed:
            log.warning("this node's lease lapsed; checking which of its tasks are still its own")
        if lapsed or self._reconcile_due:
            await self.reconcile()
        await self.budgets.refresh()

    async def reconcile(self) -> None:
        """Make what this node runs and what the store says it runs agree: kill the runs of
        tasks no longer ours (cancelled, or rescued while our lease lapsed), and give back
        the tasks the store has under us that we do not run (a claim whose answer was lost)."""
        async with self._claim_lock:
            checked_at = asyncio.get_running_loop().time()
            held = await self.store.attempts_held(self.worker_id)
            self._reconcile_due = False
            for task_id, run in list(self.runs.items()):
                stale = run.claimed_at < checked_at and not run.ended
                if stale and held.get(task_id) != run.task.attempt:
                    log.warning(
                        "task %s is no longer ours; killing it",
                        task_id,
                        extra=task_fields(run.task),
                    )
                    run.request_kill()
            for task_id, attempt in held.items():
                known = self.runs.get(task_id)
                ours = known is not None and known.task.attempt == attempt
                if not ours and task_id not in self._releasing:
                    log.warning(
                        "task %s is held by this node but not run (a claim's answer was lost); "
                        "giving it back",
                        task_id,
                        extra=task_fields(task_id=task_id, attempt=attempt),
                    )
                    self._release_later(task_id, attempt, started=False)

    def _on_resync(self) -> None:
        """Notifications were lost (a cancel among them, maybe): compare soon."""
        self._reconcile_due = True
        asyncio.get_running_loop().create_task(self._reconcile_quietly())

    async def _reconcile_quietly(self) -> None:
        try:
            await self.reconcile()
        except Exception as exc:  # the next beat tries again
            log.warning("comparing this node's tasks with the store failed (%s)", exc)

    # --- giving tasks back -----------------------------------------------------------------
    def _release_later(self, task_id: str, attempt: int, *, started: bool) -> None:
        self._releasing[task_id] = (attempt, started)
        if self._release_task is None or self._release_task.done():
            self._release_task = asyncio.get_running_loop().create_task(self._release_all())

    async def _release_all(self) -> None:
        while self._releasing and not self.stopping.is_set():
            task_id, (attempt, started) = next(iter(self._releasing.items()))
            try:
                released = await retrying(
                    functools.partial(self.store.release, task_id, attempt, started=started),
                    f"give back task {task_id}",
                    stopping=self.stopping,
                )
            except GaveUp as exc:
                log.error("%s; trying again later", exc)
                try:
                    await asyncio.wait_for(self.stopping.wait(), defaults.STORE_RETRY_MAX_SECONDS)
                except TimeoutError:
                    pass
                continue
            if self._releasing.get(task_id) == (attempt, started):
                del self._releasing[task_id]
            if released is not None:
                log.warning(
                    "task %s given back by this node: now %s",
                    task_id,
                    released.status,
                    extra=task_fields(released),
                )

    @property
    def releasing(self) -> int:
        """Tasks waiting to be given back (their runs ended without a recorded end)."""
        return len(self._releasing)

    # --- stopping --------------------------------------------------------------------------
    async def drain(self, grace_seconds: float) -> None:
        """Stop claiming; give running tasks ``grace_seconds``, then fail the rest. Store calls
        still failing after that are given up: the lease, no longer renewed, settles them."""
        self._claiming = False
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        if not await self._all_end_within(grace_seconds):
            outcome = failed(
                ErrorCode.WORKER_SHUTDOWN,
                f"the node running this task shut down; it did not end within {grace_seconds:g}s",
            )
            for run in list(self.runs.values()):
                asyncio.get_running_loop().create_task(run.stop_with(outcome))
            await self._all_end_within(defaults.DRAIN_KILL_WAIT_SECONDS)
        self.stopping.set()
        if not await self._all_end_within(defaults.DRAIN_KILL_WAIT_SECONDS):
            log.error("tasks still running at shutdown: %s", ", ".join(self.runs))
        if self._release_task is not None:
            await self._release_task
        try:  # settles, as lost, whatever is still ours in the store
            await self.store.remove_worker(self.worker_id)
        except Exception as exc:
            log.error("could not remove this node's worker row (%s); its lease will lapse", exc)

    async def _all_end_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._all_done.wait(), seconds)
        except TimeoutError:
            return False
        return True
