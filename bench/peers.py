"""Theazo beside the task queues people use today, on the same no-op workload, in one run.

    python bench/peers.py [--tasks 2000] [--runs 3] [--database postgresql://…]

For each system: 2 worker processes, a no-op task, and a client that waits on each result.

* **throughput**: submit N tasks (concurrently where the client allows), then wait for every
  result; tasks per second from the first submit to the last result.
* **round trip**: one task at a time, submit → result in the client, p50 and p99.

Theazo runs each task in a fresh sandbox process forked for it; Celery (prefork) and Huey
(processes) reuse their worker processes. Runs are interleaved (Theazo, Celery, Huey, Theazo,
…) so the machine's noise hits every system alike; the table shows the median of the runs.
Celery needs Redis (``BENCH_REDIS_URL``, default db 15 on 127.0.0.1:6379). Install the peers
with ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…`, when run as a script

from bench.peers.processes import REPO, WORKERS, env, stop, theazo_server

ROUND_TRIPS = 200
RUNNERS = 16  # Theazo's closed-loop clients in the throughput run
HUEY_POLL_SECONDS = 0.002  # the longest a Huey client sleeps between looks for a result


@dataclass
class Figures:
    throughput: float  # tasks/s
    p50_ms: float
    p99_ms: float


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _timed(round_trip: Callable[[], None], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        round_trip()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


# --- Theazo ---------------------------------------------------------------------------------
def run_theazo(tasks: int, database: str | None) -> Figures:
    from theazo import AsyncTheazo, Theazo

    with theazo_server(database) as (base, key, _):

        async def throughput() -> float:
            async with AsyncTheazo(api_key=key, base_url=base) as client:
                session = await client.sessions.for_user("bench")
                await session.run(agent="noop", input=None)  # warm-up
                left = tasks

                async def runner() -> None:  # waits on each result: one request a task
                    nonlocal left
                    while left > 0:
                        left -= 1
                        done = await session.run(agent="noop", input=None)
                        assert done.status == "completed", done.error

                start = time.perf_counter()
                await asyncio.gather(*(runner() for _ in range(RUNNERS)))
                return tasks / (time.perf_counter() - start)

        rate = asyncio.run(throughput())
        with Theazo(api_key=key, base_url=base) as client:
            session = client.sessions.for_user("bench-rt")

            def round_trip() -> None:
                assert session.run(agent="noop", input=None).status == "completed"

            _timed(round_trip, 20)  # warm up
            samples = _timed(round_trip, ROUND_TRIPS)
    return Figures(rate, percentile(samples, 0.5), percentile(samples, 0.99))


# --- Celery ---------------------------------------------------------------------------------
def run_celery(tasks: int, database: str | None) -> Figures:
    from bench.peers.celery_app import app, noop

    app.control.purge()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.peers.celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(WORKERS),
            "--loglevel",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=REPO,
        env=env(),
    )
    try:
        noop.delay().get(timeout=60)  # the worker is up
        start = time.perf_counter()
        results = [noop.delay() for _ in range(tasks)]
        for result in results:
            result.get(timeout=120)
        rate = tasks / (time.perf_counter() - start)
        samples = _timed(lambda: noop.delay().get(timeout=60), ROUND_TRIPS)
    finally:
        stop(worker)
    return Figures(rate, percentile(samples, 0.5), percentile(samples, 0.99))


# --- Huey -----------------------------------------------------------------------------------
def run_huey(tasks: int, database: str | None) -> Figures:
    workdir = Path(tempfile.mkdtemp(prefix="bench-huey-"))
    os.environ["BENCH_HUEY_DB"] = str(workdir / "huey.db")
    import importlib

    from bench.peers import huey_app

    importlib.reload(huey_app)
    consumer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "bench.peers.huey_app.huey",
            "--workers",
            str(WORKERS),
            "--worker-type",
            "process",
            "--delay",
            "0.001",
            "--max-delay",
            "0.01",
            "--no-periodic",
            "--quiet",
        ],
        cwd=REPO,
        env=env(),
    )
    try:
        # Huey's client polls its storage for a result, from 50 ms apart by default; a 2 ms
        # ceiling is the fastest it is reasonably asked to look.
        def get(result: Any, timeout: float) -> None:
            result.get(blocking=True, timeout=timeout, max_delay=HUEY_POLL_SECONDS)

        get(huey_app.noop(), 60)
        start = time.perf_counter()
        results = [huey_app.noop() for _ in range(tasks)]
        for result in results:
            get(result, 120)
        rate = tasks / (time.perf_counter() - start)
        samples = _timed(lambda: get(huey_app.noop(), 60), ROUND_TRIPS)
    finally:
        stop(consumer)
        shutil.rmtree(workdir, ignore_errors=True)
    return Figures(rate, percentile(samples, 0.5), percentile(samples, 0.99))


# --- the run --------------------------------------------------------------------------------
SYSTEMS: dict[str, Callable[[int, str | None], Figures]] = {
    "theazo (SQLite)": run_theazo,
    "celery 5 + redis": run_celery,
    "huey + sqlite": run_huey,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database", help="also run Theazo on this postgresql:// URL")
    parser.add_argument("--only", help="comma-separated system names to run")
    args = parser.parse_args()

    systems = dict(SYSTEMS)
    if args.database:
        systems["theazo (PostgreSQL)"] = lambda n, _: run_theazo(n, args.database)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",")]
        systems = {k: v for k, v in systems.items() if any(w in k for w in wanted)}

    results: dict[str, list[Figures]] = {name: [] for name in systems}
    for run in range(args.runs):
        for name, measure in systems.items():
            figures = measure(args.tasks, None)
            results[name].append(figures)
            print(
                f"run {run + 1}: {name:<20} {figures.throughput:8.0f} tasks/s   "
                f"p50 {figures.p50_ms:6.2f} ms   p99 {figures.p99_ms:6.2f} ms",
                flush=True,
            )
    print_table(results)


def print_table(results: dict[str, list[Figures]]) -> None:
    medians = {
        name: Figures(
            statistics.median(f.throughput for f in runs),
            statistics.median(f.p50_ms for f in runs),
            statistics.median(f.p99_ms for f in runs),
        )
        for name, runs in results.items()
        if runs
    }
    ours = medians.get("theazo (SQLite)")
    print()
    print(f"{'system':<22}{'tasks/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'theazo/peer':>14}")
    for name, figures in medians.items():
        ratio = (
            ""
            if ours is None or name.startswith("theazo")
            else (f"{ours.throughput / figures.throughput:.2f}x")
        )
        print(
            f"{name:<22}{figures.throughput:>10.0f}{figures.p50_ms:>10.2f}"
            f"{figures.p99_ms:>10.2f}{ratio:>14}"
        )


if __name__ == "__main__":
    main()
