"""One run of one task: start its sandbox, relay its reports to the store, record its end.

Every way a run can end goes through the store's guarded ``finish``: the agent's answer, its
death, the wall-clock timeout, the session's budget, the node's shutdown. Whichever is recorded
first wins; the others find the task no longer running and only make sure the process group is
dead. A cancel is recorded by the API before we hear of it, so here it only kills.

The store may fail at any moment: a report that could not be saved is kept and saved with the
next one, and the end is tried again until it is recorded (``retries.py``). A run whose end
could not be recorded at all says so (``settled`` stays false) and the dispatcher gives the
task back. Whatever the agent sends, it can at most fail its own task: a message the protocol
does not allow ends the run with its own ``error.code``, and messages are read no faster than
``SANDBOX_MESSAGES_PER_SECOND``, so a flood slows the agent, not the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from theazo.core import cost, defaults
from theazo.core import events as task_events
from theazo.core.events import NewEvent
from theazo.core.json_values import storable_text, why_not_storable
from theazo.core.models import ClaimedTask, Outcome, Task, TaskError
from theazo.core.states import ErrorCode
from theazo.core.usage import NetworkUsage, Tokens, UsageUpdate
from theazo.observability.logs import task_fields
from theazo.sandbox.egress import Usage
from theazo.sandbox.pool import ExitStatus, Sandbox, SandboxError, SandboxPool
from theazo.sandbox.protocol import FrameTooLarge
from theazo.scheduler.logs import LogLines
from theazo.scheduler.outcome import RunReport, classify, failed
from theazo.scheduler.retries import Backoff, GaveUp, retrying

log = logging.getLogger("theazo.scheduler")

_MAX_CHARGED_MICROS = defaults.MAX_AMOUNT_MINOR_UNITS * cost.MICROS
# Reports not saved yet: progress, message, charges, events, log bytes, model usage.
_Pending = tuple[float | None, str | None, int, tuple[NewEvent, ...], int, UsageUpdate | None]


@dataclass(frozen=True, slots=True)
class RunSettings:
    cpu_limit_seconds: int = defaults.CPU_LIMIT_SECONDS
    max_output_bytes: int = defaults.MAX_OUTPUT_BYTES
    progress_flush_seconds: float = defaults.PROGRESS_FLUSH_SECONDS
    log_limit_bytes: int = defaults.LOG_LIMIT_BYTES
    messages_per_second: float = defaults.SANDBOX_MESSAGES_PER_SECOND
    message_burst: int = defaults.SANDBOX_MESSAGE_BURST


class RunRecord(Protocol):
    """Where a run keeps what its agent reports and how it ended: the store on a node
    (``Store`` has these operations), memory for a run without a server (``local_run.py``)."""

    def now(self) -> datetime: ...

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
    ) -> Task | None: ...

    async def append_logs(self, task: Task, events: Sequence[NewEvent], log_bytes: int) -> None: ...

    async def finish(self, task_id: str, attempt: int, outcome: Outcome) -> Task | None: ...

    async def add_network_usage(
        self, task_id: str, attempt: int, network: NetworkUsage
    ) -> None: ...


class ProtocolViolation(Exception):
    """A message from the sandbox that the protocol does not allow; it fails the task."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = TaskError(code, message)


