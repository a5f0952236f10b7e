"""Durations as users write them: ``"1500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or bare seconds."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class InvalidDuration(ValueError):
    pass


def parse_duration(value: str | int | float) -> float:
    """Return the duration in seconds; raise ``InvalidDuration`` for anything else."""
    if isinstance(value, bool):
        raise InvalidDuration("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise InvalidDuration(
                f"{value!r} is not a duration: use e.g. '1500ms', '30s', '5m', '1h' or seconds"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidDuration("a duration must be a finite number of seconds, not negative")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60 or seconds % 60:
        return f"{seconds:g}s"
    if seconds < 3600 or seconds % 3600:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
