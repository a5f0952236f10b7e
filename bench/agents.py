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


@agent("ticker", description="Reports the time as its progress message every input['every'] s.")
def ticker(ctx: Context, input: dict[str, Any]) -> None:
    """``steps`` reports ``every`` seconds apart, each message the wall-clock time it was made
    (and, with ``print``, a stdout line holding the same): the stream's latency is measured
    against it."""
    steps, every = int(input["steps"]), float(input["every"])
    for step in range(1, steps + 1):
        now = f"{time.time():.6f}"
        if input.get("print"):
            print(now, flush=True)
        ctx.progress(step / steps, now)
        time.sleep(every)
