"""The storage interface: one method per named operation, typed records in and out.

Every backend (``sqlite/``, ``postgres/``) implements ``Store`` and passes the same suite in
``tests/store``. Rules every implementation keeps:

* Each method that changes a task's status is one transaction of the form
  ``UPDATE … WHERE id = ? AND status IN (<allowed from-states>)``; "no row" means the race was
  lost and is never retried blindly. A terminal state is never overwritten.
* Events (``self.events``) fire only after commit.
* Session counters (queued, running, spent) change in the same transaction as the tasks.

Logic that does not touch a database (which candidates a claim takes, the fair-share keys
of new tasks) lives here, once, for every backend.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from theazo.core import defaults
from theazo.core.clock import Clock, SystemClock
from theazo.core.events import NewEvent, TaskEvent
from theazo.core.models import (
    ClaimedTask,
    Delivery,
    DeliveryAttempt,
    Limits,
    NewTask,
    Outcome,
    Session,
    Task,
    WebhookSecret,
)
from theazo.core.rates import Limited, RateLimits
from theazo.core.states import Priority, Scheduling, TaskStatus
from theazo.core.usage import NetworkUsage, UsageUpdate
from theazo.store.events import EventHub


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class LimitsPatch:
    max_running: int | _Unset = UNSET
    max_queued: int | _Unset = UNSET
    budget: int | _Unset | None = UNSET


@dataclass(frozen=True, slots=True)
class StoreSettings:
    default_limits: Limits = Limits(
        max_running=defaults.MAX_RUNNING_PER_SESSION,
        max_queued=defaults.MAX_QUEUED_PER_SESSION,
        budget=None,  # sessions have no budget until one is set
    )
    scheduling: Scheduling = Scheduling.FAIR
    compute_price_micros: int = 0  # per second of sandbox wall time
    lease_seconds: float = defaults.LEASE_SECONDS


@dataclass(frozen=True, slots=True)
class Spend:
    """A session's spending now, for its budget watch."""

    budget: int | None  # minor units; None: no budget
    spent_micros: int  # finished tasks, running tasks' charges and their compute so far
    compute_rate_micros: int  # what its running tasks' compute adds per second, together


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which of a project's tasks to list, across its sessions (the dashboard's filters);
    every field left empty selects everything."""

    statuses: tuple[TaskStatus, ...] = ()
    agent: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    priority: Priority | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class ActiveCount:
    status: TaskStatus  # queued or running
    priority: Priority
    count: int


@dataclass(frozen=True, slots=True)
class ProjectOverview:
    """A project's queue as it stands, and how its recent tasks ended."""

    active: tuple[ActiveCount, ...]
    oldest_queued_at: datetime | None
    ended_since: dict[TaskStatus, int]  # terminal status -> tasks that ended so since then


@dataclass(frozen=True, slots=True)
class WorkerNode:
    """A registered node running tasks, and how many it runs now."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    lease_expires_at: datetime
    slots: int | None  # how many tasks it runs at once; None: a node that did not say
    running: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """A queued task a claim may take, with its session's free running slots."""

    id: int
    session_id: str
    session_free_slots: int


