"""The agents the benchmark runs: as small as possible, so the figures measure Theazo."""

from __future__ import annotations

import os
import time
from typing import Any

from theazo import Context, agent


@agent("noop", description="Returns None at once.")
def noop(ctx: Context, input: Any) -> None:
    return None


@agent("sleep", description="Reports its pid, then sleeps input['seconds'].")
def sleep(ctx: Context, input: dict[str, Any]) -> None:
    ctx.progress(0.0, f"pid={os.getpid()}")
    time.sleep(float(input["seconds"]))
