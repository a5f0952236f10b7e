"""What the server sends, as pydantic models with snake_case attributes.

The wire is camelCase; each model reads it through aliases. Unknown fields are ignored and most
fields have defaults, so an older SDK keeps working against a newer server that adds fields.
``status`` and ``priority`` are plain strings for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "TERMINAL_STATUSES",
    "Agent",
    "ChargeEvent",
    "Cost",
    "Delivery",
    "DeliveryAttempt",
    "EndEvent",
    "Limits",
    "LogEvent",
    "LogLine",
    "LogPage",
    "PreviousSecret",
    "ProgressEvent",
    "SessionInfo",
    "SessionStreamEvent",
    "StatusEvent",
    "StreamEvent",
    "StreamToken",
    "Task",
    "TaskError",
    "TaskPage",
    "TaskStreamEvent",
    "Usage",
    "WebhookSecret",
]

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def _empty_as_none(value: object) -> object:
    return None if value == "" else value


Timestamp = Annotated[datetime | None, BeforeValidator(_empty_as_none)]


class WireModel(BaseModel):
    """Base of every model: camelCase aliases, snake_case names, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Cost(WireModel):
    """An amount of money.

    Attributes:
        amount: In the currency's minor unit (cents for ``"usd"``).
        currency: Lower-case ISO 4217 code, e.g. ``"usd"``.
    """

    amount: int = 0
    currency: str = "usd"


class Tokens(WireModel):
    """Model tokens.

    Attributes:
        input: Input (prompt) tokens, cached ones included.
        output: Generated tokens.
        cached: The input tokens read from the provider's prompt cache.
    """

    input: int = 0
    output: int = 0
    cached: int = 0


class Network(WireModel):
    """A task's traffic out of its sandbox, through the server's egress proxy.

    Attributes:
        sent_bytes: Bytes sent, over all its attempts.
        received_bytes: Bytes received.
        connections: Connections opened.
    """

    sent_bytes: int = 0
    received_bytes: int = 0
    connections: int = 0


class TaskUsage(WireModel):
    """What a task used: the model tokens of its calls through the model gateway, and its
    sandbox's network traffic.

    Attributes:
        tokens: All its model calls together.
        by_model: The same, by model name.
        network: Bytes sent and received through the egress proxy.
    """

    tokens: Tokens = Field(default_factory=Tokens)
    by_model: dict[str, Tokens] = Field(default_factory=dict)
    network: Network = Field(default_factory=Network)


class TaskError(WireModel):
    """Why a task failed.

    Attributes:
        code: Stable and machine-readable, e.g. ``"agent_error"`` or ``"budget_exceeded"``.
        message: For humans.
    """

    code: str
    message: str = ""


class Task(WireModel):
    """One run of an agent on one input, as the server last reported it.

    Attributes:
        task_id: ``"task_…"``.
        session_id: ``"sess_…"``.
        agent: The agent's name.
        status: ``"queued"``, ``"running"``, ``"completed"``, ``"failed"`` or ``"cancelled"``.
        priority: ``"high"``, ``"normal"`` or ``"low"``.
        input: The input as submitted.
        progress: The last progress the agent reported, in [0, 1], if any.
        message: The last message the agent reported, if any.
        output: What the agent returned, once ``completed``.
        error: Why the task failed, once ``failed``.
        cost: Compute and agent charges so far.
        usage: Model tokens its model calls used, in all and by model.
        webhook: The URL told when the task ends, if any.
        webhook_events: Which events are sent to the webhook.
        metadata: The caller's string-to-string annotations.
        timeout: The task's wall-clock limit, in seconds.
        attempt: 1 for the first run, more after automatic re-runs; 0 before it starts.
        retries: How many automatic re-runs are allowed after a lost worker.
        queue_position: For a queued task, how many tasks start before it (0 = next).
        created_at: When it was submitted.
        started_at: When it last started running.
        completed_at: When it reached its terminal state.
    """

    task_id: str
    session_id: str
    agent: str
    status: str
    priority: str = "normal"
    input: Any = None
    progress: float | None = None
    message: str | None = None
    output: Any = None
    error: TaskError | None = None
    cost: Cost = Field(default_factory=Cost)
    usage: TaskUsage = Field(default_factory=TaskUsage)
    webhook: str | None = None
    webhook_events: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = None
    attempt: int = 0
    retries: int = 0
    queue_position: int | None = None
    created_at: Timestamp = None
    started_at: Timestamp = None
    completed_at: Timestamp = None

    @property
    def is_terminal(self) -> bool:
        """True once the task is completed, failed or cancelled: it will never change again."""
        return self.status in TERMINAL_STATUSES


