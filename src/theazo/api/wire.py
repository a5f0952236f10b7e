"""The JSON of the REST API (camelCase on the wire), as pydantic models.

Request models check shapes and types strictly (a string is not silently turned into a number)
and forbid unknown fields, so a typo such as ``"priorty"`` is a 422 naming the field instead
of a default quietly applied. Response models are built from the domain records here, so
``/openapi.json`` describes exactly what the routes send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from theazo.core import defaults
from theazo.core.clock import to_rfc3339
from theazo.core.json_values import why_not_storable, why_not_storable_text
from theazo.core.models import AgentInfo, Cost, Delivery, DeliveryAttempt, Task, WebhookSecret
from theazo.core.service import SessionView, SubmitRequest
from theazo.store.base import UNSET, LimitsPatch

PriorityLabel = Literal["high", "normal", "low"]
StatusLabel = Literal["queued", "running", "completed", "failed", "cancelled"]
WebhookEvent = Literal["completed", "started", "progress"]
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$"
Duration = (
    Annotated[StrictStr, Field(pattern=DURATION_PATTERN, max_length=32)]
    | Annotated[StrictInt, Field(ge=0)]
    | Annotated[StrictFloat, Field(ge=0)]
)


def _whole_number(value: Any) -> Any:
    """An integer field takes 3 and 3.0 (JSON Schema's idea of an integer), never "3" or true."""
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _storable(value: Any) -> Any:
    """Refused here, not after the insert: see core/json_values.py."""
    reason = why_not_storable(value)
    if reason is not None:
        raise PydanticCustomError("unstorable_json", reason)
    return value


def _storable_text(text: str) -> str:
    reason = why_not_storable_text(text)
    if reason is not None:
        raise PydanticCustomError("unstorable_text", reason)
    return text


StorableJson = Annotated[Any, AfterValidator(_storable)]
# Last in every string a client gives: PostgreSQL's text cannot hold NUL, and no name, key or
# URL has a use for one. (Last, so that pydantic still writes the bounds before it into the
# JSON schema, as for _WHOLE below.)
_STORABLE = AfterValidator(_storable_text)
MetadataKey = Annotated[
    StrictStr, Field(min_length=1, max_length=defaults.MAX_METADATA_KEY_CHARS), _STORABLE
]
MetadataValue = Annotated[StrictStr, Field(max_length=defaults.MAX_METADATA_VALUE_CHARS), _STORABLE]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=defaults.MAX_METADATA_KEYS)]

# The bounds go before the validator: after it, pydantic writes them into the JSON schema under
# names JSON Schema does not know.
_WHOLE = BeforeValidator(_whole_number)
Retries = Annotated[int, Field(ge=0, le=defaults.MAX_RETRIES), _WHOLE]
RunningLimit = Annotated[int, Field(ge=0, le=1_000_000), _WHOLE]
QueueLimit = Annotated[int, Field(ge=0, le=100_000_000), _WHOLE]
# At most 2**53 - 1: the largest integer a JSON number carries exactly to every client.
Budget = Annotated[int, Field(ge=0, le=2**53 - 1), _WHOLE]


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# --- requests -----------------------------------------------------------------------------
class SessionCreate(WireModel):
    user_id: Annotated[
        StrictStr, Field(min_length=1, max_length=defaults.MAX_USER_ID_CHARS), _STORABLE
    ]


class SubmitBody(WireModel):
    agent: Annotated[
        StrictStr, Field(min_length=1, max_length=defaults.MAX_AGENT_NAME_CHARS), _STORABLE
    ]
    input: StorableJson = Field(description="Any JSON value; the agent receives it as is.")
    priority: PriorityLabel = "normal"
    webhook: (
        Annotated[
            StrictStr,
            Field(max_length=defaults.WEBHOOK_MAX_URL_CHARS, pattern=r"^[hH][tT][tT][pP][sS]?://"),
            _STORABLE,
        ]
        | None
    ) = None
    webhook_events: Annotated[list[WebhookEvent], Field(min_length=1, max_length=3)] = Field(
        default_factory=lambda: ["completed"],  # type: ignore[arg-type]
        description='"completed" means every terminal state; "started" and "progress" opt in.',
    )
    timeout: Duration | None = Field(
        default=None, description='Wall-clock limit: "1500ms", "30s", "5m", "1h" or seconds.'
    )
    metadata: Metadata | None = None
    retries: Retries = Field(
        default=0, description="Automatic re-runs after the task's worker was lost."
    )
    idempotency_key: (
        Annotated[
            StrictStr,
            Field(min_length=1, max_length=defaults.MAX_IDEMPOTENCY_KEY_CHARS),
            _STORABLE,
        ]
        | None
    ) = Field(default=None, description="In a batch, what the Idempotency-Key header is alone.")

    def to_request(self, idempotency_key: str | None = None) -> SubmitRequest:
        return SubmitRequest(
            agent=self.agent,
            input=self.input,
            priority=self.priority,
            webhook=self.webhook,
            webhook_events=tuple(dict.fromkeys(self.webhook_events)),
            timeout=self.timeout,
            metadata=self.metadata,
            retries=self.retries,
            idempotency_key=idempotency_key or self.idempotency_key,
        )


