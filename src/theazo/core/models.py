"""The records Theazo keeps, as plain typed values shared by the store, scheduler and API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from theazo.core import cost
from theazo.core.states import Priority, TaskStatus
from theazo.core.usage import ModelUsage, NetworkUsage, Tokens, UsageUpdate

JSON = Any  # any value json.loads can return


@dataclass(frozen=True, slots=True)
class TaskError:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Cost:
    micros: int
    currency: str = "usd"

    @property
    def amount(self) -> int:
        return cost.minor_units(self.micros)


@dataclass(frozen=True, slots=True)
class Limits:
    max_running: int
    max_queued: int
    budget: int | None  # minor units; None = no budget


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    project_id: str
    user_id: str
    created_at: datetime
    limits: Limits
    task_count: int
    queued_count: int
    running_count: int
    spent_micros: int  # exact: finished tasks' cost, plus running tasks' charges so far
    billed_amount: int  # minor units: the sum of finished tasks' rounded costs
    tokens: Tokens = Tokens()  # model tokens of all its tasks (the gateway's metering)


@dataclass(frozen=True, slots=True)
class NewTask:
    """A validated submit, ready to store."""

    agent: str
    input: JSON
    priority: Priority
    timeout_seconds: float
    max_attempts: int
    metadata: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ("completed",)
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    id: int  # internal, monotonic: the FIFO tiebreak
    task_id: str
    project_id: str
    session_id: str
    user_id: str
    agent: str
    status: TaskStatus
    priority: Priority
    input: JSON
    progress: float | None
    message: str | None
    output: JSON
    error: TaskError | None
    compute_micros: int
    charged_micros: int
    compute_price_micros: int  # per second of wall time, fixed when the task starts
    webhook_url: str | None
    webhook_events: tuple[str, ...]
    metadata: dict[str, str]
    timeout_seconds: float
    attempt: int
    max_attempts: int
    idempotency_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    fair_key: int  # claim order within a priority (see store/base.py: fair_keys)
    queue_position: int | None = None  # computed for queued tasks when asked for
    event_seq: int = 0  # the id of its latest event (core/events.py)
    log_bytes: int = 0  # what its log holds, counted against the cap
    usage: ModelUsage = ModelUsage()  # model tokens by model, over all its attempts
    network: NetworkUsage = NetworkUsage()  # its egress, over all its attempts

    def cost_at(self, now: datetime) -> Cost:
        """The running total: a running task's compute accrues until it stops."""
        return Cost(self.compute_micros + self.live_compute_micros(now) + self.charged_micros)

    def live_compute_micros(self, now: datetime) -> int:
        """Compute accrued by the current attempt and not yet recorded (0 unless running)."""
        if self.status is not TaskStatus.RUNNING or self.started_at is None:
            return 0
        wall = (now - self.started_at).total_seconds()
        return cost.compute_micros(wall, self.compute_price_micros)


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """What a worker needs to run a task it has just claimed."""

    task: Task
    lease_expires_at: datetime
    session_budget: int | None  # minor units; the run watches its session's spend if set


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended, as the worker reports it to the store."""

    status: TaskStatus  # completed or failed
    output: JSON = None
    error: TaskError | None = None
    progress: float | None = None  # the last report not yet saved, if any
    message: str | None = None
    charged_micros: int = 0  # charges not yet saved
    events: tuple[Any, ...] = ()  # events not yet saved (core/events.py: NewEvent)
    log_bytes: int = 0  # what the log lines among them hold
    usage: UsageUpdate | None = None  # model usage not yet saved
    network: NetworkUsage = NetworkUsage()  # the attempt's egress, added to the task's


@dataclass(frozen=True, slots=True)
class Project:
    project_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent the sandboxes can run, as the server knows it (it never imports agent code)."""

    name: str
    description: str
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None = None  # declared by framework adapters' agents


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    secret: str  # whsec_<base64>
    created_at: datetime
    expires_at: datetime | None  # None: the current secret; else it signs until then


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    attempted_at: datetime
    duration_ms: int
    http_status: int | None
    error: str | None
    response_body: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook message and where it stands; retries keep its ``message_id``."""

    id: int
    message_id: str
    project_id: str
    session_id: str
    task_id: str
    event: str  # completed, started or progress
    url: str
    payload: dict[str, Any]
    status: str  # pending, delivered or failed
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    history: tuple[DeliveryAttempt, ...] = ()
