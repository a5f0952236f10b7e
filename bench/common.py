"""What every benchmark measurement shares: results, percentiles, fresh databases, the nodes
(``theazo serve`` / ``theazo worker`` subprocesses) it starts, /proc readings, and the SDK
loops that submit tasks.

Clocks: intervals measured here use ``time.perf_counter``; figures that compare a moment in
one process with a moment in another (a server timestamp, a webhook receiver, a client
process) use ``time.time`` (the same machine, the same wall clock). Server timestamps have
millisecond resolution on the wire (truncated, not rounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from theazo import AsyncTheazo
from theazo.core import defaults, ids
from theazo.sdk import AsyncSession, Task

REPO = Path(__file__).resolve().parents[1]
AGENTS_MODULE = "bench.agents"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0

SUBMITTERS = 32  # concurrent submit loops in one client
SESSIONS = 4  # sessions (end users) the submits are spread over
WARMUP = 10  # samples taken first and not counted, in each latency measurement
MAX_BATCH = defaults.MAX_BATCH_TASKS  # tasks in one POST …/tasks/batch
BANNERS = ("Theazo is serving on", "is running tasks")  # what a node prints when it starts
# For servers that must accept more queued tasks per session than the default allows.
UNLIMITED_QUEUE = ("--max-queued-per-session", "100000000")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much the measurements that are not sized by ``--tasks`` do; each field is also a
    command-line option (``claim_finished`` → ``--claim-finished``). The defaults are the full
    sizes; smaller ones make quick trial runs."""

    claim_finished: tuple[int, ...] = field(
        default=(1_000, 1_000_000),
        metadata={"help": "claim_scale: finished tasks in the table, one run for each"},
    )
    claim_samples: int = field(default=200, metadata={"help": "claim_scale: timed claims of 1"})
    fair_sessions: int = field(default=100, metadata={"help": "fair_claims: sessions"})
    fair_queued: int = field(
        default=1_000, metadata={"help": "fair_claims: queued tasks per session"}
    )
    fair_claimed: int = field(
        default=2_000, metadata={"help": "fair_claims: tasks claimed (and timed) per policy"}
    )
    fair_claim_sizes: tuple[int, ...] = field(
        default=(1, 8), metadata={"help": "fair_claims: tasks per claim, one series for each"}
    )
    cluster_nodes: tuple[int, ...] = field(
        default=(1, 2, 4), metadata={"help": "cluster: worker node counts, one run each a round"}
    )
    cluster_rounds: int = field(
        default=3,
        metadata={"help": "cluster: rounds over the node counts; each count's median is shown"},
    )
    cluster_sessions: int = field(
        default=1, metadata={"help": "cluster: sessions the tasks are spread over"}
    )
    submit_clients: int = field(default=4, metadata={"help": "submit_concurrent: client processes"})
    waits: int = field(default=10_000, metadata={"help": "waits_10k: long polls held at once"})
    wait_tasks: int = field(default=100, metadata={"help": "waits_10k: tasks they wait on"})
    wait_task_seconds: float = field(
        default=2.0, metadata={"help": "waits_10k: how long the shortest of those tasks sleeps"}
    )
    wait_spread_seconds: float = field(
        default=5.0,
        metadata={"help": "waits_10k: their ends are spread evenly over this long (0: at once)"},
    )


# --- results ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Target:
    """A goal from the issue: the figure must be below ``limit`` (in the figure's unit), or
    with ``at_least``, at least ``limit``."""

    limit: float
    text: str
    at_least: bool = False

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value < self.limit


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


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


# --- databases --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_postgres(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


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
    elif is_postgres(base):
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


# --- processes --------------------------------------------------------------------------------
def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b""


def children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from one walk of /proc."""
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = read_bytes(f"/proc/{entry}/stat").rsplit(b")", 1)[-1].split()
            if len(fields) > 1:
                found.setdefault(int(fields[1]), []).append(int(entry))
    return found


def children(pid: int) -> list[int]:
    return children_by_parent().get(pid, [])


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


def poll_fd(fd: int, timeout: float | None) -> bool:
    """Whether ``fd`` becomes readable within ``timeout`` seconds (None: wait for ever)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else int(timeout * 1000)))


