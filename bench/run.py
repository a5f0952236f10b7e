"""Theazo's benchmark: start real servers, measure, print a table (docs/benchmarks.md).

Run from the repository root, with the project installed::

    python bench/run.py [--database URL] [--tasks N] [--concurrency N] [--json PATH]
                        [--only NAME[,NAME…]] [--keep]

Each measurement is one function below, registered in ``MEASUREMENTS``; it returns a
``Result``. Every measurement that needs a server starts its own ``theazo serve`` on a free
port with a fresh database (a new SQLite file, or a new schema of the PostgreSQL database
given with ``--database``), so no measurement inherits another's tasks or load, and stops it
before returning. All HTTP traffic goes through the real SDK (``AsyncTheazo``), except the
5,000 raw long polls of ``wait_memory``.

Clocks: intervals measured here use ``time.perf_counter``; figures that compare a client
moment with a server timestamp use ``time.time`` (the same machine, the same wall clock).
Server timestamps have millisecond resolution on the wire (truncated, not rounded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from theazo import AsyncTheazo
from theazo.core import defaults, ids
from theazo.sandbox.pool import SandboxPool, SandboxSettings
from theazo.sdk import AsyncSession, Task

REPO = Path(__file__).resolve().parents[1]
AGENTS_MODULE = "bench.agents"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0

# How much each measurement does (--tasks sets submit_rate's and throughput's count).
SUBMITTERS = 32  # concurrent submit loops in the client
SESSIONS = 4  # sessions (end users) the submits are spread over
THROUGHPUT_WAITERS = 512  # long polls open at once while waiting for N tasks
WARMUP = 10  # tasks run first and not counted, in each latency measurement
DISPATCH_SAMPLES = 300
WAKEUP_SAMPLES = 200
WAKEUP_TASK_SECONDS = 0.05  # long enough that the wait is held before the task ends
WAKEUP_PID_SAMPLES = 100
WAKEUP_PID_TASK_SECONDS = 0.2
CANCEL_SAMPLES = 100
CANCEL_TASK_SECONDS = 60.0
SANDBOX_SAMPLES = 300
INTERPRETER_SAMPLES = 20
OPEN_WAITS = 5_000
WAIT_CLIENTS = 50  # httpx clients the open waits are spread over
WAIT_HOLD = "60s"  # the server's default cap on one long poll
WAIT_SETTLE_SECONDS = 2.0
PID_POLL_SECONDS = 0.005  # how often `get` is polled for the sandbox's pid


# --- results ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """A goal from the issue: the figure must be below ``limit`` (in the figure's unit)."""

    limit: float
    text: str

    def met(self, value: float) -> bool:
        return value < self.limit


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: float
    unit: str
    target: Target | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)


@dataclass(slots=True)
class Result:
    name: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0  # how long the measurement took, server start and stop included

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "figures": [
                {
                    "label": f.label,
                    "value": f.value,
                    "unit": f.unit,
                    "target": None if f.target is None else f.target.text,
                    "met": f.met,
                }
                for f in self.figures
            ],
            "notes": self.notes,
            "error": self.error,
            "seconds": round(self.seconds, 1),
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated linearly between the nearest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def p50_p99(
    label: str, seconds: Sequence[float], target: Target | None = None, *, p99_target: bool = False
) -> list[Figure]:
    """Two figures in milliseconds; ``target`` applies to p50, or to p99 if ``p99_target``."""
    return [
        Figure(
            f"{label} p50", percentile(seconds, 50) * 1000, "ms", None if p99_target else target
        ),
        Figure(
            f"{label} p99", percentile(seconds, 99) * 1000, "ms", target if p99_target else None
        ),
    ]