class BatchBody(WireModel):
    tasks: Annotated[list[SubmitBody], Field(min_length=1, max_length=defaults.MAX_BATCH_TASKS)]


class LimitsBody(WireModel):
    max_running: RunningLimit | None = None
    max_queued: QueueLimit | None = None
    budget: Budget | None = Field(
        default=None, description="Minor units (cents); null removes the budget."
    )


class SessionPatch(WireModel):
    limits: LimitsBody

    def to_patch(self) -> LimitsPatch:
        given = self.limits.model_fields_set
        limits = self.limits
        return LimitsPatch(
            max_running=_given(limits.max_running, "max_running" in given),
            max_queued=_given(limits.max_queued, "max_queued" in given),
            budget=limits.budget if "budget" in given else UNSET,
        )


def _given(value: int | None, is_set: bool) -> Any:
    # maxRunning / maxQueued: null or absent leaves the value as it is.
    return value if is_set and value is not None else UNSET


# --- responses ----------------------------------------------------------------------------
class CostOut(WireModel):
    amount: int = Field(description="Minor units (cents), rounded half up from the exact sum.")
    currency: str

    @classmethod
    def of(cls, cost: Cost) -> CostOut:
        return cls(amount=cost.amount, currency=cost.currency)


class ErrorOut(WireModel):
    code: str
    message: str


class TokensOut(WireModel):
    input: int = Field(description="Input (prompt) tokens, cached ones included.")
    output: int = Field(description="Generated tokens.")
    cached: int = Field(description="The input tokens read from the provider's prompt cache.")


class NetworkOut(WireModel):
    sent_bytes: int = Field(description="Bytes its sandbox sent through the egress proxy.")
    received_bytes: int = Field(description="Bytes its sandbox received through it.")
    connections: int = Field(description="Connections its sandbox opened through it.")


class TaskUsageOut(WireModel):
    tokens: TokensOut = Field(description="Model tokens of all its model calls.")
    by_model: dict[str, TokensOut] = Field(description="The same, by model.")
    network: NetworkOut = Field(
        description="Its sandbox's traffic out, over all its attempts (docs/api.md, Usage)."
    )


class TaskOut(WireModel):
    task_id: str
    session_id: str
    agent: str
    status: StatusLabel
    priority: PriorityLabel
    input: Any
    progress: float | None
    message: str | None
    output: Any
    error: ErrorOut | None
    cost: CostOut
    usage: TaskUsageOut = Field(
        description="Model tokens its calls through the model gateway used (docs/agents.md)."
    )
    webhook: str | None
    webhook_events: list[str]
    metadata: dict[str, str]
    timeout: float = Field(description="Seconds.")
    attempt: int = Field(description="1 for the first run; 0 while never started.")
    retries: int
    queue_position: int | None = Field(
        description="For a queued task: how many tasks start before it (0 = next)."
    )
    created_at: str
    started_at: str | None
    completed_at: str | None


def task_json(task: Task, now: datetime) -> dict[str, Any]:
    """A task as TaskOut puts it on the wire (its aliases, in its order), as a plain dict.

    Building a thousand model instances took a third of a batch submit's time; a dict costs
    a tenth of that and serialises the same. tests/unit/test_wire.py holds the two together.
    """
    error = task.error
    cost = task.cost_at(now)
    return {
        "taskId": task.task_id,
        "sessionId": task.session_id,
        "agent": task.agent,
        "status": task.status.value,
        "priority": task.priority.label,
        "input": task.input,
        "progress": task.progress,
        "message": task.message,
        "output": task.output,
        "error": None if error is None else {"code": error.code, "message": error.message},
        "cost": {"amount": cost.amount, "currency": cost.currency},
        "usage": {**task.usage.wire(), "network": task.network.wire()},
        "webhook": task.webhook_url,
        "webhookEvents": list(task.webhook_events),
        "metadata": task.metadata,
        "timeout": task.timeout_seconds,
        "attempt": task.attempt,
        "retries": task.max_attempts - 1,
        "queuePosition": task.queue_position,
        "createdAt": to_rfc3339(task.created_at) or "",
        "startedAt": to_rfc3339(task.started_at),
        "completedAt": to_rfc3339(task.finished_at),
    }


class TaskList(WireModel):
    data: list[TaskOut]
    next_cursor: str | None


class TaskBatch(WireModel):
    data: list[TaskOut]


class LimitsOut(WireModel):
    max_running: int
    max_queued: int
    budget: int | None


class UsageOut(WireModel):
    tasks: int = Field(description="Tasks ever submitted in the session.")
    queued: int
    running: int
    cost: CostOut
    tokens: TokensOut = Field(description="Model tokens of all its tasks.")


