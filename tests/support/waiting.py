"""Waiting in tests: on a condition, with a deadline, never a bare sleep."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def parse_report(message: str) -> dict[str, str]:
    """``"pid=12 workdir=/tmp/x"`` (what the test agents report) → ``{"pid": "12", …}``."""
    return dict(part.split("=", 1) for part in message.split())
