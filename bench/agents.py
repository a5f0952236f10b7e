"""The agents the benchmark runs: as small as possible, so the figures measure Theazo."""

from __future__ import annotations

import fcntl
import os
import resource
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.sandboxes import process_tag

from bench.peers.work import model_loop
from theazo import Context, agent
from theazo.sandbox import linux


@agent("noop", description="Returns None at once.")
def noop(ctx: Context, input: Any) -> None:
    return None


@agent("sleep", description="Names its process after its task, then sleeps input['seconds'].")
def sleep(ctx: Context, input: dict[str, Any]) -> None:
    """The benchmark finds the sandbox by that name (tests/support/sandboxes.py)."""
    linux.set_process_name(process_tag(ctx.task_id))
    ctx.progress(0.0, "asleep")
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


@agent("soak", description="Runs input['seconds'], noting in input['dir'] whether it overlapped.")
def soak(ctx: Context, input: dict[str, Any]) -> dict[str, int]:
    """Holds a lock on a file of its task for as long as it runs: the kernel releases it when
    the process dies, ``kill -9`` included, so an attempt that cannot take it is running at the
    same time as another attempt of the same task. Each run and each overlap is one line of
    ``input['dir']/runs.log``."""
    folder = Path(input["dir"])
    lock = os.open(folder / f"{ctx.task_id}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        event = "run"
    except BlockingIOError:
        event = "overlap"
    with open(folder / "runs.log", "a") as log:
        log.write(f"{event} {ctx.task_id} {ctx.attempt}\n")
    time.sleep(float(input["seconds"]))
    return {"attempt": ctx.attempt}


@agent("work", description="Four calls to a model at input['url'], a progress report after each.")
def work(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """bench/agent_work.py's agent; its httpx client is made in the call (bench/peers/work.py)."""
    return model_loop(str(input["url"]), ctx.task_id, ctx.progress)


@agent("phases", description="bench/sandbox_phases.py: what a sandbox spent before and in work.")
def phases(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's CPU and page faults since it was cloned, then those of the work agent's
    client and its four calls made twice over: cold (the sandbox's first) and warm."""
    figures: dict[str, Any] = {"before": _usage()}
    for name in ("cold", "warm"):
        start = _usage()
        with httpx.Client(base_url=str(input["url"]), timeout=60) as client:
            made = _usage()
            for step in range(4):
                client.post("/v1/chat/completions", json={"task": ctx.task_id, "step": step})
            called = _usage()
        figures[f"{name}_client"] = _less(made, start)
        figures[f"{name}_calls"] = _less(called, made)
    return figures


def _usage() -> tuple[float, int]:
    """CPU milliseconds and minor page faults of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return 1000 * (usage.ru_utime + usage.ru_stime), usage.ru_minflt


def _less(later: tuple[float, int], earlier: tuple[float, int]) -> tuple[float, int]:
    return later[0] - earlier[0], later[1] - earlier[1]