class Store(abc.ABC):
    """A Theazo database. Methods are coroutines; a backend may run them on the loop."""

    # An embedded database has exactly one node: at its start, every task some earlier run
    # left running was lost with that run.
    single_node: bool = False
    # How often the dispatcher looks for work when no event came; None when events are
    # delivered in-process and cannot be lost.
    safety_sweep_seconds: float | None = defaults.SAFETY_SWEEP_SECONDS

    def __init__(self, settings: StoreSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.events = EventHub()

    # --- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (safe when several nodes start at once)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # --- projects and keys -----------------------------------------------------------------
    @abc.abstractmethod
    async def create_project(self) -> str: ...

    @abc.abstractmethod
    async def project_exists(self, project_id: str) -> bool: ...

    @abc.abstractmethod
    async def add_api_key(self, project_id: str, key_hash: str, hint: str) -> None: ...

    @abc.abstractmethod
    async def project_for_key(self, key_hash: str) -> str | None: ...

    @abc.abstractmethod
    async def count_api_keys(self) -> int: ...

    # --- sessions --------------------------------------------------------------------------
    @abc.abstractmethod
    async def session_for_user(self, project_id: str, user_id: str) -> Session:
        """Get or create the session of ``user_id`` in the project."""

    @abc.abstractmethod
    async def get_session(self, project_id: str, session_id: str) -> Session:
        """Raise ``NotFound`` when unknown or in another project."""

    @abc.abstractmethod
    async def set_session_limits(
        self, project_id: str, session_id: str, patch: LimitsPatch
    ) -> Session: ...

    @abc.abstractmethod
    async def running_tasks_of_session(self, session_id: str) -> list[Task]: ...

    @abc.abstractmethod
    async def session_budgets(self, session_ids: Sequence[str]) -> dict[str, int | None]:
        """The budget (minor units, None: none) of each of these sessions: one query."""

    @abc.abstractmethod
    async def session_spend(self, session_id: str) -> Spend:
        """What a session has spent up to now, running tasks' compute included."""

    # --- tasks: the client side ------------------------------------------------------------
    @abc.abstractmethod
    async def submit(
        self, project_id: str, session_id: str, new_tasks: Sequence[NewTask]
    ) -> list[Task]:
        """Insert all tasks or none. A task whose idempotency key the session already used
        comes back as the task stored first. Raises ``LimitReached`` (queue full),
        ``BudgetExhausted`` and ``NotFound``."""

    @abc.abstractmethod
    async def get_task(self, project_id: str, session_id: str, task_id: str) -> Task: ...

    @abc.abstractmethod
    async def list_tasks(
        self,
        project_id: str,
        session_id: str,
        statuses: Sequence[TaskStatus],
        limit: int,
        before_id: int | None,
    ) -> list[Task]:
        """Newest first; ``before_id`` continues a previous page."""

    @abc.abstractmethod
    async def queue_position(self, task: Task) -> int:
        """How many queued tasks come before this one in claim order."""

    @abc.abstractmethod
    async def unfinished_by_priority(self) -> dict[tuple[TaskStatus, Priority], int]:
        """How many tasks of the whole deployment are queued and running, by priority (the
        pairs with none are left out)."""

    @abc.abstractmethod
    async def cancel(self, project_id: str, session_id: str, task_id: str) -> Task:
        """Record the cancel and bill a running task to this moment; raises
        ``InvalidTransition`` for a completed or failed task."""

    # --- tasks: the worker side ------------------------------------------------------------
    @abc.abstractmethod
    async def register_worker(
        self, worker_id: str, host: str, pid: int, slots: int | None = None
    ) -> None: ...

    @abc.abstractmethod
    async def remove_worker(self, worker_id: str) -> None: ...

    @abc.abstractmethod
    async def claim(self, worker_id: str, limit: int) -> list[ClaimedTask]:
        """Start up to ``limit`` tasks in scheduling order, honouring session limits."""

    @abc.abstractmethod
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
        """Save progress and add charges; None when the task is no longer this attempt's.
        ``usage`` replaces the task's model usage and adds its new tokens to the session's.
        ``announce`` also queues a ``progress`` webhook, if the task asked for them.
        ``events`` (progress, charge and log events, in order) are stored with them, and
        ``log_bytes`` added to what the task's log holds."""

    @abc.abstractmethod
    async def append_logs(self, task: Task, events: Sequence[NewEvent], log_bytes: int) -> None:
        """Store log events of a task whatever its status (lines read after its end)."""

    @abc.abstractmethod
    async def finish(self, task_id: str, attempt: int, outcome: Outcome) -> Task | None:
        """End a running attempt; None when it already ended (cancelled, rescued)."""

    @abc.abstractmethod
    async def heartbeat(self, worker_id: str) -> bool:
        """Renew the worker's lease, which holds all its running tasks: one row, however
        many tasks. False when the worker has no row (it was forgotten): register it again,
        and check what it holds (``attempts_held``)."""

    @abc.abstractmethod
    async def attempts_held(self, worker_id: str) -> dict[str, int]:
        """The running tasks the store has under this worker: task id → attempt."""

    @abc.abstractmethod
    async def release(self, task_id: str, attempt: int, *, started: bool) -> Task | None:
        """Give back a running attempt this worker will not finish. One that never started
        (its claim's answer was lost) goes back to the queue as if never claimed; one that
        started is treated as lost with its worker (re-queued if it has attempts left, else
        failed ``worker_lost``). None when the attempt had already ended."""

    @abc.abstractmethod
    async def rescue_lost_tasks(
        self,
        dead_worker_ids: Sequence[str] = (),
        *,
        alive_worker_id: str = "",
        orphans: bool = False,
    ) -> list[Task]:
        """Re-queue or fail the running tasks of workers whose lease passed or that are named
        dead (``alive_worker_id``, the caller's own, is never taken for lost); with
        ``orphans``, also those whose worker has no row. Returns them in their new state."""

    @abc.abstractmethod
    async def other_workers(self, worker_id: str) -> list[str]:
        """The registered workers other than ``worker_id``."""

    @abc.abstractmethod
    async def forget_silent_workers(self, silent_since: datetime) -> int:
        """Delete the workers not heard from since then (their tasks were rescued long ago);
        returns how many."""

    @abc.abstractmethod
    async def add_network_usage(self, task_id: str, attempt: int, network: NetworkUsage) -> None:
        """Add an attempt's egress to its task, whatever the task's state now (for a run whose
        end someone else recorded, such as a cancel)."""

    @abc.abstractmethod
    async def prune_finished_tasks(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` tasks that finished before then, oldest first, with their
        events, log and webhook deliveries; a task with a delivery still pending is kept until
        it settles. Returns how many went. Sessions and their spending stay."""

    # --- model-call rates (the model gateway's per-session limits) --------------------------
    @abc.abstractmethod
    async def count_model_call(self, session_id: str, limits: RateLimits) -> Limited | None:
        """Count a model call of the session now, unless ``limits`` say it must wait (then
        why, and for how long); across every node of the deployment, calls of one session
        counted one at a time."""

    @abc.abstractmethod
    async def count_model_tokens(self, session_id: str, limits: RateLimits, tokens: int) -> None:
        """Add the tokens a call of the session used (its answer metered) to its window."""

    # --- events and logs -------------------------------------------------------------------
    @abc.abstractmethod
    async def task_events(
        self, project_id: str, session_id: str, task_id: str, after: int, limit: int
    ) -> tuple[Task, list[TaskEvent]]:
        """The task's events after id ``after``, in order, and the task as it is now (read
        after them). Raises ``NotFound``."""

    @abc.abstractmethod
    async def task_logs(
        self, project_id: str, session_id: str, task_id: str, after: int, limit: int
    ) -> list[TaskEvent]:
        """The task's log events after id ``after``. Raises ``NotFound``."""

    @abc.abstractmethod
    async def session_events(
        self, project_id: str, session_id: str, after: int, limit: int
    ) -> list[TaskEvent]:
        """The session stream's events (status and progress of its tasks) after its id
        ``after``, in order. Raises ``NotFound``."""

    @abc.abstractmethod
    async def last_session_event(self, project_id: str, session_id: str) -> int:
        """The session stream's latest id (0 before any). Raises ``NotFound``."""

    @abc.abstractmethod
    async def deployment_secret(self, name: str) -> str:
        """A secret of the whole deployment, the same on every node; made on first use."""

    # --- webhooks --------------------------------------------------------------------------
    @abc.abstractmethod
    async def webhook_secrets(self, project_id: str) -> list[WebhookSecret]:
        """The secrets that sign now, current first; the first call makes one."""

    @abc.abstractmethod
    async def rotate_webhook_secret(
        self, project_id: str, overlap_seconds: float
    ) -> list[WebhookSecret]:
        """Make a new current secret; the old one keeps signing for ``overlap_seconds``."""

    @abc.abstractmethod
    async def claim_deliveries(self, limit: int, lease_seconds: float) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for one attempt each."""

    @abc.abstractmethod
    async def record_delivery_attempt(
        self,
        delivery: Delivery,
        attempt: DeliveryAttempt,
        *,
        delivered: bool,
        retry_at: datetime | None,
    ) -> None:
        """Log an attempt; then the delivery is delivered, due again at ``retry_at``, or
        (neither) given up."""

    @abc.abstractmethod
    async def next_delivery_due(self) -> datetime | None: ...

    @abc.abstractmethod
    async def deliveries_of_task(
        self, project_id: str, session_id: str, task_id: str
    ) -> list[Delivery]: ...

    @abc.abstractmethod
    async def redeliver(self, project_id: str, session_id: str, task_id: str) -> Delivery:
        """Send a terminal task's final webhook again, now."""

    # --- what the dashboard reads ----------------------------------------------------------
    @abc.abstractmethod
    async def list_project_tasks(
        self, project_id: str, query: TaskQuery, limit: int, before_id: int | None
    ) -> list[Task]:
        """The project's tasks that ``query`` selects, across its sessions, newest first;
        ``before_id`` continues a previous page."""

    @abc.abstractmethod
    async def list_sessions(
        self, project_id: str, after_user_id: str | None, limit: int
    ) -> list[Session]:
        """The project's sessions in order of user id, after ``after_user_id``."""

    @abc.abstractmethod
    async def project_overview(self, project_id: str, ended_since: datetime) -> ProjectOverview:
        """Queued and running counts by priority, the oldest queued task, and how many
        tasks ended in each terminal status since ``ended_since``."""

    @abc.abstractmethod
    async def worker_nodes(self) -> list[WorkerNode]:
        """Every registered node with how many tasks it runs (deployment-wide)."""

    @abc.abstractmethod
    async def task_timeline(
        self, project_id: str, session_id: str, task_id: str
    ) -> list[TaskEvent]:
        """The task's status and end events in order, each with the task as it then was.
        Raises ``NotFound``."""

    # --- shared logic ------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def lease_deadline(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.lease_seconds)

    def limits_of(
        self, max_running: int | None, max_queued: int | None, budget: int | None
    ) -> Limits:
        """A session's limits: its own where set, the server's defaults elsewhere.

        A budget has no server default: null means no budget.
        """
        fallback = self.settings.default_limits
        return Limits(
            max_running=fallback.max_running if max_running is None else max_running,
            max_queued=fallback.max_queued if max_queued is None else max_queued,
            budget=budget,
        )


def choose_claims(candidates: Iterable[Candidate], limit: int) -> list[int]:
    """Take candidates in order, at most each session's free running slots, up to ``limit``."""
    taken: dict[str, int] = {}
    chosen: list[int] = []
    for candidate in candidates:
        if len(chosen) >= limit:
            break
        used = taken.get(candidate.session_id, 0)
        if used < candidate.session_free_slots:
            taken[candidate.session_id] = used + 1
            chosen.append(candidate.id)
    return chosen


def fair_keys(
    count: int,
    *,
    scheduling: Scheduling,
    session_last_key: int,
    queue_front_key: int | None,
    highest_key: int,
) -> range:
    """Fair-share keys for ``count`` new tasks of one session and one priority.

    Claims take tasks in ``(priority, fair_key, id)`` order. Under ``fair``, a session's next
    key is one past its previous key, but never behind the front of the queue; so a session
    that was idle goes in at the front and alternates with a backlogged one, instead of
    waiting behind its backlog (start-time fair queueing with unit cost). Under ``fifo`` every
    key is past every earlier one: strict submission order.
    """
    if scheduling is Scheduling.FIFO:
        first = highest_key + 1
    else:
        virtual_now = queue_front_key if queue_front_key is not None else highest_key + 1
        first = max(session_last_key + 1, virtual_now)
    return range(first, first + count)