# --- databases and servers --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def fresh_database(base: str | None, workdir: Path, name: str) -> Iterator[str]:
    """A database URL no server has used yet, cleaned up on the way out.

    No ``base``: a SQLite file in ``workdir``. ``postgresql://``: a new schema in that database
    (through ``options=-csearch_path=…``), dropped afterwards. ``sqlite:///path``: a new file
    next to ``path``, removed afterwards.
    """
    suffix = f"{name}_{uuid.uuid4().hex[:8]}"
    if base is None:
        yield f"sqlite:///{workdir / f'{suffix}.db'}"
    elif base.startswith(("postgresql://", "postgres://")):
        import psycopg  # a dependency of the server's PostgreSQL store

        schema = f"theazo_bench_{suffix}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in base else "?"
        try:
            yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    elif base.startswith("sqlite:///"):
        path = Path(base.removeprefix("sqlite:///"))
        fresh = path.with_name(f"{path.stem}-{suffix}{path.suffix or '.db'}")
        try:
            yield f"sqlite:///{fresh}"
        finally:
            for extra in ("", "-wal", "-shm", "-journal"):
                Path(f"{fresh}{extra}").unlink(missing_ok=True)
    else:
        raise SystemExit(f"--database: expected sqlite:///… or postgresql://…, not {base!r}")


@dataclass(slots=True)
class Server:
    """A ``theazo serve`` subprocess started by the benchmark."""

    process: subprocess.Popen[bytes]
    port: int
    api_key: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @contextlib.asynccontextmanager
    async def client(self, max_connections: int = 256) -> AsyncIterator[AsyncTheazo]:
        """An SDK client with enough kept-alive connections for the concurrency used here."""
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        async with httpx.AsyncClient(limits=limits) as http:
            yield AsyncTheazo(api_key=self.api_key, base_url=self.base_url, http_client=http)

    def zygote_pid(self) -> int | None:
        """The server's child running ``theazo.sandbox.zygote``."""
        for pid in children(self.pid):
            if b"theazo.sandbox.zygote" in read_bytes(f"/proc/{pid}/cmdline"):
                return pid
        return None

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the server did not answer /healthz in time:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there; then make sure its zygote is gone."""
        zygote = self.zygote_pid() if self.process.poll() is None else None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if zygote is not None and not wait_gone(zygote, 5.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(zygote, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self, most: int = 8) -> list[str]:
        """What the server logged (at --log-level warning) beyond its start-up banner: each
        distinct unindented line with its count (tracebacks shortened to their headline and
        last line), at most ``most`` of them."""
        if not self.log_path.exists():
            return []
        lines = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if line.strip() and "Theazo is serving on" not in line
        ]
        headlines = Counter(line for line in lines if not line.startswith((" ", "\t")))
        summary = [f"{count} x {line[:300]}" for line, count in headlines.most_common(most)]
        if len(headlines) > most:
            summary.append(f"… and {len(headlines) - most} other distinct lines")
        if summary:
            summary.insert(0, f"{len(lines)} lines in {self.log_path.name}:")
        return summary


@dataclass(slots=True)
class Bench:
    """The run's settings and its way of starting servers."""

    database: str | None
    tasks: int
    concurrency: int
    workdir: Path
    server_logs: list[str] = field(default_factory=list)  # problems logged by the last servers

    @contextlib.contextmanager
    def server(self, name: str, *, workers: bool = True) -> Iterator[Server]:
        """A fresh ``theazo serve`` on a fresh database, stopped (and its database dropped)
        on the way out; what it logged is kept in ``server_logs``."""
        with fresh_database(self.database, self.workdir, name) as url:
            port = free_port()
            api_key = ids.new_api_key(live=False)
            sandboxes = self.workdir / f"sandboxes-{name}-{port}"
            sandboxes.mkdir()
            command = [
                sys.executable, "-m", "theazo", "serve",
                "--port", str(port),
                "--database", url,
                "--agents", AGENTS_MODULE,
                "--api-key", api_key,
                "--concurrency", str(self.concurrency),
                "--sandbox-root", str(sandboxes),
                "--shutdown-grace", "2s",
                "--log-level", "warning",
            ]  # fmt: skip
            if not workers:
                command.append("--no-workers")
            env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
            log_path = self.workdir / f"server-{name}-{port}.log"
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C of the benchmark reaches us, not it
                )  # fmt: skip
            server = Server(process, port, api_key, log_path)
            try:
                server.wait_until_healthy()
                yield server
            finally:
                server.stop()
                self.server_logs += [f"server log: {line}" for line in server.log_problems()]


