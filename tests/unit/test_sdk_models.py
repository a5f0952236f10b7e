"""The SDK reads what the server sends: camelCase JSON into snake_case models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from theazo.api import wire
from theazo.sdk import (
    Agent,
    Delivery,
    DeliveryAttempt,
    Limits,
    PreviousSecret,
    SessionInfo,
    Task,
    TaskPage,
    Usage,
    WebhookSecret,
)


def task_json(**overrides: Any) -> dict[str, Any]:
    """A task exactly as the server sends it (camelCase)."""
    body: dict[str, Any] = {
        "taskId": "task_7Gm2",
        "sessionId": "sess_Q9x",
        "agent": "researcher",
        "status": "completed",
        "priority": "high",
        "input": {"query": "tides"},
        "progress": 1.0,
        "message": "done",
        "output": {"summary": "the moon"},
        "error": None,
        "cost": {"amount": 12, "currency": "usd"},
        "webhook": "https://example.com/hook",
        "webhookEvents": ["completed", "progress"],
        "metadata": {"order": "42"},
        "timeout": 300.0,
        "attempt": 1,
        "retries": 2,
        "queuePosition": None,
        "createdAt": "2025-01-02T03:04:05.678Z",
        "startedAt": "2025-01-02T03:04:06.000Z",
        "completedAt": "2025-01-02T03:04:09.500Z",
    }
    body.update(overrides)
    return body


def test_a_task_reads_every_camel_case_field_into_snake_case() -> None:
    task = Task.model_validate(task_json())

    assert task.task_id == "task_7Gm2"
    assert task.session_id == "sess_Q9x"
    assert (task.agent, task.status, task.priority) == ("researcher", "completed", "high")
    assert task.input == {"query": "tides"}
    assert (task.progress, task.message) == (1.0, "done")
    assert task.output == {"summary": "the moon"}
    assert task.error is None
    assert (task.cost.amount, task.cost.currency) == (12, "usd")
    assert task.webhook == "https://example.com/hook"
    assert task.webhook_events == ["completed", "progress"]
    assert task.metadata == {"order": "42"}
    assert (task.timeout, task.attempt, task.retries, task.queue_position) == (300.0, 1, 2, None)
    assert task.created_at == datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert task.started_at == datetime(2025, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert task.completed_at == datetime(2025, 1, 2, 3, 4, 9, 500000, tzinfo=UTC)


def test_a_failed_task_carries_its_error() -> None:
    task = Task.model_validate(
        task_json(status="failed", output=None, error={"code": "agent_error", "message": "boom"})
    )
    assert task.error is not None
    assert (task.error.code, task.error.message) == ("agent_error", "boom")


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        ("queued", False),
        ("running", False),
        ("completed", True),
        ("failed", True),
        ("cancelled", True),
    ],
)
def test_is_terminal_follows_the_state_machine(status: str, terminal: bool) -> None:
    assert Task.model_validate(task_json(status=status)).is_terminal is terminal


def test_a_newer_server_with_more_fields_and_statuses_does_not_break_the_client() -> None:
    task = Task.model_validate(task_json(status="paused", shinyNewField={"x": 1}))
    assert task.status == "paused"
    assert not task.is_terminal
    assert not hasattr(task, "shiny_new_field")


def test_a_minimal_task_gets_defaults_for_what_is_missing() -> None:
    task = Task.model_validate(
        {"taskId": "task_1", "sessionId": "sess_1", "agent": "echo", "status": "queued"}
    )
    assert task.cost.amount == 0
    assert task.metadata == {}
    assert task.webhook_events == []
    assert task.created_at is None


def test_an_empty_timestamp_reads_as_none() -> None:
    assert Task.model_validate(task_json(createdAt="")).created_at is None


def test_models_also_accept_snake_case_names() -> None:
    task = Task(task_id="task_1", session_id="sess_1", agent="echo", status="queued")
    assert task.task_id == "task_1"


def test_a_session_reads_its_limits_and_usage() -> None:
    info = SessionInfo.model_validate(
        {
            "sessionId": "sess_1",
            "userId": "user_123",
            "createdAt": "2025-01-02T03:04:05.000Z",
            "limits": {"maxRunning": 10, "maxQueued": 10000, "budget": None},
            "usage": {
                "tasks": 5,
                "queued": 1,
                "running": 2,
                "cost": {"amount": 250, "currency": "usd"},
            },
        }
    )
    assert (info.session_id, info.user_id) == ("sess_1", "user_123")
    limits = info.limits
    assert (limits.max_running, limits.max_queued, limits.budget) == (10, 10000, None)
    assert (info.usage.tasks, info.usage.queued, info.usage.running) == (5, 1, 2)
    assert info.usage.cost.amount == 250


def test_an_agent_reads_its_input_schema() -> None:
    agent = Agent.model_validate(
        {"name": "echo", "description": "Returns its input", "inputSchema": {"type": "object"}}
    )
    assert (agent.name, agent.description, agent.input_schema) == (
        "echo",
        "Returns its input",
        {"type": "object"},
    )


def test_a_page_iterates_over_its_tasks() -> None:
    page = TaskPage.model_validate(
        {"data": [task_json(taskId="task_2"), task_json(taskId="task_1")], "nextCursor": "dDE"}
    )
    assert len(page) == 2
    assert [task.task_id for task in page] == ["task_2", "task_1"]
    assert page[0].task_id == "task_2"
    assert page.next_cursor == "dDE"
    assert page.has_more


def test_the_last_page_has_no_cursor() -> None:
    page = TaskPage.model_validate({"data": [], "nextCursor": None})
    assert len(page) == 0
    assert list(page) == []
    assert not page.has_more


def test_a_delivery_reads_its_attempts() -> None:
    delivery = Delivery.model_validate(
        {
            "deliveryId": "msg_1",
            "event": "completed",
            "url": "https://example.com/hook",
            "status": "delivered",
            "attempts": 2,
            "nextAttemptAt": None,
            "createdAt": "2025-01-02T03:04:05.678Z",
            "deliveredAt": "2025-01-02T03:04:11.000Z",
            "history": [
                {"attemptedAt": "2025-01-02T03:04:05.700Z", "durationMs": 12,
                 "httpStatus": 500, "error": None},
                {"attemptedAt": "2025-01-02T03:04:11.000Z", "durationMs": 9,
                 "httpStatus": 200, "error": None},
            ],
        }
    )  # fmt: skip
    assert delivery.is_delivered and delivery.delivery_id == "msg_1"
    assert [a.http_status for a in delivery.history] == [500, 200]
    assert delivery.history[0].attempted_at == datetime(2025, 1, 2, 3, 4, 5, 700_000, UTC)


def test_a_webhook_secret_reads_the_secrets_still_signing() -> None:
    secret = WebhookSecret.model_validate(
        {
            "secret": "whsec_new",
            "createdAt": "2025-01-02T03:04:05.678Z",
            "previous": [{"secret": "whsec_old", "expiresAt": "2025-01-03T03:04:05.678Z"}],
        }
    )
    assert secret.secret == "whsec_new" and secret.previous[0].secret == "whsec_old"
    assert secret.previous[0].expires_at == datetime(2025, 1, 3, 3, 4, 5, 678_000, UTC)


@pytest.mark.parametrize(
    ("server_model", "sdk_model"),
    [
        (wire.TaskOut, Task),
        (wire.SessionOut, SessionInfo),
        (wire.LimitsOut, Limits),
        (wire.UsageOut, Usage),
        (wire.AgentOut, Agent),
        (wire.TaskList, TaskPage),
        (wire.WebhookSecretOut, WebhookSecret),
        (wire.PreviousSecretOut, PreviousSecret),
        (wire.DeliveryOut, Delivery),
        (wire.DeliveryAttemptOut, DeliveryAttempt),
    ],
)
def test_the_sdk_reads_every_field_the_server_sends(server_model: Any, sdk_model: Any) -> None:
    assert set(server_model.model_fields) <= set(sdk_model.model_fields)