class SessionOut(WireModel):
    session_id: str
    user_id: str
    created_at: str
    limits: LimitsOut
    usage: UsageOut

    @classmethod
    def of(cls, view: SessionView) -> SessionOut:
        session = view.session
        return cls(
            session_id=session.session_id,
            user_id=session.user_id,
            created_at=to_rfc3339(session.created_at) or "",
            limits=LimitsOut(
                max_running=session.limits.max_running,
                max_queued=session.limits.max_queued,
                budget=session.limits.budget,
            ),
            usage=UsageOut(
                tasks=session.task_count,
                queued=session.queued_count,
                running=session.running_count,
                cost=CostOut(amount=view.cost_amount, currency=defaults.CURRENCY),
                tokens=TokensOut(**session.tokens.as_json()),
            ),
        )


class AgentOut(WireModel):
    name: str
    description: str
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None = None

    @classmethod
    def of(cls, agent: AgentInfo) -> AgentOut:
        return cls(
            name=agent.name,
            description=agent.description,
            input_schema=agent.input_schema,
            output_schema=agent.output_schema,
        )


class AgentList(WireModel):
    data: list[AgentOut]


class PreviousSecretOut(WireModel):
    secret: str
    expires_at: str = Field(description="Until then it signs too, after the current one.")


class WebhookSecretOut(WireModel):
    secret: str = Field(description="whsec_…: verify webhooks with it (Standard Webhooks).")
    created_at: str
    previous: list[PreviousSecretOut] = Field(
        description="Secrets rotated out that still sign, during their overlap window."
    )

    @classmethod
    def of(cls, secrets: list[WebhookSecret]) -> WebhookSecretOut:
        current, *previous = secrets
        return cls(
            secret=current.secret,
            created_at=to_rfc3339(current.created_at) or "",
            previous=[
                PreviousSecretOut(secret=s.secret, expires_at=to_rfc3339(s.expires_at) or "")
                for s in previous
            ],
        )


class DeliveryAttemptOut(WireModel):
    attempted_at: str
    duration_ms: int
    http_status: int | None = Field(description="Null when no answer came.")
    error: str | None = Field(description="Why no answer came, or why it did not count.")

    @classmethod
    def of(cls, attempt: DeliveryAttempt) -> DeliveryAttemptOut:
        return cls(
            attempted_at=to_rfc3339(attempt.attempted_at) or "",
            duration_ms=attempt.duration_ms,
            http_status=attempt.http_status,
            error=attempt.error,
        )


class DeliveryOut(WireModel):
    delivery_id: str = Field(description="The webhook-id header: the same on every retry.")
    event: WebhookEvent
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int = Field(description="Attempts started so far.")
    next_attempt_at: str | None = Field(description="When pending: when it is tried next.")
    created_at: str
    delivered_at: str | None
    history: list[DeliveryAttemptOut]

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            delivery_id=delivery.message_id,
            event=delivery.event,  # type: ignore[arg-type]
            url=delivery.url,
            status=delivery.status,  # type: ignore[arg-type]
            attempts=delivery.attempts,
            next_attempt_at=to_rfc3339(delivery.next_attempt_at),
            created_at=to_rfc3339(delivery.created_at) or "",
            delivered_at=to_rfc3339(delivery.delivered_at),
            history=[DeliveryAttemptOut.of(a) for a in delivery.history],
        )


class DeliveryList(WireModel):
    data: list[DeliveryOut]


class Problem(BaseModel):
    """An RFC 9457 problem: every error answer has this shape."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable and machine-readable; switch on this, not on text.")
    field: str | None = Field(default=None, description="The request field at fault, if one.")
    errors: list[dict[str, str]] | None = None


class SandboxHealth(WireModel):
    tier: Literal["process", "namespaces", "landlock", "cgroup"] = Field(
        description="The isolation in force for this node's sandboxes (docs/operations.md)."
    )
    network: Literal["none", "egress", "host"]
    landlock_abi: int = Field(description="0 when sandboxes run without Landlock.")
    cgroup: Literal["v1", "v2"] | None = Field(description="null: no cgroup per sandbox.")


class Health(BaseModel):
    status: Literal["ok"]
    waits: int = Field(description="Long polls this node holds open right now.")
    sandbox: SandboxHealth


# --- logs and streams ---------------------------------------------------------------------
class LogLineOut(WireModel):
    seq: int = Field(description="The line's event id: increasing within the task, with gaps.")
    stream: Literal["stdout", "stderr"]
    text: str = Field(description="One line, without its newline.")
    at: str = Field(description="When the server read it.")


class LogPage(WireModel):
    data: list[LogLineOut]
    next_cursor: str | None = Field(
        description="Pass as ?after= for the lines stored after this page; null when none are "
        "(yet: a running task's log grows)."
    )


class StreamTokenBody(WireModel):
    ttl: Duration | None = Field(
        default=None, description='How long the token opens streams: "15m" (the default) to "24h".'
    )


class StreamTokenOut(WireModel):
    token: str = Field(description="Pass as ?token= to this session's event streams and logs.")
    session_id: str
    expires_at: str
