"""Theazo's benchmark: start real servers, measure, print a table (docs/benchmarks.md).

Run from the repository root, with the project installed::

    python bench/run.py [--database URL] [--tasks N] [--concurrency N] [--json PATH]
                        [--only NAME[,NAME…]] [--keep] [--claim-finished K[,K…]] […]

Each measurement is one function, registered in ``MEASUREMENTS``; it returns a ``Result``.
The core figures are measured here; the others in ``delivery.py`` (webhooks), ``cluster.py``
(worker nodes on PostgreSQL), ``claims.py`` (the store's claim, in-process), ``submits.py``
(concurrent and batch submits) and ``waits.py`` (thousands of long polls); what they share
(nodes, databases, percentiles, SDK loops) is in ``common.py``. Every measurement that needs a
server starts its own ``theazo serve`` on a free port with a fresh database (a new SQLite
file, or a new schema of the PostgreSQL database given with ``--database``), so no measurement
inherits another's tasks or load, and stops it before returning. HTTP traffic goes through the
real SDK (``AsyncTheazo``), except the raw long polls of ``wait_memory`` and ``waits_10k``.

Clocks: see ``common.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…` as a script too

from tests.support.sandboxes import host_pid

from bench import claims, cluster, delivery, events, starts, submits, waits
from bench.common import (
    AGENTS_MODULE,
    REPO,
    SESSIONS,
    SUBMITTERS,
    WARMUP,
    Bench,
    Figure,
    Result,
    Sizes,
    Target,
    cpu_seconds,
    open_sessions,
    outcome_notes,
    p50_p99,
    percentile,
    poll_fd,
    read_bytes,
    server_span,
    submit_concurrently,
    timestamp,
)
from theazo.core import defaults
from theazo.sandbox.pool import SandboxPool, SandboxSettings
from theazo.sdk import AsyncSession, Task

# How much the core measurements do.
TASKS = 2_000  # submit_rate and throughput, unless --tasks says otherwise
THROUGHPUT_RUNNERS = 16  # concurrent closed-loop clients
DISPATCH_SAMPLES = 300
WAKEUP_SAMPLES = 200
WAKEUP_TASK_SECONDS = 0.05  # long enough that the wait is held before the task ends
WAKEUP_PID_SAMPLES = 100
WAKEUP_PID_TASK_SECONDS = 0.2
CANCEL_SAMPLES = 100
CANCEL_TASK_SECONDS = 60.0
SANDBOX_SAMPLES = 300
INTERPRETER_SAMPLES = 20
PID_POLL_SECONDS = 0.005  # how often `get` is polled for the sandbox's pid


# --- timing sandbox processes -----------------------------------------------------------------
def block_until_exit(pidfd: int, polling: threading.Event) -> float:
    """In a thread: block until the process of ``pidfd`` has exited; return that moment."""
    polling.set()
    poll_fd(pidfd, None)
    return time.perf_counter()


class ExitWatcher:
    """Times the death of sandbox processes exactly: a thread blocked on a pidfd."""

    def __init__(self) -> None:
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="exit-watcher")

    def close(self) -> None:
        """Do not wait: a thread still watching a live sandbox ends when the server stops."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def watch(self, pid: int) -> asyncio.Future[float] | None:
        """Start watching ``pid``; the future gives the ``perf_counter`` moment of its exit.

        None if the process is already gone (or exited and is not reaped yet): no exact time.
        """
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        if poll_fd(pidfd, 0):
            os.close(pidfd)
            return None
        polling = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, block_until_exit, pidfd, polling)
        future.add_done_callback(lambda _: os.close(pidfd))
        await loop.run_in_executor(None, polling.wait)
        return future