def wait_gone(pid: int, timeout: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return poll_fd(fd, timeout)
    finally:
        os.close(fd)


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


# --- nodes ------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def sdk_client(
    base_url: str, api_key: str, max_connections: int = 256
) -> AsyncIterator[AsyncTheazo]:
    """An SDK client with enough kept-alive connections for the concurrency used here."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    async with httpx.AsyncClient(limits=limits) as http:
        yield AsyncTheazo(api_key=api_key, base_url=base_url, http_client=http)


@dataclass(slots=True)
class Node:
    """A ``theazo serve`` or ``theazo worker`` subprocess started by the benchmark."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def zygote_pid(self) -> int | None:
        """The node's child running ``theazo.sandbox.zygote``."""
        for pid in children(self.pid):
            if b"theazo.sandbox.zygote" in read_bytes(f"/proc/{pid}/cmdline"):
                return pid
        return None

    def check_alive(self, what: str) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the {what} exited:\n{self.log_tail()}")

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
        """What the node logged (at --log-level warning) beyond its start-up BANNERS: each
        distinct unindented line with its count (tracebacks shortened to their headline and
        last line), at most ``most`` of them."""
        if not self.log_path.exists():
            return []
        lines = [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if line.strip() and not any(banner in line for banner in BANNERS)
        ]
        headlines = Counter(line for line in lines if not line.startswith((" ", "\t")))
        summary = [f"{count} x {line[:300]}" for line, count in headlines.most_common(most)]
        if len(headlines) > most:
            summary.append(f"… and {len(headlines) - most} other distinct lines")
        if summary:
            summary.insert(0, f"{len(lines)} lines in {self.log_path.name}:")
        return summary


@dataclass(slots=True)
class Server(Node):
    """A ``theazo serve``: a node with the API."""

    port: int
    api_key: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(
        self, max_connections: int = 256
    ) -> contextlib.AbstractAsyncContextManager[AsyncTheazo]:
        """``async with server.client() as client``: an ``AsyncTheazo`` for this server."""
        return sdk_client(self.base_url, self.api_key, max_connections)

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.check_alive("server, at start")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the server did not answer /healthz in time:\n{self.log_tail()}")


N = TypeVar("N", bound=Node)


@dataclass(slots=True)
class Bench:
    """The run's settings and its way of starting nodes."""

    database: str | None
    tasks: int | None  # --tasks; None: each measurement's own default
    concurrency: int
    workdir: Path
    sizes: Sizes = field(default_factory=Sizes)
    server_logs: list[str] = field(default_factory=list)  # problems logged by the last nodes

    def count(self, default: int) -> int:
        """How many tasks a measurement submits: ``--tasks`` if given, else its ``default``."""
        return default if self.tasks is None else self.tasks

    @property
    def on_postgres(self) -> bool:
        return is_postgres(self.database)

    def fresh_database(self, name: str) -> contextlib.AbstractContextManager[str]:
        return fresh_database(self.database, self.workdir, name)

    @contextlib.contextmanager
    def server(
        self,
        name: str,
        *,
        workers: bool = True,
        concurrency: int | None = None,
        options: Sequence[str] = (),
        database: str | None = None,
    ) -> Iterator[Server]:
        """A fresh ``theazo serve`` (``--concurrency``: the run's, unless given), on a fresh
        database unless ``database`` is given; stopped (and the fresh database dropped) on the
        way out."""
        with contextlib.ExitStack() as stack:
            url = database or stack.enter_context(self.fresh_database(name))
            port = free_port()
            api_key = ids.new_api_key(live=False)
            arguments = [
                "serve", "--port", str(port), "--database", url, "--api-key", api_key,
                "--concurrency", str(concurrency or self.concurrency),
                # Every client of a benchmark has one address: 127.0.0.1.
                "--max-connections-per-client", "0",
                *(() if workers else ("--no-workers",)), *options,
            ]  # fmt: skip
            process, log_path = self._launch(f"server-{name}-{port}", arguments)
            server = stack.enter_context(self._running(Server(process, log_path, port, api_key)))
            server.wait_until_healthy()
            yield server

    @contextlib.contextmanager
    def worker(
        self, name: str, database: str, *, concurrency: int, options: Sequence[str] = ()
    ) -> Iterator[Node]:
        """A ``theazo worker`` node on ``database`` (PostgreSQL), stopped on the way out. It
        is not waited for: it is ready once it is in the ``workers`` table."""
        arguments = ["worker", "--database", database, "--concurrency", str(concurrency)]
        process, log_path = self._launch(f"worker-{name}", [*arguments, *options])
        with self._running(Node(process, log_path)) as node:
            yield node

    def _launch(self, label: str, arguments: Sequence[str]) -> tuple[subprocess.Popen[bytes], Path]:
        """Start ``python -m theazo <arguments>`` with the benchmark's agents, a sandbox root
        of its own, a short shutdown grace and warnings only, logging to a file."""
        label = f"{label}-{uuid.uuid4().hex[:6]}"
        sandboxes = self.workdir / f"sandboxes-{label}"
        sandboxes.mkdir()
        command = [
            sys.executable, "-m", "theazo", *arguments,
            "--agents", AGENTS_MODULE,
            "--sandbox-root", str(sandboxes),
            "--shutdown-grace", "2s",
            "--log-level", "warning",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        log_path = self.workdir / f"{label}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of the benchmark reaches us, not it
            )  # fmt: skip
        return process, log_path

    @contextlib.contextmanager
    def _running(self, node: N) -> Iterator[N]:
        """Stop ``node`` on the way out and keep what it logged in ``server_logs``."""
        try:
            yield node
        finally:
            node.stop()
            self.server_logs += [f"node log: {line}" for line in node.log_problems()]