# --- processes ----------------------------------------------------------------------------------
def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b""


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_bytes(f"/proc/{entry}/stat")
            fields = stat.rsplit(b")", 1)[-1].split()
            if len(fields) > 1 and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def status_kb(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status, e.g. VmRSS."""
    for line in read_bytes(f"/proc/{pid}/status").decode().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User plus system CPU time of a process so far; with ``reaped_children``, plus that of
    the children it has reaped (for the zygote: every sandbox that has ended)."""
    fields = read_bytes(f"/proc/{pid}/stat").rsplit(b")", 1)[-1].split()
    ticks = sum(int(value) for value in fields[11 : 15 if reaped_children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_gone(pid: int, timeout: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return _poll(fd, timeout)
    finally:
        os.close(fd)


def _poll(fd: int, timeout: float | None) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else int(timeout * 1000)))


def block_until_exit(pidfd: int, polling: threading.Event) -> float:
    """In a thread: block until the process of ``pidfd`` has exited; return that moment."""
    polling.set()
    _poll(pidfd, None)
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
        if _poll(pidfd, 0):
            os.close(pidfd)
            return None
        polling = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, block_until_exit, pidfd, polling)
        future.add_done_callback(lambda _: os.close(pidfd))
        await loop.run_in_executor(None, polling.wait)
        return future


async def sandbox_pid(session: AsyncSession, task_id: str, timeout: float = 30.0) -> int | None:
    """Poll ``get`` until the task's message carries ``pid=…`` (the `sleep` agent's report);
    None if the task ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = await session.tasks.get(task_id)
        if task.message and task.message.startswith("pid="):
            return int(task.message.split()[0].removeprefix("pid="))
        if task.is_terminal:
            return None
        await asyncio.sleep(PID_POLL_SECONDS)
    raise RuntimeError(f"task {task_id} reported no pid within {timeout}s")


# --- helpers shared by measurements -----------------------------------------------------------
async def open_sessions(client: AsyncTheazo, count: int) -> list[AsyncSession]:
    return [await client.sessions.for_user(f"bench_user_{i}") for i in range(count)]


async def submit_concurrently(
    sessions: Sequence[AsyncSession],
    count: int,
    agent: str,
    input: Any = None,
    on_submitted: Callable[[AsyncSession, Task], None] | None = None,
) -> list[Task]:
    """Submit ``count`` tasks from SUBMITTERS concurrent loops, round-robin over ``sessions``."""
    numbers = iter(range(count))
    submitted: list[Task | None] = [None] * count

    async def submitter() -> None:
        for number in numbers:  # one iterator shared by all loops: each number taken once
            session = sessions[number % len(sessions)]
            task = await session.tasks.submit(agent, input)
            submitted[number] = task
            if on_submitted is not None:
                on_submitted(session, task)

    await asyncio.gather(*(submitter() for _ in range(SUBMITTERS)))
    return [task for task in submitted if task is not None]


def outcome_notes(tasks: Sequence[Task], expected: str = "completed") -> list[str]:
    statuses = Counter(t.status if t.error is None else f"{t.status}:{t.error.code}" for t in tasks)
    unexpected = {status: n for status, n in statuses.items() if status != expected}
    if not unexpected:
        return []
    examples = [f"{t.task_id}: {t.error}" for t in tasks if t.status != expected][:3]
    return [f"UNEXPECTED: {unexpected} of {len(tasks)} tasks were not {expected}; e.g. {examples}"]


def timestamp(moment: datetime | None, what: str, task: Task) -> float:
    if moment is None:
        raise RuntimeError(f"task {task.task_id} ({task.status}) has no {what}")
    return moment.timestamp()


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
                tasks = await submit_concurrently(sessions, bench.tasks, "noop")
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

    Server with workers (``--concurrency``). SUBMITTERS concurrent loops submit ``--tasks``
    ``noop`` tasks over SESSIONS sessions; as soon as a submit answers, a long poll (SDK
    ``wait``) is opened for it, at most THROUGHPUT_WAITERS at once. From just before the first
    submit is sent to the moment the last wait has answered (client clock).
    """
    result = Result("throughput")
    with bench.server("throughput") as server:

        async def run() -> None:
            async with server.client(THROUGHPUT_WAITERS + SUBMITTERS + 8) as client:
                sessions = await open_sessions(client, SESSIONS)
                await sessions[0].run("noop")  # warm-up: the first fork, the first writes
                waiters = asyncio.Semaphore(THROUGHPUT_WAITERS)
                waits: list[asyncio.Task[tuple[Task, float]]] = []

                async def wait(session: AsyncSession, task_id: str) -> tuple[Task, float]:
                    async with waiters:
                        done = await session.tasks.wait(task_id)
                    return done, time.perf_counter()

                def on_submitted(session: AsyncSession, task: Task) -> None:
                    waits.append(asyncio.create_task(wait(session, task.task_id)))

                zygote = server.zygote_pid() or server.pid
                server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
                sandbox_cpu = cpu_seconds(zygote, reaped_children=True)
                start = time.perf_counter()
                await submit_concurrently(sessions, bench.tasks, "noop", None, on_submitted)
                submitted = time.perf_counter()
                answers = await asyncio.gather(*waits)
                end = max(moment for _, moment in answers)
                server_busy = (cpu_seconds(server.pid) - server_cpu) / (end - start)
                client_busy = (time.process_time() - client_cpu) / (end - start)
                sandbox_busy = (cpu_seconds(zygote, reaped_children=True) - sandbox_cpu) / (
                    end - start
                )
            tasks = [task for task, _ in answers]
            result.figures.append(Figure("completed", len(tasks) / (end - start), "tasks/s"))
            first = min(timestamp(t.created_at, "createdAt", t) for t in tasks)
            last = max(timestamp(t.completed_at, "completedAt", t) for t in tasks)
            result.notes.append(
                f"{len(tasks)} noop tasks, concurrency {bench.concurrency}: all submitted after "
                f"{submitted - start:.2f} s, last answer after {end - start:.2f} s; by server "
                f"timestamps (first createdAt to last completedAt) "
                f"{len(tasks) / (last - first):.1f} tasks/s; CPU: server process "
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
    sandboxes, one at a time. ``spawn()``: from the call to its return (the fork request sent
    to the zygote, its pid known). Round trip: from the same call until the agent's result has
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
                answers = [m async for m in sandbox.messages(defaults.MAX_FRAME_BYTES)]
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


def measure_wait_memory(bench: Bench) -> Result:
    """Resident memory of the server holding OPEN_WAITS long polls.

    Server with ``--no-workers`` (so the tasks stay queued and the waits stay open). Submit
    OPEN_WAITS ``noop`` tasks (batches of 1,000) and read the server's VmRSS (baseline). Then
    open one raw ``GET …/wait?timeout=60s`` per task, spread over WAIT_CLIENTS
    httpx.AsyncClients (one client with thousands of connections spends most of its time in
    its own pool bookkeeping). Once the kernel shows that many established connections to the
    server's port, wait WAIT_SETTLE_SECONDS more and read VmRSS of the server and of its
    zygote (its child running ``theazo.sandbox.zygote``) from /proc/<pid>/status. Then the
    waits are cancelled (the client closes its connections) and, WAIT_SETTLE_SECONDS later,
    the server's sockets still open on that port are counted.
    """
    result = Result("wait_memory")
    with bench.server("wait_memory", workers=False) as server:

        async def run() -> None:
            async with server.client() as client:
                sessions = await open_sessions(client, math.ceil(OPEN_WAITS / 1000))
                tasks: list[Task] = []
                for number, session in enumerate(sessions):
                    size = min(1000, OPEN_WAITS - number * 1000)
                    tasks += await session.tasks.submit_batch([{"agent": "noop"}] * size)
            baseline_rss = status_kb(server.pid, "VmRSS")
            clients = [
                httpx.AsyncClient(
                    base_url=server.base_url,
                    headers={"Authorization": f"Bearer {server.api_key}"},
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                    timeout=httpx.Timeout(90.0, connect=60.0),
                )
                for _ in range(WAIT_CLIENTS)
            ]
            waits: list[asyncio.Task[httpx.Response]] = []
            try:
                opened = time.perf_counter()
                waits += [
                    asyncio.create_task(
                        clients[number % WAIT_CLIENTS].get(
                            f"/v1/sessions/{task.session_id}/tasks/{task.task_id}/wait",
                            params={"timeout": WAIT_HOLD},
                        )
                    )
                    for number, task in enumerate(tasks)
                ]
                deadline = opened + 45.0
                while server_sockets(server.port)["ESTABLISHED"] < len(waits):
                    if time.perf_counter() > deadline or any(w.done() for w in waits):
                        break
                    await asyncio.sleep(0.1)
                established = server_sockets(server.port)["ESTABLISHED"]
                all_open = time.perf_counter() - opened
                await asyncio.sleep(WAIT_SETTLE_SECONDS)
                server_rss = status_kb(server.pid, "VmRSS")
                zygote = server.zygote_pid()
                zygote_rss = 0 if zygote is None else status_kb(zygote, "VmRSS")
                early = [w for w in waits if w.done()]
            finally:
                for wait in waits:
                    wait.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
                for http in clients:
                    await http.aclose()
            await asyncio.sleep(WAIT_SETTLE_SECONDS)
            left = server_sockets(server.port)
            result.figures += [
                Figure("server RSS", server_rss / 1024, "MB"),
                Figure("zygote RSS", zygote_rss / 1024, "MB"),
                Figure(
                    "total RSS", (server_rss + zygote_rss) / 1024, "MB", Target(300.0, "< 300 MB")
                ),
            ]
            per_wait = (server_rss - baseline_rss) / len(waits)
            result.notes.append(
                f"{len(waits)} waits on queued tasks; server RSS before them "
                f"{baseline_rss / 1024:.1f} MB ({per_wait:.1f} kB per wait); {established} "
                f"connections established {all_open:.1f} s after the first request was started; "
                f"RSS read {WAIT_SETTLE_SECONDS:.0f} s later"
            )
            result.notes.append(
                f"{WAIT_SETTLE_SECONDS:.0f} s after the clients closed their connections, the "
                f"server's sockets on its port: {dict(left) or 'none'}"
            )
            if zygote is None:
                result.notes.append("UNEXPECTED: no zygote process found under the server")
            if established < len(waits):
                result.notes.append(
                    f"UNEXPECTED: only {established} of {len(waits)} connections established"
                )
            if early:
                result.notes.append(
                    f"UNEXPECTED: {len(early)} waits answered early: {describe(early[:3])}"
                )

        asyncio.run(run())
    return result


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "09": "LAST_ACK"}


def server_sockets(port: int) -> Counter[str]:
    """TCP sockets whose local port is ``port`` (the server's side), by state (/proc/net/tcp)."""
    states: Counter[str] = Counter()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in read_bytes(table).decode().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] != "0A":  # 0A: LISTEN
                states[TCP_STATES.get(fields[3], fields[3])] += 1
    return states


