"""What a webhook says about a task (SPEC §4), in the wire's camelCase. Pure data."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

from theazo.core.clock import to_rfc3339
from theazo.core.models import Task

COMPLETED = "completed"  # any terminal state: completed, failed or cancelled
STARTED = "started"
PROGRESS = "progress"
EVENTS = (COMPLETED, STARTED, PROGRESS)


def payload(task: Task, event: str, now: datetime) -> dict[str, Any]:
    """The body of a webhook. A terminal event carries exactly SPEC §4's fields; the opt-in
    ``started`` and ``progress`` events add the task's progress and message."""
    cost = task.cost_at(now)
    body: dict[str, Any] = {
        "taskId": task.task_id,
        "sessionId": task.session_id,
        "status": task.status.value,
        "output": task.output,
        "error": None if task.error is None else task.error.as_dict(),
        "cost": {"amount": cost.amount, "currency": cost.currency},
        "completedAt": to_rfc3339(task.finished_at),
    }
    if event != COMPLETED:
        body["progress"] = task.progress
        body["message"] = task.message
    return body


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
