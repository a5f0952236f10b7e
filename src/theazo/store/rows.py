"""Database rows to records, once for every backend. A backend passes its own converters for
the two things drivers disagree on: how a time and how a JSON value come back."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from theazo.core.models import (
    Delivery,
    DeliveryAttempt,
    Session,
    Task,
    TaskError,
    WebhookSecret,
)
from theazo.core.states import Priority, TaskStatus
from theazo.core.usage import ModelUsage, NetworkUsage, Tokens
from theazo.store.base import Store

Row = Mapping[str, Any]
TimeOf = Callable[[Any], datetime | None]
JsonOf = Callable[[Any], Any]


def _loads_text(value: Any) -> Any:
    if value is None or value == "null":
        return None
    if value == "{}":  # the metadata most tasks carry: no need to parse it
        return {}
    return json.loads(value)


_STATUSES = {status.value: status for status in TaskStatus}
_PRIORITIES = {int(priority): priority for priority in Priority}


def task_from_row(row: Row, time_of: TimeOf, json_of: JsonOf = _loads_text) -> Task:
    error = None
    if row["error_code"] is not None:
        error = TaskError(row["error_code"], row["error_message"] or "")
    created_at = time_of(row["created_at"])
    assert created_at is not None
    return Task(
        id=row["id"],
        task_id=row["task_id"],
        project_id=row["project_id"],
        session_id=row["session_id"],
        user_id=row["user_id"],
        agent=row["agent"],
        status=_STATUSES[row["status"]],
        priority=_PRIORITIES[row["priority"]],
        input=json_of(row["input"]),
        progress=row["progress"],
        message=row["message"],
        output=json_of(row["output"]),
        error=error,
        compute_micros=row["compute_micros"],
        charged_micros=row["charged_micros"],
        compute_price_micros=row["compute_price_micros"],
        webhook_url=row["webhook_url"],
        webhook_events=tuple(json_of(row["webhook_events"])),
        metadata=json_of(row["metadata"]),
        timeout_seconds=row["timeout_ms"] / 1000,
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        idempotency_key=row["idempotency_key"],
        created_at=created_at,
        started_at=time_of(row["started_at"]),
        finished_at=time_of(row["finished_at"]),
        worker_id=row["worker_id"],
        fair_key=row["fair_key"],
        event_seq=row["event_seq"],
        log_bytes=row["log_bytes"],
        usage=ModelUsage.from_json(json_of(row["usage"])),
        network=NetworkUsage(
            row["net_sent_bytes"], row["net_received_bytes"], row["net_connections"]
        ),
    )


def session_from_row(store: Store, row: Row, time_of: TimeOf) -> Session:
    created_at = time_of(row["created_at"])
    assert created_at is not None
    return Session(
        session_id=row["session_id"],
        project_id=row["project_id"],
        user_id=row["user_id"],
        created_at=created_at,
        limits=store.limits_of(row["max_running"], row["max_queued"], row["budget"]),
        task_count=row["task_count"],
        queued_count=row["queued_count"],
        running_count=row["running_count"],
        spent_micros=row["spent_micros"],
        billed_amount=row["billed_amount"],
        tokens=Tokens(row["tokens_input"], row["tokens_output"], row["tokens_cached"]),
    )


def secret_from_row(row: Row, time_of: TimeOf) -> WebhookSecret:
    created_at = time_of(row["created_at"])
    assert created_at is not None
    return WebhookSecret(row["secret"], created_at, time_of(row["expires_at"]))


def attempt_from_row(row: Row, time_of: TimeOf) -> DeliveryAttempt:
    attempted_at = time_of(row["attempted_at"])
    assert attempted_at is not None
    return DeliveryAttempt(
        attempted_at=attempted_at,
        duration_ms=row["duration_ms"],
        http_status=row["http_status"],
        error=row["error"],
        response_body=row["response_body"],
    )


def delivery_from_row(
    row: Row,
    time_of: TimeOf,
    json_of: JsonOf = _loads_text,
    history: tuple[DeliveryAttempt, ...] = (),
) -> Delivery:
    created_at = time_of(row["created_at"])
    assert created_at is not None
    return Delivery(
        id=row["id"],
        message_id=row["message_id"],
        project_id=row["project_id"],
        session_id=row["session_id"],
        task_id=row["task_id"],
        event=row["event"],
        url=row["url"],
        payload=json_of(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=time_of(row["next_attempt_at"]),
        created_at=created_at,
        delivered_at=time_of(row["delivered_at"]),
        history=history,
    )