# --- the SDK side -----------------------------------------------------------------------------
async def open_sessions(
    client: AsyncTheazo, count: int, prefix: str = "bench_user"
) -> list[AsyncSession]:
    return [await client.sessions.for_user(f"{prefix}_{i}") for i in range(count)]


async def submit_concurrently(
    sessions: Sequence[AsyncSession],
    count: int,
    agent: str,
    input: Any = None,
    on_submitted: Callable[[AsyncSession, Task], None] | None = None,
    *,
    submitters: int = SUBMITTERS,
) -> list[Task]:
    """Submit ``count`` tasks from ``submitters`` concurrent loops, round-robin over
    ``sessions``."""
    numbers = iter(range(count))
    submitted: list[Task | None] = [None] * count

    async def submitter() -> None:
        for number in numbers:  # one iterator shared by all loops: each number taken once
            session = sessions[number % len(sessions)]
            task = await session.tasks.submit(agent, input)
            submitted[number] = task
            if on_submitted is not None:
                on_submitted(session, task)

    await asyncio.gather(*(submitter() for _ in range(submitters)))
    return [task for task in submitted if task is not None]


async def submit_batches(
    sessions: Sequence[AsyncSession],
    bodies: Sequence[Mapping[str, Any]],
    *,
    loops: int = 1,
    round_trips: list[float] | None = None,
) -> list[Task]:
    """Submit ``bodies`` (``submit_batch`` items) in batches of up to MAX_BATCH, round-robin
    over ``sessions``, from ``loops`` concurrent loops; each batch's round trip (seconds) is
    appended to ``round_trips``. The tasks come back in the order of ``bodies``."""
    batches = [bodies[start : start + MAX_BATCH] for start in range(0, len(bodies), MAX_BATCH)]
    answers: list[list[Task]] = [[] for _ in batches]
    numbers = iter(range(len(batches)))

    async def loop() -> None:
        for number in numbers:
            start = time.perf_counter()
            answers[number] = await sessions[number % len(sessions)].tasks.submit_batch(
                batches[number]
            )
            if round_trips is not None:
                round_trips.append(time.perf_counter() - start)

    await asyncio.gather(*(loop() for _ in range(loops)))
    return list(itertools.chain.from_iterable(answers))


async def wait_all(
    session: AsyncSession, tasks: Sequence[Task], at_once: int
) -> list[tuple[Task, float]]:
    """SDK ``wait`` on each task, at most ``at_once`` long polls open; each answer with the
    ``perf_counter`` moment it was parsed, in the order of ``tasks``."""
    gate = asyncio.Semaphore(at_once)

    async def wait(task_id: str) -> tuple[Task, float]:
        async with gate:
            done = await session.tasks.wait(task_id)
        return done, time.perf_counter()

    return list(await asyncio.gather(*(wait(task.task_id) for task in tasks)))


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


def server_span(tasks: Sequence[Task]) -> float:
    """Seconds from the first ``createdAt`` to the last ``completedAt`` (server clock)."""
    first = min(timestamp(t.created_at, "createdAt", t) for t in tasks)
    last = max(timestamp(t.completed_at, "completedAt", t) for t in tasks)
    return last - first
