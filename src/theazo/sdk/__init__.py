"""The Python client of Theazo.

Example:
    >>> from theazo import Theazo
    >>> theazo = Theazo(api_key="th_live_...", base_url="http://127.0.0.1:8321")
    >>> session = theazo.sessions.for_user("user_123")
    >>> task = session.tasks.submit("researcher", {"query": "..."}, priority="high")
    >>> session.tasks.wait(task.task_id, timeout="5m").output

``AsyncTheazo`` has the same surface, every call awaited. The exception tree is drawn in
``theazo.sdk._exceptions``.
"""

from __future__ import annotations

from theazo.sdk._async_client import (
    AsyncAgents,
    AsyncSession,
    AsyncSessions,
    AsyncTasks,
    AsyncTheazo,
    AsyncWebhooks,
)
from theazo.sdk._client import Agents, Session, Sessions, Tasks, Theazo, Webhooks
from theazo.sdk._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExhaustedError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    TheazoError,
    UnprocessableEntityError,
)
from theazo.sdk._models import (
    Agent,
    ChargeEvent,
    Cost,
    Delivery,
    DeliveryAttempt,
    EndEvent,
    Limits,
    LogEvent,
    LogLine,
    LogPage,
    Network,
    PreviousSecret,
    ProgressEvent,
    SessionInfo,
    SessionStreamEvent,
    StatusEvent,
    StreamEvent,
    StreamToken,
    Task,
    TaskError,
    TaskPage,
    TaskStreamEvent,
    TaskUsage,
    Tokens,
    Usage,
    WebhookSecret,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Agent",
    "Agents",
    "AsyncAgents",
    "AsyncSession",
    "AsyncSessions",
    "AsyncTasks",
    "AsyncTheazo",
    "AsyncWebhooks",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExhaustedError",
    "ChargeEvent",
    "ConflictError",
    "Cost",
    "Delivery",
    "DeliveryAttempt",
    "EndEvent",
    "Limits",
    "LogEvent",
    "LogLine",
    "LogPage",
    "Network",
    "NotFoundError",
    "PayloadTooLargeError",
    "PreviousSecret",
    "ProgressEvent",
    "RateLimitError",
    "ServerError",
    "Session",
    "SessionInfo",
    "SessionStreamEvent",
    "Sessions",
    "StatusEvent",
    "StreamEvent",
    "StreamToken",
    "Task",
    "TaskError",
    "TaskPage",
    "TaskStreamEvent",
    "TaskUsage",
    "Tasks",
    "Theazo",
    "TheazoError",
    "Tokens",
    "UnprocessableEntityError",
    "Usage",
    "WebhookSecret",
    "Webhooks",
]