class Limits(WireModel):
    """A session's limits.

    Attributes:
        max_running: How many of its tasks may run at once.
        max_queued: How many of its tasks may wait at once.
        budget: Total spend allowed, in minor units; ``None`` for no budget.
    """

    max_running: int
    max_queued: int
    budget: int | None = None


class Usage(WireModel):
    """What a session has used.

    Attributes:
        tasks: Tasks ever submitted in the session.
        queued: Tasks waiting now.
        running: Tasks running now.
        cost: Total spend of the session.
        tokens: Model tokens of all its tasks.
    """

    tasks: int = 0
    queued: int = 0
    running: int = 0
    cost: Cost = Field(default_factory=Cost)
    tokens: Tokens = Field(default_factory=Tokens)


class SessionInfo(WireModel):
    """A session (one end user of the project), as the server last reported it.

    Attributes:
        session_id: ``"sess_…"``.
        user_id: The application's identifier of the end user.
        created_at: When the session was created.
        limits: Its limits.
        usage: What it has used.
    """

    session_id: str
    user_id: str
    created_at: Timestamp = None
    limits: Limits
    usage: Usage = Field(default_factory=Usage)


class Agent(WireModel):
    """An agent the deployment can run.

    Attributes:
        name: What to pass as ``agent`` when submitting.
        description: What it does.
        input_schema: The JSON Schema its input must match, if it declares one.
        output_schema: The JSON Schema of its output, if it declares one (a framework
            agent's output type).
    """

    name: str
    description: str = ""
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None


class TaskPage(WireModel):
    """One page of a task listing, newest first. Iterate over it for its tasks.

    Attributes:
        data: The tasks of this page.
        next_cursor: Pass as ``cursor`` for the next page; ``None`` on the last page.
    """

    data: list[Task]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[Task]:  # type: ignore[override]
        """Iterate over the page's tasks (not over the model's fields)."""
        return iter(self.data)

    def __len__(self) -> int:
        """The number of tasks on this page."""
        return len(self.data)

    def __getitem__(self, index: int) -> Task:
        """The task at ``index`` on this page."""
        return self.data[index]

    @property
    def has_more(self) -> bool:
        """True when another page follows."""
        return self.next_cursor is not None


class TaskBatch(WireModel):
    """The answer to a batch submit (internal)."""

    data: list[Task]


class AgentList(WireModel):
    """The answer to the agents listing (internal)."""

    data: list[Agent]


class PreviousSecret(WireModel):
    """A webhook secret rotated out that still signs until ``expires_at``.

    Attributes:
        secret: ``"whsec_…"``.
        expires_at: When it stops signing.
    """

    secret: str
    expires_at: Timestamp = None


class WebhookSecret(WireModel):
    """The project's webhook signing secret (Standard Webhooks).

    Attributes:
        secret: ``"whsec_…"``; verify webhooks with it, e.g.
            ``standardwebhooks.webhooks.Webhook(secret).verify(body, headers)``.
        created_at: When it was made.
        previous: Secrets rotated out that still sign during their overlap window.
    """

    secret: str
    created_at: Timestamp = None
    previous: list[PreviousSecret] = Field(default_factory=list)


class DeliveryAttempt(WireModel):
    """One attempt to deliver a webhook.

    Attributes:
        attempted_at: When it started.
        duration_ms: How long it took.
        http_status: The receiver's status; ``None`` when no answer came.
        error: Why no answer came (refused, time-out, forbidden address...), if so.
    """

    attempted_at: Timestamp = None
    duration_ms: int = 0
    http_status: int | None = None
    error: str | None = None


class Delivery(WireModel):
    """One webhook message of a task and where it stands.

    Attributes:
        delivery_id: The ``webhook-id`` header: the same on every retry and redelivery.
        event: ``"completed"`` (any terminal state), ``"started"`` or ``"progress"``.
        url: Where it is sent.
        status: ``"pending"``, ``"delivered"`` or ``"failed"`` (retries exhausted).
        attempts: Attempts started so far.
        next_attempt_at: When a pending delivery is tried next.
        created_at: When the event happened.
        delivered_at: When a receiver answered 2xx.
        history: Every attempt, oldest first.
    """

    delivery_id: str
    event: str = "completed"
    url: str = ""
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: Timestamp = None
    created_at: Timestamp = None
    delivered_at: Timestamp = None
    history: list[DeliveryAttempt] = Field(default_factory=list)

    @property
    def is_delivered(self) -> bool:
        """True once a receiver answered with a 2xx status."""
        return self.status == "delivered"


