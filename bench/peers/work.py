"""The agent of ``bench/agent_work.py``, as one function every system wraps: four model calls
in a row with ``httpx``, a progress report after each.

The client is made inside the function, as people write agents: nothing is built ahead.

    python -m bench.peers.work --url URL [--tasks 200] [--threads 50]

runs the same agent in this one, reused process (the report a no-op) and prints its CPU per
task: what the agent itself costs, to compare each system's CPU per task with.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

STEPS = 4
PROMPT = {"model": "fake", "messages": [{"role": "user", "content": "next step?"}]}

Report = Callable[[float, str], None]


def model_loop(url: str, task: str, report: Report) -> dict[str, Any]:
    """Four calls to the model at ``url``; returns when the first progress was reported (the
    wall clock, to set against the submit's) and the last answer."""
    first_progress = 0.0
    content = ""
    with httpx.Client(base_url=url, timeout=60) as client:
        for step in range(STEPS):
            response = client.post(
                "/v1/chat/completions", json={**PROMPT, "task": task, "step": step}
            )
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
            report((step + 1) / STEPS, f"call {step + 1} of {STEPS}")
            first_progress = first_progress or time.time()
    return {"first_progress": first_progress, "content": content}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reused_process_cpu(url: str, tasks: int, threads: int) -> float:
    """CPU seconds per task of ``model_loop`` in this process, ``threads`` at a time."""
    httpx.post(f"{url}/reset", json={"tasks": tasks, "steps": STEPS})
    model_loop(url, "warm-up", lambda *_: None)  # imports and first-use costs, not counted
    before = cpu_seconds()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: model_loop(url, uuid.uuid4().hex, lambda *_: None), range(tasks)))
    return (cpu_seconds() - before) / tasks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--threads", type=int, default=50)
    args = parser.parse_args()
    print(
        json.dumps(
            {"cpu_per_task_ms": reused_process_cpu(args.url, args.tasks, args.threads) * 1000}
        )
    )


if __name__ == "__main__":
    main()
