"""The node's logs: text (the default) or JSON lines (``--log-format json``), and a record of
every task transition.

A JSON line is one object: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, then
``task_id``, ``session_id``, ``project_id`` and ``attempt`` where the record concerns a task
(given with ``extra=task_fields(task)``), any other ``extra`` field, and ``exception`` with the
traceback when there is one. Transitions (``event``: submitted, started, retried, completed,
failed, cancelled) are logged by ``TransitionLog`` from the status events this node commits,
so each is logged once in a deployment, by the node that made it: at INFO in JSON, and at
DEBUG in text (a line per transition would drown a busy node's text log).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from theazo.core.clock import to_rfc3339
from theazo.core.events import TaskEvent
from theazo.core.models import Task
from theazo.observability.transitions import Kind, transitions

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


# What every LogRecord has, so what is left is what the caller gave in ``extra``.
# uvicorn adds ``color_message`` (its message with terminal colours) to its records: not data.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


def task_fields(
    task: Task | None = None,
    *,
    task_id: str | None = None,
    session_id: str | None = None,
    project_id: str | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    """The ids of a task for ``extra=``: from ``task``, or those known where it is not."""
    if task is not None:
        return {
            "task_id": task.task_id,
            "session_id": task.session_id,
            "project_id": task.project_id,
            "attempt": task.attempt,
        }
    given = {
        "task_id": task_id,
        "session_id": session_id,
        "project_id": project_id,
        "attempt": attempt,
    }
    return {name: value for name, value in given.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


def _time(created: float) -> str:
    return to_rfc3339(datetime.fromtimestamp(created, UTC)) or ""


def configure(log_format: LogFormat, level: str) -> None:
    """The process's logging: one handler on stderr, in the format asked for."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class TransitionLog:
    """Logs each task transition this node commits (``EventHub.on_committed_here``)."""

    def __init__(self, level: int) -> None:
        self._log = logging.getLogger("theazo.tasks")
        self._level = level

    def on_committed(self, events: Sequence[TaskEvent]) -> None:
        if not self._log.isEnabledFor(self._level):
            return
        for change in transitions(events):
            if change.kind is Kind.REQUEUED:
                continue  # not a transition a user sees: the claim never reached a sandbox
            task = change.task
            event = task.status.value if change.kind is Kind.FINISHED else change.kind.value
            self._log.log(
                self._level,
                "task %s %s",
                task.task_id,
                event,
                extra={**task_fields(task), **_details(event, task)},
            )


def _details(event: str, task: Task) -> Mapping[str, Any]:
    details: dict[str, Any] = {"event": event, "agent": task.agent}
    if task.error is not None:
        details["error_code"] = task.error.code
    return details
