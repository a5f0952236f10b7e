"""Task states, priorities and the transitions between states (SPEC §2)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

# queued → running → completed | failed | cancelled, queued → cancelled, and running → queued
# only when a lost worker's task is re-run (retries).
ALLOWED_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUEUED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


class Priority(IntEnum):
    """Stored as a small integer so that ``ORDER BY priority`` runs high first."""

    HIGH = 0
    NORMAL = 1
    LOW = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Priority:
        return cls[label.upper()]


class Scheduling(StrEnum):
    FAIR = "fair"  # sessions take turns within a priority
    FIFO = "fifo"  # strict global submission order within a priority


class ErrorCode:
    """The ``error.code`` values a failed task can carry."""

    AGENT_ERROR = "agent_error"  # the agent raised
    INVALID_OUTPUT = "invalid_output"  # the output is not JSON
    OUTPUT_TOO_LARGE = "output_too_large"
    INVALID_INPUT = "invalid_input"  # the input did not fit the agent's declared type
    SANDBOX_CRASHED = "sandbox_crashed"  # killed by a signal or exited without an answer
    MEMORY_LIMIT = "memory_limit_exceeded"
    CPU_LIMIT = "cpu_limit_exceeded"
    TIMEOUT = "timeout"  # the wall-clock limit passed
    SANDBOX_START_FAILED = "sandbox_start_failed"
    UNKNOWN_AGENT = "unknown_agent"  # the agent vanished between submit and run
    WORKER_LOST = "worker_lost"  # the node running it died
    WORKER_SHUTDOWN = "worker_shutdown"  # the node was stopped before the task finished
    BUDGET_EXCEEDED = "budget_exceeded"
    INVALID_CHARGE = "invalid_charge"  # a charge that is not a sane amount of money
    INVALID_MESSAGE = "invalid_message"  # the sandbox sent what the protocol does not allow