def describe(waits: Sequence[asyncio.Task[httpx.Response]]) -> list[str]:
    described = []
    for wait in waits:
        if wait.cancelled():
            described.append("cancelled")
        elif wait.exception() is not None:
            described.append(repr(wait.exception()))
        else:
            response = wait.result()
            described.append(f"HTTP {response.status_code} {response.text[:200]}")
    return described


Measurement = Callable[[Bench], Result]
MEASUREMENTS: dict[str, Measurement] = {
    "submit_rate": measure_submit_rate,
    "throughput": measure_throughput,
    "dispatch_latency": measure_dispatch_latency,
    "wakeup_latency": measure_wakeup_latency,
    "cancel_latency": measure_cancel_latency,
    "sandbox_start": measure_sandbox_start,
    "wait_memory": measure_wait_memory,
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


def raise_file_limit() -> None:
    """Enough descriptors for OPEN_WAITS connections here and in the servers (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_WAITS * 2 + 1000
    if soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE,
            (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted, hard),
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", help="sqlite:///… or postgresql://… (default: SQLite files in a temp dir)"
    )
    parser.add_argument(
        "--tasks", type=int, default=2000, help="tasks for submit_rate and throughput"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="the servers' --concurrency")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(MEASUREMENTS)}")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server logs)")
    args = parser.parse_args(argv)
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
    raise_file_limit()
    workdir = Path(tempfile.mkdtemp(prefix="theazo-bench-"))
    bench = Bench(args.database, args.tasks, args.concurrency, workdir)
    info = machine()
    database = (
        "sqlite (fresh temp files)" if args.database is None else args.database.split("://")[0]
    )
    print(
        f"Theazo benchmark: {info['cpus']} CPUs ({info['cpu_model']}), Linux {info['kernel']}, "
        f"Python {info['python']}, load average {info['load_average_1m']:.2f}, database "
        f"{database}, --concurrency {args.concurrency}, --tasks {args.tasks}\n"
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
            "results": [r.as_json() for r in results],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(r.error is not None for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
