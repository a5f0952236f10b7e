"""wire.task_json builds the task JSON by hand for speed; TaskOut is what /openapi.json
promises. These tests hold the two together, field for field."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from theazo.api.wire import TaskOut, task_json
from theazo.core.models import Task, TaskError
from theazo.core.states import Priority, TaskStatus

NOW = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)

QUEUED = Task(
    id=7,
    task_id="task_queued",
    project_id="proj_1",
    session_id="sess_1",
    user_id="user_1",
    agent="echo",
    status=TaskStatus.QUEUED,
    priority=Priority.HIGH,
    input={"text": "héllo", "n": [1, 2.5, None, True]},
    progress=None,
    message=None,
    output=None,
    error=None,
    compute_micros=0,
    charged_micros=0,
    compute_price_micros=0,
    webhook_url="https://example.com/hook",
    webhook_events=("completed", "failed"),
    metadata={"order": "42"},
    timeout_seconds=90.5,
    attempt=0,
    max_attempts=3,
    idempotency_key="key-1",
    created_at=NOW - timedelta(seconds=5),
    started_at=None,
    finished_at=None,
    worker_id=None,
    fair_key=11,
    queue_position=4,
)
RUNNING = dataclasses.replace(
    QUEUED,
    status=TaskStatus.RUNNING,
    progress=0.45,
    message="Processing 45 of 100 items...",
    compute_price_micros=2_000_000,  # two minor units a second
    attempt=1,
    started_at=NOW - timedelta(seconds=2),
    queue_position=None,
)
COMPLETED = dataclasses.replace(
    RUNNING,
    status=TaskStatus.COMPLETED,
    output=["a", {"b": 1.0}],
    compute_micros=40_000,
    charged_micros=1_250_000,
    finished_at=NOW - timedelta(seconds=1),
    webhook_url=None,
)
FAILED = dataclasses.replace(
    COMPLETED,
    status=TaskStatus.FAILED,
    output=None,
    error=TaskError("agent_error", "ValueError: bad input"),
    priority=Priority.LOW,
)


@pytest.mark.parametrize("task", [QUEUED, RUNNING, COMPLETED, FAILED], ids=lambda t: t.status)
def test_task_json_is_what_task_out_describes(task: Task) -> None:
    built = task_json(task, NOW)

    model = TaskOut.model_validate(built)

    assert list(built) == [f.alias for f in TaskOut.model_fields.values()]
    assert model.model_dump(by_alias=True) == built
    # Serialised the same way the model would be, byte for byte.
    assert json.loads(model.model_dump_json(by_alias=True)) == built


def test_a_running_task_shows_its_cost_so_far() -> None:
    cost = task_json(RUNNING, NOW)["cost"]

    expected = RUNNING.cost_at(NOW)  # two seconds of compute not yet recorded
    assert cost == {"amount": expected.amount, "currency": expected.currency}
    assert cost["amount"] > task_json(QUEUED, NOW)["cost"]["amount"] == 0