class TaskRun:
    def __init__(
        self,
        claimed: ClaimedTask,
        store: RunRecord,
        pool: SandboxPool,
        settings: RunSettings,
        *,
        stopping: asyncio.Event,
        on_charge: Callable[[TaskRun], None] | None = None,
        on_spawn_sent: Callable[[], None] | None = None,
    ) -> None:
        self.task = claimed.task
        self.budget = claimed.session_budget  # as the claim found it; watched by BudgetWatch
        self.store = store
        self.pool = pool
        self.settings = settings
        self.stopping = stopping
        self._on_charge = on_charge
        self._on_spawn_sent = on_spawn_sent
        self.sandbox: Sandbox | None = None
        self.ended = False  # an outcome is decided (by us or by someone else)
        self.settled = False  # the store holds the task's end (ours or someone else's)
        self._network_recorded = False  # its egress went with the end we recorded
        self._kill_requested = False
        self._pending_progress: float | None = None
        self._pending_message: str | None = None
        self._pending_charge = 0
        self._pending_events: list[NewEvent] = []  # progress, charges and logs, in order
        self._pending_log_bytes = 0
        self._charged = 0  # micros this attempt charged: each charge event's total, and capped
        self._usage = claimed.task.usage  # model tokens, its earlier attempts' included
        self._pending_usage: UsageUpdate | None = None
        self.model_micros = 0  # what this attempt's model calls cost (the gateway's cap)
        self._log = LogLines(settings.log_limit_bytes, claimed.task.log_bytes, store.now)
        self._logged_bytes = claimed.task.log_bytes  # what the store counts in the log
        self._late_logs: list[NewEvent] = []  # lines read once the task had ended
        self._late_log_bytes = 0
        self._late_lock = asyncio.Lock()
        self._partial_timer: asyncio.TimerHandle | None = None
        self._flush_lock = asyncio.Lock()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_backoff = Backoff()
        self._last_flush = 0.0
        # Writes allowed now: a few at once (a report and the line printed with it), refilled
        # at one per flush interval, so a chatty agent still costs ten writes a second.
        self._flush_tokens = float(defaults.PROGRESS_FLUSH_BURST)
        self._last_announce = float("-inf")
        self.claimed_at = asyncio.get_running_loop().time()

    @property
    def task_id(self) -> str:
        return self.task.task_id

    def saves_held(self) -> asyncio.Lock:
        """Held, no save of this run's reports is under way: the store's spend and
        ``pending_charge`` then count each of its charges exactly once (during a save, a
        charge is in neither until the save commits)."""
        return self._flush_lock

    @property
    def pending_charge(self) -> int:
        """Charges (micros) the agent made that are not saved yet."""
        return self._pending_charge

    # --- the run ---------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            self.sandbox = await self.pool.spawn(self._init_message())
        except SandboxError as exc:
            await self._record(failed(ErrorCode.SANDBOX_START_FAILED, str(exc)))
            return
        finally:
            if self._on_spawn_sent is not None:
                self._on_spawn_sent()
        if self._kill_requested:  # cancelled while the fork was under way
            self._kill()
        loop = asyncio.get_running_loop()
        output = loop.create_task(self._relay_output(self.sandbox))
        timeout = loop.call_later(self.task.timeout_seconds, self._on_timeout)
        try:
            report = await self._relay_reports(self.sandbox)
            if report.is_final and not self.ended:
                # The agent's answer is final: record it now, not after the process is reaped,
                # once what it printed before answering is read (its log comes before its end).
                await asyncio.wait({output}, timeout=defaults.LOG_DRAIN_SECONDS)
                await self._record(classify(report, None, self.settings.cpu_limit_seconds))
            exit_status = await self._exited(self.sandbox, report.is_final)
        finally:
            timeout.cancel()
            for timer in (self._flush_timer, self._partial_timer):
                if timer is not None:
                    timer.cancel()
            self.sandbox.close_channel()
        if not self.ended:
            await asyncio.wait({output}, timeout=defaults.LOG_DRAIN_SECONDS)
        # Also when an outcome was decided elsewhere: this waits for its recording to end.
        await self._record(classify(report, exit_status, self.settings.cpu_limit_seconds))
        await output
        await self._store_late_logs()
        network = await self.sandbox.close_network()
        if not self._network_recorded:
            await self._store_network(network)
        self._log_end(exit_status)

    async def _exited(self, sandbox: Sandbox, answered: bool) -> ExitStatus:
        """The sandbox's exit. Once it has answered, it has a moment to exit on its own (its
        own code closes the channel and exits at once; an agent that wrote an answer of its
        own and went on running does not), then it is killed."""
        if answered:
            try:
                return await asyncio.wait_for(
                    asyncio.shield(sandbox.exited), defaults.SANDBOX_EXIT_GRACE_SECONDS
                )
            except TimeoutError:
                self._kill()
        return await sandbox.exited

    def _init_message(self) -> dict[str, Any]:
        task = self.task
        return {
            "task_id": task.task_id,
            "session_id": task.session_id,
            "user_id": task.user_id,
            "agent": task.agent,
            "attempt": task.attempt,
            "metadata": task.metadata,
            "input": task.input,
        }

    async def _relay_output(self, sandbox: Sandbox) -> None:
        """What the agent writes to stdout and stderr, as the task's log, line by line."""
        loop = asyncio.get_running_loop()
        async for chunk in sandbox.output():
            self._add_log_lines(self._log.feed(chunk.stream, chunk.data, loop.time()))
            self._schedule_overdue_lines()
        self._add_log_lines(self._log.close())

    def _schedule_overdue_lines(self) -> None:
        """Text the agent wrote without a newline goes out once it waited long enough."""
        since = self._log.waiting_since()
        if since is None or self._partial_timer is not None:
            return
        loop = asyncio.get_running_loop()

        def send_overdue() -> None:
            self._partial_timer = None
            self._add_log_lines(self._log.overdue(loop.time()))
            self._schedule_overdue_lines()

        delay = max(0.0, since + defaults.LOG_PARTIAL_LINE_SECONDS - loop.time())
        self._partial_timer = loop.call_later(delay, send_overdue)

    def _add_log_lines(self, lines: list[NewEvent]) -> None:
        kept = self._log.kept_bytes - self._logged_bytes
        self._logged_bytes = self._log.kept_bytes
        if not lines:
            return
        if self.ended:  # recorded already (a cancel, a timeout): kept after its end
            self._late_logs += lines
            self._late_log_bytes += kept
            asyncio.get_running_loop().create_task(self._store_late_logs())
            return
        self._pending_events += lines
        self._pending_log_bytes += kept
        self._schedule_flush()

    async def _store_late_logs(self) -> None:
        async with self._late_lock:
            lines, self._late_logs = self._late_logs, []
            log_bytes, self._late_log_bytes = self._late_log_bytes, 0
            if not lines and not log_bytes:
                return
            try:
                await retrying(
                    lambda: self.store.append_logs(self.task, lines, log_bytes),
                    f"keep the last log lines of task {self.task_id}",
                    stopping=self.stopping,
                    fields=task_fields(self.task),
                )
            except GaveUp as exc:
                log.error("task %s: %s", self.task_id, exc, extra=task_fields(self.task))

    async def _relay_reports(self, sandbox: Sandbox) -> RunReport:
        report = RunReport()
        limit = self.settings.max_output_bytes + defaults.FRAME_OVERHEAD_BYTES
        pace = _Pace(self.settings.messages_per_second, self.settings.message_burst)
        try:
            async for message in sandbox.messages(limit):  # nothing to clean up if left early
                self._on_message(message, report)
                if report.is_final:  # nothing it says after its answer counts
                    break
                await pace.next()
        except FrameTooLarge as exc:
            report.protocol_error = TaskError(
                ErrorCode.OUTPUT_TOO_LARGE,
                f"the agent sent {exc.size} bytes in one message; the limit is "
                f"{self.settings.max_output_bytes}",
            )
        except ProtocolViolation as exc:
            report.protocol_error = exc.error
        except ConnectionError as exc:
            report.protocol_error = TaskError(
                ErrorCode.SANDBOX_CRASHED, f"the sandbox's channel broke: {exc}"
            )
        except ValueError as exc:  # not JSON, not an object
            report.protocol_error = TaskError(
                ErrorCode.INVALID_MESSAGE, f"the sandbox sent a message we cannot read: {exc}"
            )
        except Exception as exc:  # whatever else a message did to us: this task only
            log.error(
                "task %s: a sandbox message broke its handling",
                self.task_id,
                exc_info=exc,
                extra=task_fields(self.task),
            )
            report.protocol_error = TaskError(
                ErrorCode.INVALID_MESSAGE,
                f"the sandbox sent a message the server could not handle: {type(exc).__name__}",
            )
        if report.protocol_error is not None:
            self._kill()
        return report

    def _on_message(self, message: dict[str, Any], report: RunReport) -> None:
        kind = message.get("t")
        if kind == "progress":
            self._on_progress(message.get("p"), message.get("m"))
        elif kind == "charge":
            self._on_charge_message(message.get("amount"), message.get("description"))
        elif kind == "result":
            # Checked here, not in the sandbox: the agent shares the sandbox's process and could
            # write a frame of its own.
            output = message.get("output")
            reason = why_not_storable(output)
            if reason is None:
                report.result, report.has_result = output, True
            else:
                message_text = f"the agent's output is not JSON: {reason}"
                report.error = TaskError(ErrorCode.INVALID_OUTPUT, message_text)
        elif kind == "error":
            text = str(message.get("message", ""))[: defaults.MAX_ERROR_MESSAGE_CHARS]
            code = message.get("code")
            report.error = TaskError(code if isinstance(code, str) else "", storable_text(text))
        # Any other kind is ignored: a newer sandbox may report more than we know.

    def _on_progress(self, progress: Any, text: Any) -> None:
        reported_progress = reported_text = None
        number = isinstance(progress, int | float) and not isinstance(progress, bool)
        if number and 0 <= progress <= 1:
            self._pending_progress = reported_progress = float(progress)
        if isinstance(text, str):
            reported_text = storable_text(text[: defaults.MAX_MESSAGE_CHARS])
            self._pending_message = reported_text
        if reported_progress is not None or reported_text is not None:
            now = self.store.now()
            self._add_progress_event(
                task_events.progress_event(reported_progress, reported_text, now)
            )
        self._schedule_flush()

    def _on_charge_message(self, amount: Any, description: Any) -> None:
        if isinstance(amount, bool) or not isinstance(amount, str | int | float):
            raise ProtocolViolation(
                ErrorCode.INVALID_CHARGE,
                f"a charge must be a number of minor units, not {type(amount).__name__}",
            )
        try:
            micros = cost.to_micros(amount)
        except ValueError as exc:
            raise ProtocolViolation(
                ErrorCode.INVALID_CHARGE, f"the agent charged an amount we refuse: {exc}"
            ) from None
        if micros < 0:
            raise ProtocolViolation(ErrorCode.INVALID_CHARGE, "a charge cannot be negative")
        if not micros:
            return
        if self._charged + micros > _MAX_CHARGED_MICROS:
            raise ProtocolViolation(
                ErrorCode.INVALID_CHARGE,
                f"the task's charges passed {defaults.MAX_AMOUNT_MINOR_UNITS} minor units",
            )
        self._pending_charge += micros
        self._pending_events.append(self._charge_event(micros, description))
        self._schedule_flush()
        if self._on_charge is not None:
            self._on_charge(self)

    def record_model_call(self, model: str, tokens: Tokens, micros: int) -> None:
        """A model call through the gateway: its tokens join the task's usage, its cost is
        charged like the agent's own charges (one event, the session's budget checked)."""
        if self.ended:
            log.warning("task %s: a model call ended after the task; not charged", self.task_id)
            return
        self._usage = self._usage.add(model, tokens)
        update = UsageUpdate(self._usage, tokens)
        pending = self._pending_usage
        self._pending_usage = update if pending is None else pending.then(update)
        self.model_micros += micros
        if micros and self._charged + micros <= _MAX_CHARGED_MICROS:
            self._pending_charge += micros
            written = f", {tokens.written} written to the cache" if tokens.written else ""
            description = (
                f"model {model}: {tokens.input} input tokens ({tokens.cached} cached{written}), "
                f"{tokens.output} output tokens"
            )
            self._pending_events.append(self._charge_event(micros, description))
        self._schedule_flush()
        if micros and self._on_charge is not None:
            self._on_charge(self)

    def _add_progress_event(self, event: NewEvent) -> None:
        """Keep each report as an event; a burst between two writes keeps its latest ones."""
        pending = self._pending_events
        pending.append(event)
        progress = [i for i, e in enumerate(pending) if e.kind == task_events.PROGRESS]
        if len(progress) > defaults.PROGRESS_EVENTS_PER_FLUSH:
            del pending[progress[0]]

    def _charge_event(self, micros: int, description: Any) -> NewEvent:
        self._charged += micros
        now = self.store.now()
        total = self.task.cost_at(now).micros + self._charged
        text = None
        if isinstance(description, str):
            text = storable_text(description[: defaults.MAX_MESSAGE_CHARS])
        return task_events.charge_event(micros, text, total, now)

    # --- saving reports --------------------------------------------------------------------
    def _schedule_flush(self, delay: float | None = None) -> None:
        if self._flush_timer is not None or self.ended:
            return
        loop = asyncio.get_running_loop()
        if delay is None:
            interval = self.settings.progress_flush_seconds
            now = loop.time()
            refilled = (now - self._last_flush) / interval if interval > 0 else float("inf")
            tokens = min(float(defaults.PROGRESS_FLUSH_BURST), self._flush_tokens + refilled)
            # A moment's wait gathers what comes together (a line printed, then a report) into one.
            delay = defaults.FLUSH_GATHER_SECONDS if tokens >= 1 else (1 - tokens) * interval
            self._flush_tokens, self._last_flush = tokens - 1, now
        self._flush_timer = loop.call_later(delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_timer = None
        asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Save the reports not saved yet; stop the sandbox if the task is no longer ours.

        Never raises: reports that could not be saved are kept for the next try."""
        async with self._flush_lock:
            if self.ended:
                return
            pending = self._take_pending()
            progress, message, charge, events, log_bytes, usage = pending
            nothing = progress is None and message is None and not charge and not events
            if nothing and usage is None:
                return
            now = asyncio.get_running_loop().time()
            try:
                saved = await self.store.report_progress(
                    self.task_id,
                    self.task.attempt,
                    progress,
                    message,
                    charge,
                    announce=self._should_announce(progress, message, now),
                    events=events,
                    log_bytes=log_bytes,
                    usage=usage,
                )
            except Exception as exc:
                self._keep_pending(pending)
                delay = self._flush_backoff.take()
                log.warning(
                    "task %s: progress not saved (%s); again in %.2fs",
                    self.task_id,
                    exc,
                    delay,
                    extra=task_fields(self.task),
                )
                self._schedule_flush(delay)
                return
            self._flush_backoff.reset()
            if saved is None:  # the task is no longer ours; its log keeps what was read
                self.ended = self.settled = True
                self._kill()
                lines = [e for e in events if e.kind == task_events.LOG]
                if lines:
                    self._late_logs[:0] = lines
                    self._late_log_bytes += log_bytes
                    await self._store_late_logs()

    def _should_announce(self, progress: float | None, message: str | None, now: float) -> bool:
        """A progress webhook at most every few seconds per task, if the task asked."""
        if "progress" not in self.task.webhook_events or (progress is None and message is None):
            return False
        if now - self._last_announce < defaults.WEBHOOK_PROGRESS_MIN_INTERVAL_SECONDS:
            return False
        self._last_announce = now
        return True

    def _take_pending(self) -> _Pending:
        taken = (
            self._pending_progress,
            self._pending_message,
            self._pending_charge,
            tuple(self._pending_events),
            self._pending_log_bytes,
            self._pending_usage,
        )
        self._pending_progress, self._pending_message, self._pending_charge = None, None, 0
        self._pending_events, self._pending_log_bytes = [], 0
        self._pending_usage = None
        return taken

    def _keep_pending(self, taken: _Pending) -> None:
        """Put back reports a failed save took, before those come meanwhile (which win)."""
        progress, message, charge, events, log_bytes, usage = taken
        if usage is not None:
            self._pending_usage = usage.then(self._pending_usage)
        if self._pending_progress is None:
            self._pending_progress = progress
        if self._pending_message is None:
            self._pending_message = message
        self._pending_charge += charge
        self._pending_events[:0] = events
        self._pending_log_bytes += log_bytes

    async def _record(self, outcome: Outcome) -> None:
        """Record the run's end, trying until the store takes it; a no-op once an outcome is
        decided (it then waits for that one's recording). If the store never takes it,
        ``settled`` stays false and the dispatcher gives the task back."""
        async with self._flush_lock:
            if self.ended:
                return
            self.ended = True
            progress, message, charge, events, log_bytes, usage = self._take_pending()
            outcome = replace(
                outcome,
                progress=progress,
                message=message,
                charged_micros=charge,
                events=events,
                log_bytes=log_bytes,
                usage=usage,
                network=self._network_so_far(),
            )
            try:
                finished = await retrying(
                    lambda: self.store.finish(self.task_id, self.task.attempt, outcome),
                    f"record the end of task {self.task_id}",
                    stopping=self.stopping,
                    fields=task_fields(self.task),
                )
            except GaveUp as exc:
                log.error("task %s: %s", self.task_id, exc, extra=task_fields(self.task))
                return
            self.settled = True
            # None: the task had ended elsewhere (a cancel); its egress is added at the end.
            self._network_recorded = finished is not None

    def _network_so_far(self) -> NetworkUsage:
        """The egress counted until now, recorded with the end: what the sandbox still sends
        after its end is recorded is not counted (it is being stopped)."""
        egress = None if self.sandbox is None else self.sandbox.egress
        if egress is None:
            return NetworkUsage()
        used = egress.usage
        return NetworkUsage(used.sent, used.received, used.connections)

    async def _store_network(self, used: Usage) -> None:
        """The egress of a run whose end was recorded elsewhere (a cancel): added to its task
        once the sandbox is gone; a store that will not take it loses only this count."""
        network = NetworkUsage(used.sent, used.received, used.connections)
        if not network:
            return
        try:
            await retrying(
                lambda: self.store.add_network_usage(self.task_id, self.task.attempt, network),
                f"record the network use of task {self.task_id}",
                stopping=self.stopping,
            )
        except GaveUp as exc:
            log.warning("task %s: %s", self.task_id, exc)

    # --- stopping --------------------------------------------------------------------------
    def request_kill(self) -> None:
        """The task was cancelled or taken from us elsewhere: kill, record nothing."""
        self.ended = self.settled = True
        self._kill()

    async def stop_with(self, outcome: Outcome) -> None:
        """End the task with ``outcome`` (billed to the moment it is recorded), then kill it;
        a store slow to record it delays the kill by a moment at most."""
        recording = asyncio.ensure_future(self._record(outcome))
        await asyncio.wait({recording}, timeout=defaults.STOP_RECORD_WAIT_SECONDS)
        self._kill()
        await recording

    def _kill(self) -> None:
        self._kill_requested = True
        if self.sandbox is not None and not self.sandbox.exited.done():
            asyncio.get_running_loop().create_task(self.sandbox.stop())

    def _on_timeout(self) -> None:
        outcome = failed(
            ErrorCode.TIMEOUT,
            f"the task ran longer than its timeout of {self.task.timeout_seconds:g}s",
        )
        asyncio.get_running_loop().create_task(self.stop_with(outcome))

    def _log_end(self, exit_status: ExitStatus) -> None:
        log.debug(
            "task %s sandbox %s exited %s (cpu %.3fs, rss %d kB)",
            self.task_id,
            self.sandbox.pid if self.sandbox else None,
            exit_status.code,
            exit_status.cpu_seconds,
            exit_status.max_rss_kb,
        )


class _Pace:
    """A token bucket over a sandbox's messages: ``burst`` at once, then ``rate`` a second.
    Every message yields to the event loop, so a channel full of small frames cannot hold
    it."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()

    async def next(self) -> None:
        now = self._loop.time()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate) - 1
        self._last = now
        await asyncio.sleep(-self._tokens / self._rate if self._tokens < 0 else 0)