async def sandbox_pid(session: AsyncSession, task_id: str, timeout: float = 30.0) -> int | None:
    """Poll until the task's sandbox can be found from the host (the `sleep` agent names its
    process after its task once it runs: inside its PID namespace it cannot know its host pid);
    None if the task ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = await session.tasks.get(task_id)
        if task.message and (pid := host_pid(task_id)) is not None:
            return pid
        if task.is_terminal:
            return None
        await asyncio.sleep(PID_POLL_SECONDS)
    raise RuntimeError(f"task {task_id} reported no pid within {timeout}s")


# --- measurements -----------------------------------------------------------------------------
def measure_submit_rate(bench: Bench) -> Result:
    """Tasks accepted per second by ``POST /v1/sessions/:sid/tasks``.

    Server: ``--no-workers`` (the API only; the tasks stay queued, so no sandbox competes
    for the CPU). Client: SUBMITTERS concurrent submit loops over SESSIONS sessions, one
    ``noop`` task per request, ``--tasks`` in all. From just before the first request is sent
    to the moment the last 202 has been parsed by the SDK.
    """
    result = Result("submit_rate")
    with bench.server("submit_rate", workers=False) as server:

        async def run() -> None:
            async with server.client() as client:
                sessions = await open_sessions(client, SESSIONS)
                await sessions[0].tasks.submit("noop")  # one warm-up request
                server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
                start = time.perf_counter()
                tasks = await submit_concurrently(sessions, bench.count(TASKS), "noop")
                elapsed = time.perf_counter() - start
                server_busy = (cpu_seconds(server.pid) - server_cpu) / elapsed
                client_busy = (time.process_time() - client_cpu) / elapsed
            queued = sum(t.status == "queued" for t in tasks)
            result.figures.append(Figure("accepted", len(tasks) / elapsed, "tasks/s"))
            result.figures.append(
                Figure("server CPU per submit", server_busy * elapsed / len(tasks) * 1000, "ms")
            )
            result.notes.append(
                f"{len(tasks)} submits in {elapsed:.2f} s by {SUBMITTERS} concurrent submitters "
                f"over {SESSIONS} sessions; {queued} answered queued; CPU during the run: "
                f"server {server_busy:.0%} of a core, benchmark client {client_busy:.0%} (when "
                "the client is near 100%, it is the bottleneck, not the server)"
            )

        asyncio.run(run())
    return result


def measure_throughput(bench: Bench) -> Result:
    """End-to-end ``noop`` throughput: tasks/s from submit to completion.

    Server with workers (``--concurrency``). RUNNERS concurrent loops over SESSIONS sessions
    each run ``noop`` tasks one after another with the SDK's ``session.run`` (a submit that the
    server holds until the task ends: ``Prefer: wait``), until ``--tasks`` have run: the client
    waits on each result. From just before the first submit is sent to the moment the last
    result has arrived (client clock).
    """
    result = Result("throughput")
    with bench.server("throughput") as server:

        async def run() -> None:
            async with server.client(THROUGHPUT_RUNNERS + 8) as client:
                sessions = await open_sessions(client, SESSIONS)
                await sessions[0].run("noop")  # warm-up: the first fork, the first writes
                left = bench.count(TASKS)
                answers: list[tuple[Task, float]] = []

                async def runner(session: AsyncSession) -> None:
                    nonlocal left
                    while left > 0:
                        left -= 1
                        done = await session.run("noop")
                        answers.append((done, time.perf_counter()))

                zygote = server.zygote_pid() or server.pid
                server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
                sandbox_cpu = cpu_seconds(zygote, reaped_children=True)
                start = time.perf_counter()
                await asyncio.gather(
                    *(runner(sessions[i % len(sessions)]) for i in range(THROUGHPUT_RUNNERS))
                )
                end = max(moment for _, moment in answers)
                server_busy = (cpu_seconds(server.pid) - server_cpu) / (end - start)
                client_busy = (time.process_time() - client_cpu) / (end - start)
                sandbox_busy = (cpu_seconds(zygote, reaped_children=True) - sandbox_cpu) / (
                    end - start
                )
            tasks = [task for task, _ in answers]
            result.figures.append(Figure("completed", len(tasks) / (end - start), "tasks/s"))
            result.notes.append(
                f"{len(tasks)} noop tasks, concurrency {bench.concurrency}, "
                f"{THROUGHPUT_RUNNERS} closed-loop runners: last result after "
                f"{end - start:.2f} s; by server "
                f"timestamps (first createdAt to last completedAt) "
                f"{len(tasks) / server_span(tasks):.1f} tasks/s; CPU: server process "
                f"{server_busy:.0%} of a core, zygote and sandboxes {sandbox_busy:.0%}, "
                f"benchmark client {client_busy:.0%}"
            )
            result.notes += outcome_notes(tasks)

        asyncio.run(run())
    return result


def measure_dispatch_latency(bench: Bench) -> Result:
    """Submit → running: ``startedAt - createdAt`` of tasks submitted one at a time.

    Fresh idle server. WARMUP then DISPATCH_SAMPLES ``noop`` tasks, each submitted only after
    the previous one completed (SDK ``wait``). Both moments are the server's own timestamps
    (createdAt: the submit is recorded; startedAt: the task is claimed to run), so this is the
    server's queue-to-claim time, without HTTP; the wire format has millisecond resolution.
    """
    result = Result("dispatch_latency")
    with bench.server("dispatch_latency") as server:

        async def run() -> None:
            async with server.client() as client:
                (session,) = await open_sessions(client, 1)
                samples, tasks = [], []
                for number in range(WARMUP + DISPATCH_SAMPLES):
                    task = await session.tasks.submit("noop")
                    done = await session.tasks.wait(task.task_id)
                    if number < WARMUP:
                        continue
                    tasks.append(done)
                    started = timestamp(done.started_at, "startedAt", done)
                    samples.append(started - timestamp(done.created_at, "createdAt", done))
            result.figures += p50_p99("submit→running", samples)
            result.figures.append(
                Figure("submit→running mean", statistics.fmean(samples) * 1000, "ms")
            )
            result.notes.append(
                f"{len(samples)} samples (after {WARMUP} warm-up tasks); server timestamps, "
                "1 ms resolution (each truncated to the millisecond, so each sample is a whole "
                "number of ms, ±1 ms; the mean is the better estimate)"
            )
            result.notes += outcome_notes(tasks)

        asyncio.run(run())
    return result


WAKEUP_TARGET = Target(5.0, "< 5 ms")


def measure_wakeup_latency(bench: Bench) -> Result:
    """Task ends → its waiter answered, two ways, on one fresh server, tasks one at a time.

    1. By timestamps: WAKEUP_SAMPLES ``sleep`` tasks of WAKEUP_TASK_SECONDS, each with an SDK
       ``wait`` sent right after the submit (so held before the task ends). From the task's
       ``completedAt`` (server clock, truncated to the millisecond: up to 1 ms too early) to
       the moment the client has parsed the wait's answer (``time.time()``).
    2. By the process: WAKEUP_PID_SAMPLES ``sleep`` tasks of WAKEUP_PID_TASK_SECONDS; a wait is
       sent right after the submit, the sandbox's pid is read from the task's message and
       watched with a pidfd. From the moment the sandbox process exits (a thread blocked in
       poll() on the pidfd) to the moment the client has parsed the wait's answer (both
       ``perf_counter``). This includes the zygote reaping the process and removing its
       working directory, and the server recording the end.
    """
    result = Result("wakeup_latency")
    with bench.server("wakeup_latency") as server:

        async def run() -> None:
            watcher = ExitWatcher()
            try:
                async with server.client() as client:
                    (session,) = await open_sessions(client, 1)
                    await by_timestamps(session)
                    await by_process_exit(session, watcher)
            finally:
                watcher.close()

        async def by_timestamps(session: AsyncSession) -> None:
            samples, tasks, not_held = [], [], 0
            for number in range(WARMUP + WAKEUP_SAMPLES):
                task = await session.tasks.submit("sleep", {"seconds": WAKEUP_TASK_SECONDS})
                sent = time.time()
                done = await session.tasks.wait(task.task_id)
                answered = time.time()
                if number < WARMUP:
                    continue
                tasks.append(done)
                completed = timestamp(done.completed_at, "completedAt", done)
                if completed < sent + 0.010:  # the wait may not have been held: not a sample
                    not_held += 1
                    continue
                samples.append(answered - completed)
            result.figures += p50_p99("completedAt→answer", samples, WAKEUP_TARGET)
            result.notes.append(
                f"completedAt→answer: {len(samples)} samples of {WAKEUP_TASK_SECONDS}s sleep "
                f"tasks; completedAt has 1 ms resolution (truncated, so the figure is 0-1 ms "
                f"high); {not_held} samples dropped because the task ended <10 ms after the "
                "wait was sent"
            )
            result.notes += outcome_notes(tasks)

        async def by_process_exit(session: AsyncSession, watcher: ExitWatcher) -> None:
            samples, tasks, missed = [], [], 0

            async def timed_wait(task_id: str) -> tuple[Task, float]:
                done = await session.tasks.wait(task_id)
                return done, time.perf_counter()

            for _ in range(WAKEUP_PID_SAMPLES):
                task = await session.tasks.submit("sleep", {"seconds": WAKEUP_PID_TASK_SECONDS})
                waiting = asyncio.create_task(timed_wait(task.task_id))
                pid = await sandbox_pid(session, task.task_id)
                exited = None if pid is None else await watcher.watch(pid)
                if exited is None:
                    missed += 1
                    await waiting
                    continue
                exit_moment = await exited
                done, answered = await waiting
                tasks.append(done)
                samples.append(answered - exit_moment)
            result.figures += p50_p99("process exit→answer", samples, WAKEUP_TARGET)
            result.notes.append(
                f"process exit→answer: {len(samples)} samples of {WAKEUP_PID_TASK_SECONDS}s "
                f"sleep tasks, exit seen on a pidfd; {missed} tasks missed (process gone before "
                "it was watched)"
            )
            result.notes += outcome_notes(tasks)

        asyncio.run(run())
    return result


def measure_cancel_latency(bench: Bench) -> Result:
    """Cancel call → sandbox process gone.

    Fresh server; CANCEL_SAMPLES ``sleep`` tasks of CANCEL_TASK_SECONDS, one at a time. Once a
    task reports its pid, the pid is watched with a pidfd (a thread blocked in poll()); then
    from just before ``tasks.cancel()`` is called to the moment the process has exited
    (``perf_counter``, exact). Also reported: the cancel call's own round trip.
    """
    result = Result("cancel_latency")
    with bench.server("cancel_latency") as server:

        async def run() -> None:
            watcher = ExitWatcher()
            gone, calls, tasks, missed, dead_before_answer = [], [], [], 0, 0
            try:
                async with server.client() as client:
                    (session,) = await open_sessions(client, 1)
                    for _ in range(CANCEL_SAMPLES):
                        task = await session.tasks.submit("sleep", {"seconds": CANCEL_TASK_SECONDS})
                        pid = await sandbox_pid(session, task.task_id)
                        exited = None if pid is None else await watcher.watch(pid)
                        if exited is None:
                            missed += 1
                            tasks.append(await session.tasks.cancel(task.task_id))
                            continue
                        start = time.perf_counter()
                        cancelled = await session.tasks.cancel(task.task_id)
                        answered = time.perf_counter()
                        exit_moment = await exited
                        tasks.append(cancelled)
                        gone.append(exit_moment - start)
                        calls.append(answered - start)
                        dead_before_answer += exit_moment <= answered
            finally:
                watcher.close()
            result.figures += p50_p99(
                "cancel→process gone", gone, Target(250.0, "< 250 ms"), p99_target=True
            )
            result.figures += p50_p99("cancel call round trip", calls)
            result.notes.append(
                f"{len(gone)} samples; the process was gone before the cancel call answered in "
                f"{dead_before_answer} of them; {missed} tasks missed (no pid to watch)"
            )
            result.notes += outcome_notes(tasks, expected="cancelled")

        asyncio.run(run())
    return result


SANDBOX_TARGET = Target(5.0, "< 5 ms")


def measure_sandbox_start(bench: Bench) -> Result:
    """Per-task sandbox start, in-process with ``SandboxPool`` (no server, no HTTP).

    One pool (one zygote loading ``bench.agents``), WARMUP then SANDBOX_SAMPLES ``noop``
    sandboxes, one at a time. ``spawn()``: from the call to its return (the task's channel
    made and handed to the zygote, which gives it to a sandbox it forked ahead; the pid comes
    later, and nothing waits for it). Round trip: from the same call until the agent's result has
    been read and ``sandbox.exited`` resolved (process reaped, working directory removed).
    For comparison: ``python -c pass`` run with subprocess, INTERPRETER_SAMPLES times, from
    the call to its return (a fresh interpreter, what a fork-per-task design avoids).
    """
    result = Result("sandbox_start")

    async def run() -> tuple[list[float], list[float], list[str]]:
        pool = SandboxPool(
            SandboxSettings(agent_modules=(AGENTS_MODULE,), python_path=(str(REPO),))
        )
        spawns, round_trips, problems = [], [], []
        await pool.start()
        try:
            for number in range(WARMUP + SANDBOX_SAMPLES):
                init = {
                    "task_id": f"task_bench{number}", "session_id": "sess_bench",
                    "user_id": "bench", "agent": "noop", "attempt": 1, "metadata": {},
                    "input": None,
                }  # fmt: skip
                start = time.perf_counter()
                sandbox = await pool.spawn(init)
                spawned = time.perf_counter()
                limit = defaults.MAX_OUTPUT_BYTES + defaults.FRAME_OVERHEAD_BYTES
                answers = [m async for m in sandbox.messages(limit)]
                status = await sandbox.exited
                ended = time.perf_counter()
                sandbox.close_channel()
                if status.code != 0 or not any(m.get("t") == "result" for m in answers):
                    problems.append(f"sandbox {number}: exit {status.code}, messages {answers}")
                if number >= WARMUP:
                    spawns.append(spawned - start)
                    round_trips.append(ended - start)
        finally:
            await pool.close()
        return spawns, round_trips, problems

    spawns, round_trips, problems = asyncio.run(run())
    interpreter = []
    for _ in range(INTERPRETER_SAMPLES):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        interpreter.append(time.perf_counter() - start)
    result.figures += [
        Figure("spawn() p50", percentile(spawns, 50) * 1000, "ms", SANDBOX_TARGET),
        Figure("spawn() p99", percentile(spawns, 99) * 1000, "ms", SANDBOX_TARGET),
        *p50_p99("noop round trip", round_trips),
        Figure("python -c pass p50", percentile(interpreter, 50) * 1000, "ms"),
    ]
    result.notes.append(
        f"{len(spawns)} sandboxes (after {WARMUP} warm-up); {INTERPRETER_SAMPLES} interpreters"
    )
    result.notes += [f"UNEXPECTED: {p}" for p in problems[:5]]
    return result


Measurement = Callable[[Bench], Result]
MEASUREMENTS: dict[str, Measurement] = {
    "submit_rate": measure_submit_rate,
    "throughput": measure_throughput,
    "dispatch_latency": measure_dispatch_latency,
    "wakeup_latency": measure_wakeup_latency,
    "cancel_latency": measure_cancel_latency,
    "sandbox_start": measure_sandbox_start,
    "wait_memory": waits.measure_wait_memory,
    "delivery": delivery.measure_delivery,
    "cluster": cluster.measure_cluster,
    "claim_scale": claims.measure_claim_scale,
    "fair_claims": claims.measure_fair_claims,
    "submit_concurrent": submits.measure_submit_concurrent,
    "submit_batch": submits.measure_submit_batch,
    "waits_10k": waits.measure_waits_10k,
    "event_latency": events.measure_event_latency,
    "stream_memory": events.measure_stream_memory,
    "start_rate": starts.measure_start_rate,
}
# The task count of each measurement that submits a number of tasks, unless --tasks is given.
DEFAULT_TASKS = {
    "submit_rate": TASKS,
    "throughput": TASKS,
    "delivery": delivery.TASKS,
    "cluster": cluster.TASKS,
    "submit_concurrent": submits.CONCURRENT_TASKS,
    "submit_batch": submits.BATCH_TASKS,
}


# --- running and printing ---------------------------------------------------------------------
def run_one(bench: Bench, name: str) -> Result:
    """Run one measurement; a failure becomes a Result with its traceback, never a crash."""
    bench.server_logs = []
    start = time.perf_counter()
    try:
        result = MEASUREMENTS[name](bench)
    except Exception:
        result = Result(name, error=traceback.format_exc())
    result.seconds = time.perf_counter() - start
    result.notes += bench.server_logs
    return result


def machine() -> dict[str, Any]:
    model = next(
        (line.split(":", 1)[1].strip() for line in read_bytes("/proc/cpuinfo").decode().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    )  # fmt: skip
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_1m": os.getloadavg()[0],  # other work on the machine when the run began
    }


def format_value(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def print_table(results: Sequence[Result]) -> None:
    rows = [("measurement", "figure", "value", "unit", "target", "met")]
    for result in results:
        if result.error is not None:
            rows.append((result.name, "FAILED", "", "", "", ""))
        for figure in result.figures:
            met = "" if figure.met is None else ("yes" if figure.met else "NO")
            target = "" if figure.target is None else figure.target.text
            rows.append(
                (result.name, figure.label, format_value(figure.value), figure.unit, target, met)
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2}
    for index, row in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for result in results:
        for note in result.notes:
            print(f"[{result.name}] {note}")
        if result.error is not None:
            print(f"[{result.name}] FAILED:\n{result.error}")


def raise_file_limit(connections: int) -> None:
    """Enough descriptors for ``connections`` open at once, with room to spare, here and in
    the servers (they inherit it); as many as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections * 2 + 1000
    if soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE,
            (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard),
        )