class DeliveryList(WireModel):
    """The answer to the deliveries listing (internal)."""

    data: list[Delivery]


class LogLine(WireModel):
    """One line the agent wrote to its stdout or stderr.

    Attributes:
        seq: Its place in the task's events: increasing within the task (with gaps, since
            other events share the numbering); pass it as ``after`` to read on from it.
        stream: ``"stdout"`` or ``"stderr"``.
        text: The line, without its newline.
        at: When the server read it.
    """

    seq: int
    stream: str = "stdout"
    text: str = ""
    at: Timestamp = None


class LogPage(WireModel):
    """One page of a task's log, oldest first. Iterate over it for its lines.

    Attributes:
        data: The lines of this page.
        next_cursor: Pass as ``after`` for the lines stored after this page; ``None`` when
            there are none yet.
    """

    data: list[LogLine]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[LogLine]:  # type: ignore[override]
        """Iterate over the page's lines (not over the model's fields)."""
        return iter(self.data)

    def __len__(self) -> int:
        """The number of lines on this page."""
        return len(self.data)

    def __getitem__(self, index: int) -> LogLine:
        """The line at ``index`` on this page."""
        return self.data[index]


class StreamToken(WireModel):
    """A short-lived, read-only token for one session's event streams and logs, for a browser
    (``EventSource`` cannot send an API key): pass it as ``?token=``.

    Attributes:
        token: ``"thst_…"``.
        session_id: The one session it reads.
        expires_at: After this, it opens no stream.
    """

    token: str
    session_id: str
    expires_at: Timestamp = None


class StreamEvent(WireModel):
    """Base of the events of a stream.

    Attributes:
        id: The event's id in its stream (a task's stream, or a session's): resume after it.
        event: Its name: ``"status"``, ``"progress"``, ``"log"``, ``"charge"`` or ``"end"``.
        data: Its JSON ``data`` as the server sent it (the typed fields read the same).
    """

    id: int
    event: str
    data: dict[str, Any] = Field(default_factory=dict, repr=False)


class StatusEvent(StreamEvent):
    """The task changed status (or, first in a task stream, the task as it is now).

    Attributes:
        task: The whole task, as it was at this event.
    """

    event: str = "status"
    task: Task

    @property
    def task_id(self) -> str:
        """The task's ID."""
        return self.task.task_id


class ProgressEvent(StreamEvent):
    """The agent reported progress.

    Attributes:
        task_id: The task that reported it.
        progress: In [0, 1], or ``None`` when only a message was reported.
        message: The message reported, if any.
    """

    event: str = "progress"
    task_id: str
    progress: float | None = None
    message: str | None = None


class LogEvent(StreamEvent):
    """The agent wrote a line to its stdout or stderr.

    Attributes:
        task_id: The task whose agent wrote it.
        stream: ``"stdout"`` or ``"stderr"``.
        text: The line, without its newline.
        at: When the server read it.
    """

    event: str = "log"
    task_id: str
    stream: str = "stdout"
    text: str = ""
    at: Timestamp = None


class ChargeEvent(StreamEvent):
    """The agent charged an amount to the task.

    Attributes:
        task_id: The task charged.
        amount: In minor units, as the agent gave it (it may be fractional).
        description: What the agent said it was for.
        cost: The task's cost once it is added.
    """

    event: str = "charge"
    task_id: str
    amount: float = 0
    description: str | None = None
    cost: Cost = Field(default_factory=Cost)


class EndEvent(StreamEvent):
    """The task ended: the last event of its stream.

    Attributes:
        task: The task in its terminal state.
    """

    event: str = "end"
    task: Task

    @property
    def task_id(self) -> str:
        """The task's ID."""
        return self.task.task_id


TaskStreamEvent = StatusEvent | ProgressEvent | LogEvent | ChargeEvent | EndEvent
"""What ``tasks.stream()`` yields."""
SessionStreamEvent = StatusEvent | ProgressEvent
"""What ``session.events()`` yields."""
