"""One task run without a server: ``theazo run`` and ``theazo.testing.run_agent``.

The run is the server's own: the same sandbox pool and zygote (``sandbox/pool.py``), the same
``TaskRun`` relaying the sandbox's typed messages (``scheduler/execution.py``), the same input
check as a submit (``core/inputs.py``), the same limits and error codes. Only where the run
keeps its reports differs: ``LocalRecord`` holds them in memory, in the order the store would
have numbered them, and shows each as it comes, instead of writing them to a database.

    LocalRunner (the pool, started once) → TaskRun → LocalRecord → AgentRun
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

from theazo.config import NodeConfig, sandbox_settings
from theazo.core import cost, ids
from theazo.core import events as task_events
from theazo.core.errors import InvalidField
from theazo.core.events import NewEvent
from theazo.core.inputs import InputChecker
from theazo.core.models import AgentInfo, ClaimedTask, Cost, Outcome, Task, TaskError
from theazo.core.states import Priority, TaskStatus
from theazo.core.usage import NetworkUsage, UsageUpdate
from theazo.sandbox.pool import SandboxError, SandboxPool
from theazo.scheduler.execution import RunSettings, TaskRun

LOCAL_PROJECT = "local"
LOCAL_USER = "local"


# --- what a run reports ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProgressReport:
    """One ``ctx.progress`` (or a command agent's ``progress`` line), as a ``progress`` event."""

    progress: float | None  # in [0, 1]; None when only the message was given
    message: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Charge:
    """One ``ctx.charge``, as a ``charge`` event: its amount and the task's cost after it, both
    exact, in minor units (cents for usd)."""

    amount: Decimal
    description: str | None
    cost: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line the agent wrote to its stdout or stderr, as the task's log keeps it."""

    stream: Literal["stdout", "stderr"]
    text: str
    at: datetime


RunEvent = ProgressReport | Charge | LogLine


@dataclass(frozen=True, slots=True)
class AgentRun:
    """How one run ended, with everything its agent reported, in order.

    ``status`` is ``completed``, ``failed`` or ``cancelled``; ``output`` is set when
    completed, ``error`` (code and message, as a server would record them) when failed.
    ``cost`` is the task's cost as the server shows it (compute at the run's price plus the
    charges, rounded to the minor unit); ``cost_exact`` is the same unrounded.
    """

    task_id: str
    agent: str
    input: Any
    status: TaskStatus
    output: Any
    error: TaskError | None
    progress: float | None  # the last progress reported
    message: str | None  # the last message reported
    reports: tuple[ProgressReport, ...]
    charges: tuple[Charge, ...]
    logs: tuple[LogLine, ...]
    cost: Cost
    started_at: datetime
    finished_at: datetime

    @property
    def ok(self) -> bool:
        return self.status is TaskStatus.COMPLETED

    @property
    def charged(self) -> Decimal:
        """What the agent charged in all, in minor units (exact)."""
        return sum((c.amount for c in self.charges), Decimal(0))

    @property
    def cost_exact(self) -> Decimal:
        return Decimal(self.cost.micros) / cost.MICROS

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def log_text(self, stream: Literal["stdout", "stderr"] | None = None) -> str:
        """The log's lines (of one stream, or both), joined with newlines."""
        return "\n".join(line.text for line in self.logs if stream in (None, line.stream))


class RunRefused(Exception):
    """The run could not start: what a server would refuse before queueing the task (an
    unknown agent, an input that does not fit its schema: ``code`` says which), or agents
    that could not be loaded."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# --- where a run keeps its reports --------------------------------------------------------------
def _as_run_event(event: NewEvent) -> RunEvent | None:
    data = event.data
    if event.kind == task_events.PROGRESS:
        return ProgressReport(data["progress"], data["message"], event.at)
    if event.kind == task_events.CHARGE:
        amount = Decimal(int(data["amountMicros"])) / cost.MICROS
        total = Decimal(int(data["costMicros"])) / cost.MICROS
        return Charge(amount, data["description"], total, event.at)
    if event.kind == task_events.LOG:
        stream: Literal["stdout", "stderr"] = (
            "stderr" if data["stream"] == task_events.STDERR else "stdout"
        )
        return LogLine(stream, data["text"], event.at)
    return None


@dataclass(slots=True)
class LocalRecord:
    """The store's part in a run (``execution.RunRecord``), in memory: the task as it stands,
    its events in order, and its end. ``on_event`` sees each event as it is recorded."""

    task: Task
    on_event: Callable[[RunEvent], None] | None = None
    events: list[RunEvent] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def report_progress(
        self,
        task_id: str,
        attempt: int,
        progress: float | None,
        message: str | None,
        charged_micros: int,
        *,
        announce: bool = False,
        events: Sequence[NewEvent] = (),
        log_bytes: int = 0,
        usage: UsageUpdate | None = None,
    ) -> Task | None:
        if self.ended.is_set():
            return None  # as the store answers once the task has ended: the run stops
        self._apply(progress, message, charged_micros, events, log_bytes, usage)
        return self.task

    async def append_logs(self, task: Task, events: Sequence[NewEvent], log_bytes: int) -> None:
        self._add_events(events)

    async def add_network_usage(self, task_id: str, attempt: int, network: NetworkUsage) -> None:
        self.task = replace(self.task, network=self.task.network + network)

    async def finish(self, task_id: str, attempt: int, outcome: Outcome) -> Task | None:
        if self.ended.is_set():
            return None
        self._apply(
            outcome.progress,
            outcome.message,
            outcome.charged_micros,
            outcome.events,
            outcome.log_bytes,
            outcome.usage,
        )
        now = self.now()
        task = self.task
        self.task = replace(
            task,
            status=outcome.status,
            output=outcome.output,
            error=outcome.error,
            compute_micros=task.compute_micros + task.live_compute_micros(now),
            network=task.network + outcome.network,
            finished_at=now,
        )
        self.ended.set()
        return self.task

    def _apply(
        self,
        progress: float | None,
        message: str | None,
        charged_micros: int,
        events: Sequence[NewEvent],
        log_bytes: int,
        usage: UsageUpdate | None,
    ) -> None:
        task = self.task
        self.task = replace(
            task,
            usage=task.usage if usage is None else usage.usage,
            progress=task.progress if progress is None else progress,
            message=task.message if message is None else message,
            charged_micros=task.charged_micros + charged_micros,
            log_bytes=task.log_bytes + log_bytes,
        )
        self._add_events(events)

    def _add_events(self, events: Sequence[NewEvent]) -> None:
        for new in events:
            event = _as_run_event(new)
            if event is None:
                continue
            self.events.append(event)
            if self.on_event is not None:
                self.on_event(event)

    def result(self) -> AgentRun:
        task = self.task
        assert task.started_at is not None and task.finished_at is not None
        return AgentRun(
            task_id=task.task_id,
            agent=task.agent,
            input=task.input,
            status=task.status,
            output=task.output,
            error=task.error,
            progress=task.progress,
            message=task.message,
            reports=tuple(e for e in self.events if isinstance(e, ProgressReport)),
            charges=tuple(e for e in self.events if isinstance(e, Charge)),
            logs=tuple(e for e in self.events if isinstance(e, LogLine)),
            cost=task.cost_at(task.finished_at),
            started_at=task.started_at,
            finished_at=task.finished_at,
        )


# --- the runner ---------------------------------------------------------------------------------
class LocalRunner:
    """A node's sandboxes without its server: started once (``async with``), then one task per
    ``run``. ``config`` holds the agents and limits as ``theazo serve`` takes them;
    ``python_path`` is where agent modules outside the working directory are imported from."""

    def __init__(self, config: NodeConfig, *, python_path: tuple[str, ...] = ()) -> None:
        self.config = config
        self.pool = SandboxPool(
            # No spare forked ahead: the one task's sandbox is made when it is asked for, and no
            # other is made after it only to be killed. Nothing preloaded for tasks to come.
            sandbox_settings(
                config,
                hidden_paths=(),
                zygotes=1,
                spares=0,
                python_path=python_path,
                preload=False,
            )
        )
        self._inputs = InputChecker()

    async def __aenter__(self) -> LocalRunner:
        try:
            await self.pool.start()
        except SandboxError as exc:
            raise RunRefused("agents_not_loaded", str(exc)) from None
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.pool.close()

    @property
    def tier(self) -> str:
        return self.pool.tier.label

    def agent(self, name: str) -> AgentInfo:
        """The agent ``name`` as ``GET /v1/agents`` would list it; ``RunRefused`` if none is."""
        found = self.pool.catalogue.get(name)
        if found is None:
            known = ", ".join(sorted(self.pool.catalogue)) or "none"
            raise RunRefused(
                "unknown_agent", f"no agent named {name!r} is served here (agents: {known})"
            )
        return found

    def check(self, name: str, task_input: Any) -> AgentInfo:
        """What a submit checks before it queues: the agent exists and the input fits its
        schema. Raises ``RunRefused`` with the code a server's 422 would carry."""
        agent = self.agent(name)
        try:
            self._inputs.check(agent, task_input)
        except InvalidField as exc:
            raise RunRefused(exc.code, exc.detail, field=exc.field) from None
        return agent

    async def run(
        self,
        name: str,
        task_input: Any,
        *,
        timeout_seconds: float | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        on_start: Callable[[Task], None] | None = None,
        cancel: asyncio.Event | None = None,
    ) -> AgentRun:
        """Run one task to its end. Setting ``cancel`` cancels it as a server's cancel does:
        recorded ``cancelled`` at once (what was reported until then kept), then its sandbox
        is killed."""
        agent = self.check(name, task_input)
        task = self._task(agent.name, task_input, timeout_seconds)
        record = LocalRecord(task, on_event)
        run = TaskRun(
            # No lease to keep (nobody else could take the task) and no session budget.
            ClaimedTask(task, lease_expires_at=task.created_at, session_budget=None),
            record,
            self.pool,
            RunSettings(
                cpu_limit_seconds=self.config.cpu_limit_seconds,
                log_limit_bytes=self.config.log_limit_bytes,
            ),
            stopping=asyncio.Event(),
        )
        if on_start is not None:
            on_start(record.task)
        running = asyncio.ensure_future(run.run())
        cancelling = asyncio.ensure_future((cancel or asyncio.Event()).wait())
        try:
            await asyncio.wait({running, cancelling}, return_when=asyncio.FIRST_COMPLETED)
            if cancelling.done() and not running.done():
                await run.flush()  # what it reported before the cancel is kept, as on a server
                await record.finish(record.task.task_id, 1, Outcome(TaskStatus.CANCELLED))
                run.request_kill()
            await running
        finally:
            cancelling.cancel()
            if not running.done():  # we were cancelled ourselves: the sandbox goes too
                run.request_kill()
                with contextlib.suppress(BaseException):
                    await asyncio.shield(running)
        return record.result()

    def _task(self, agent: str, task_input: Any, timeout_seconds: float | None) -> Task:
        now = datetime.now(UTC)
        return Task(
            id=1,
            task_id=ids.new_task_id(),
            project_id=LOCAL_PROJECT,
            session_id=ids.new_session_id(),
            user_id=LOCAL_USER,
            agent=agent,
            status=TaskStatus.RUNNING,
            priority=Priority.NORMAL,
            input=task_input,
            progress=None,
            message=None,
            output=None,
            error=None,
            compute_micros=0,
            charged_micros=0,
            compute_price_micros=self.config.compute_price_micros,
            webhook_url=None,
            webhook_events=(),
            metadata={},
            timeout_seconds=timeout_seconds or self.config.task_timeout_seconds,
            attempt=1,
            max_attempts=1,
            idempotency_key=None,
            created_at=now,
            started_at=now,
            finished_at=None,
            worker_id=None,
            fair_key=0,
        )