def size_option(default: Any) -> Callable[[str], Any]:
    """How a ``Sizes`` field is read from the command line: ``1000,1000000`` for a tuple."""
    if isinstance(default, tuple):
        return lambda text: tuple(int(part) for part in text.split(",") if part.strip())
    return type(default)


def metavar(default: Any) -> str:
    return "N[,N…]" if isinstance(default, tuple) else "S" if isinstance(default, float) else "N"


def show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", help="sqlite:///… or postgresql://… (default: SQLite files in a temp dir)"
    )
    own = ", ".join(f"{name} {count:,}" for name, count in DEFAULT_TASKS.items())
    parser.add_argument(
        "--tasks",
        type=int,
        help=f"tasks submitted by each measurement that submits a number of them (default: its "
        f"own: {own})",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="the servers' --concurrency")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(MEASUREMENTS)}")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    sizes = parser.add_argument_group(
        "sizes", "how much the other measurements do; the defaults are the full sizes"
    )
    for size in dataclasses.fields(Sizes):
        sizes.add_argument(
            f"--{size.name.replace('_', '-')}",
            type=size_option(size.default),
            default=size.default,
            metavar=metavar(size.default),
            help=f"{size.metadata['help']} (default: {show(size.default)})",
        )
    args = parser.parse_args(argv)
    args.sizes = Sizes(
        **{size.name: getattr(args, size.name) for size in dataclasses.fields(Sizes)}
    )
    args.names = (
        list(MEASUREMENTS)
        if not args.only
        else [n.strip() for n in args.only.split(",") if n.strip()]
    )
    unknown = [n for n in args.names if n not in MEASUREMENTS]
    if unknown:
        parser.error(f"--only: unknown {unknown}; known: {', '.join(MEASUREMENTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raise_file_limit(max(waits.OPEN_WAITS, args.sizes.waits))
    workdir = Path(tempfile.mkdtemp(prefix="theazo-bench-"))
    bench = Bench(args.database, args.tasks, args.concurrency, workdir, args.sizes)
    info = machine()
    database = (
        "sqlite (fresh temp files)" if args.database is None else args.database.split("://")[0]
    )
    sizes = dataclasses.asdict(args.sizes)
    print(
        f"Theazo benchmark: {info['cpus']} CPUs ({info['cpu_model']}), Linux {info['kernel']}, "
        f"Python {info['python']}, load average {info['load_average_1m']:.2f}, database "
        f"{database}, --concurrency {args.concurrency}, --tasks {args.tasks or 'default'}\n"
        f"sizes: {' '.join(f'{name}={show(value)}' for name, value in sizes.items())}\n"
    )
    results = []
    try:
        for name in args.names:
            print(f"running {name} …", flush=True)
            results.append(run_one(bench, name))
    finally:
        if args.keep:
            print(f"server logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print_table(results)
    if args.json is not None:
        document = {
            "machine": info,
            "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
            "database": database,
            "concurrency": args.concurrency,
            "tasks": args.tasks,
            "sizes": sizes,
            "results": [r.as_json() for r in results],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
