"""How a sandbox's run ended, decided from what it said and how it exited. Pure logic."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any

from theazo.core.models import Outcome, TaskError
from theazo.core.states import ErrorCode, TaskStatus
from theazo.sandbox.pool import ExitStatus

_KNOWN_ERROR_CODES = {
    ErrorCode.AGENT_ERROR,
    ErrorCode.INVALID_OUTPUT,
    ErrorCode.OUTPUT_TOO_LARGE,
    ErrorCode.INVALID_INPUT,
    ErrorCode.MEMORY_LIMIT,
    ErrorCode.UNKNOWN_AGENT,
}
# The codes only the server may give (a timeout, a lost worker, a budget): no agent may claim
# them. Any other short snake_case code is an agent's own (``AgentFailed``, a command agent's
# error line), passed through as it chose it.
_SYSTEM_ERROR_CODES = {
    value for name, value in vars(ErrorCode).items() if name.isupper() and isinstance(value, str)
} - _KNOWN_ERROR_CODES
_AGENT_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _agent_code(code: str) -> str:
    if code in _KNOWN_ERROR_CODES:
        return code
    if code in _SYSTEM_ERROR_CODES or not _AGENT_CODE.match(code):
        return ErrorCode.AGENT_ERROR
    return code


@dataclass(slots=True)
class RunReport:
    """What the agent said before its channel closed."""

    result: Any = None
    has_result: bool = False
    error: TaskError | None = None
    protocol_error: TaskError | None = None  # the sandbox broke the protocol (too large, …)

    @property
    def is_final(self) -> bool:
        """The run's outcome is known without how the process exited."""
        return self.has_result or self.error is not None or self.protocol_error is not None


def failed(code: str, message: str) -> Outcome:
    return Outcome(TaskStatus.FAILED, error=TaskError(code, message))


def classify(report: RunReport, exit_status: ExitStatus | None, cpu_limit_seconds: int) -> Outcome:
    """How the run ended. ``exit_status`` is needed only when the report is not final."""
    if report.protocol_error is not None:
        return Outcome(TaskStatus.FAILED, error=report.protocol_error)
    if report.error is not None:
        code = _agent_code(report.error.code)
        return Outcome(TaskStatus.FAILED, error=TaskError(code, report.error.message))
    if report.has_result:
        return Outcome(TaskStatus.COMPLETED, output=report.result)
    assert exit_status is not None
    return _death(exit_status, cpu_limit_seconds)


def _death(exit_status: ExitStatus, cpu_limit_seconds: int) -> Outcome:
    """The sandbox ended without an answer: say why as precisely as the exit allows."""
    if exit_status.start_error is not None:
        return failed(
            ErrorCode.SANDBOX_START_FAILED,
            f"the sandbox could not start: {exit_status.start_error}",
        )
    if exit_status.zygote_lost:
        return failed(ErrorCode.SANDBOX_CRASHED, "the sandbox's parent process stopped")
    signum = exit_status.signal
    if exit_status.oom_killed:
        return failed(
            ErrorCode.MEMORY_LIMIT,
            "the sandbox's processes together used up its memory limit and one was killed",
        )
    over_cpu = exit_status.over_cpu or (
        cpu_limit_seconds > 0 and exit_status.cpu_seconds >= cpu_limit_seconds
    )
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and over_cpu):
        return failed(
            ErrorCode.CPU_LIMIT, f"the agent used its CPU-time limit of {cpu_limit_seconds}s"
        )
    if signum is not None:
        name = (
            signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else signum
        )
        hint = " (possibly out of memory)" if signum == signal.SIGKILL else ""
        return failed(ErrorCode.SANDBOX_CRASHED, f"the sandbox was killed by signal {name}{hint}")
    return failed(
        ErrorCode.SANDBOX_CRASHED,
        f"the sandbox exited with status {exit_status.code} before returning a result",
    )
