"""Thousands of long polls held by one server: its memory, and how fast they are answered."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx

from bench.common import (
    MAX_BATCH,
    Bench,
    Figure,
    Node,
    Result,
    Server,
    Target,
    cpu_seconds,
    open_sessions,
    p50_p99,
    percentile,
    server_sockets,
    status_kb,
    submit_batches,
)
from theazo.sdk import Task

OPEN_WAITS = 5_000  # wait_memory
WAIT_CLIENTS = 50  # httpx clients the open waits are spread over
WAIT_HOLD = "60s"  # the server's default cap on one long poll
LONG_HOLD = "300s"  # waits_10k: longer than opening them may take (its server allows it)
WAIT_SETTLE_SECONDS = 2.0
OPENING_SECONDS_PER_WAIT = 0.009  # how long opening the waits may take, at least 45 s
ANSWER_MARGIN_SECONDS = 60.0  # waits_10k: how long after the last task should end to give up

CONNECTS_AT_ONCE = 256  # RawWaits: connections being opened at once (the listen backlog)


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    body: bytes
    moment: float  # time.time() once the whole answer was read

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Waits(Protocol):
    """A way to send long polls: each on a connection of its own."""

    async def wait(self, task: Task) -> Answer: ...

    async def aclose(self) -> None: ...


def wait_path(task: Task, hold: str) -> str:
    return f"/v1/sessions/{task.session_id}/tasks/{task.task_id}/wait?timeout={hold}"


class HttpxWaits:
    """Long polls sent with httpx, spread over WAIT_CLIENTS AsyncClients (one client with
    thousands of connections spends most of its time in its own pool bookkeeping)."""

    def __init__(self, server: Server, hold: str) -> None:
        self._hold = hold
        self._clients = [
            httpx.AsyncClient(
                base_url=server.base_url,
                headers={"Authorization": f"Bearer {server.api_key}"},
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                timeout=httpx.Timeout(None, connect=60.0),
            )
            for _ in range(WAIT_CLIENTS)
        ]
        self._next = itertools.cycle(self._clients)

    async def wait(self, task: Task) -> Answer:
        response = await next(self._next).get(wait_path(task, self._hold))
        return Answer(response.status_code, response.content, time.time())

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()


class RawWaits:
    """Long polls sent on bare asyncio streams: a GET written by hand, the answer read by its
    Content-Length. A tenth of httpx's CPU per answer, so that a burst of answers is timed as
    the server sent it rather than as the benchmark got round to parsing it."""

    def __init__(self, server: Server, hold: str) -> None:
        self._port = server.port
        self._head = (
            f"Host: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {server.api_key}\r\n"
            "Connection: close\r\n\r\n"
        )
        self._hold = hold
        self._connecting = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def wait(self, task: Task) -> Answer:
        async with self._connecting:
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        try:
            writer.write(f"GET {wait_path(task, self._hold)} HTTP/1.1\r\n{self._head}".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            length = headers.get("content-length")
            body = await (reader.read() if length is None else reader.readexactly(int(length)))
            return Answer(int(lines[0].split()[1]), body, time.time())
        finally:
            writer.close()

    async def aclose(self) -> None:
        pass


@dataclass(slots=True)
class HeldWaits:
    waits: list[asyncio.Task[Answer]]
    established: int  # connections to the server's port the kernel showed as established
    opening_seconds: float  # from starting the first request until then


@contextlib.asynccontextmanager
async def held_waits(
    server: Server, tasks: Sequence[Task], count: int, sender: Waits
) -> AsyncIterator[HeldWaits]:
    """``count`` long polls on ``tasks`` (round-robin) sent by ``sender``. Entered once the
    kernel shows that many established connections to the server's port (or one wait was
    answered, or opening them took too long); on the way out, the waits still open are
    cancelled (their connections closed) and ``sender`` is closed."""
    waits: list[asyncio.Task[Answer]] = []
    try:
        opened = time.perf_counter()
        waits += [
            asyncio.create_task(sender.wait(tasks[number % len(tasks)])) for number in range(count)
        ]
        deadline = opened + max(45.0, count * OPENING_SECONDS_PER_WAIT)
        while server_sockets(server.port)["ESTABLISHED"] < count:
            if time.perf_counter() > deadline or any(w.done() for w in waits):
                break
            await asyncio.sleep(0.1)
        established = server_sockets(server.port)["ESTABLISHED"]
        yield HeldWaits(waits, established, time.perf_counter() - opened)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        await sender.aclose()


def rss_kb(node: Node) -> tuple[int, int, int]:
    """VmRSS of the node and of its zygote, and the node's peak (VmHWM), in kB."""
    zygote = node.zygote_pid()
    zygote_rss = 0 if zygote is None else status_kb(zygote, "VmRSS")
    return status_kb(node.pid, "VmRSS"), zygote_rss, status_kb(node.pid, "VmHWM")


def rss_figures(server_kb: int, zygote_kb: int, target: Target) -> list[Figure]:
    return [
        Figure("server RSS", server_kb / 1024, "MB"),
        Figure("zygote RSS", zygote_kb / 1024, "MB"),
        Figure("total RSS", (server_kb + zygote_kb) / 1024, "MB", target),
    ]


def held_notes(held: HeldWaits, count: int) -> list[str]:
    notes = []
    if held.established < count:
        notes.append(f"UNEXPECTED: only {held.established} of {count} connections established")
    early = [w for w in held.waits if w.done()]
    if early:
        notes.append(f"UNEXPECTED: {len(early)} waits answered early: {describe(early[:3])}")
    return notes


def describe(waits: Sequence[asyncio.Task[Answer]]) -> list[str]:
    described = []
    for wait in waits:
        if not wait.done():
            described.append("not answered")
        elif wait.cancelled():
            described.append("cancelled")
        elif wait.exception() is not None:
            described.append(repr(wait.exception()))
        else:
            answer = wait.result()
            described.append(f"HTTP {answer.status_code} {answer.text[:200]}")
    return described


def measure_wait_memory(bench: Bench) -> Result:
    """Resident memory of the server holding OPEN_WAITS long polls.

    Server with ``--no-workers`` (so the tasks stay queued and the waits stay open). Submit
    OPEN_WAITS ``noop`` tasks (batches of 1,000) and read the server's VmRSS (baseline). Then
    open one raw ``GET …/wait?timeout=60s`` per task, spread over WAIT_CLIENTS
    httpx.AsyncClients. Once the kernel shows that many established connections to the
    server's port, wait WAIT_SETTLE_SECONDS more and read VmRSS of the server and of its
    zygote (its child running ``theazo.sandbox.zygote``) from /proc/<pid>/status. Then the
    waits are cancelled (the client closes its connections) and, WAIT_SETTLE_SECONDS later,
    the server's sockets still open on that port are counted.
    """
    result = Result("wait_memory")
    with bench.server("wait_memory", workers=False) as server:

        async def run() -> None:
            async with server.client() as client:
                sessions = await open_sessions(client, -(-OPEN_WAITS // MAX_BATCH))
                tasks = await submit_batches(sessions, [{"agent": "noop"}] * OPEN_WAITS)
            baseline_rss = status_kb(server.pid, "VmRSS")
            sender = HttpxWaits(server, WAIT_HOLD)
            async with held_waits(server, tasks, len(tasks), sender) as held:
                await asyncio.sleep(WAIT_SETTLE_SECONDS)
                server_rss, zygote_rss, _ = rss_kb(server)
                result.notes += held_notes(held, len(tasks))
            await asyncio.sleep(WAIT_SETTLE_SECONDS)
            left = server_sockets(server.port)
            result.figures += rss_figures(server_rss, zygote_rss, Target(300.0, "< 300 MB"))
            per_wait = (server_rss - baseline_rss) / len(tasks)
            result.notes.insert(
                0,
                f"{len(tasks)} waits on queued tasks; server RSS before them "
                f"{baseline_rss / 1024:.1f} MB ({per_wait:.1f} kB per wait); {held.established} "
                f"connections established {held.opening_seconds:.1f} s after the first request "
                f"was started; RSS read {WAIT_SETTLE_SECONDS:.0f} s later",
            )
            result.notes.insert(
                1,
                f"{WAIT_SETTLE_SECONDS:.0f} s after the clients closed their connections, the "
                f"server's sockets on its port: {dict(left) or 'none'}",
            )
            if zygote_rss == 0:
                result.notes.append("UNEXPECTED: no zygote process found under the server")

        asyncio.run(run())
    return result


def measure_waits_10k(bench: Bench) -> Result:
    """``--waits`` long polls held by one server: its memory, and each one's answer time.

    Server with workers, ``--concurrency`` at least ``--wait-tasks`` and ``--max-wait 300s``.
    One session, its ``maxRunning`` set to 0 so that nothing starts yet; ``--wait-tasks``
    ``sleep`` tasks submitted (one batch), the i-th sleeping ``--wait-task-seconds`` + i *
    ``--wait-spread-seconds`` / ``--wait-tasks``: their ends are spread evenly (by default 100
    waits due every 50 ms, 2,000 a second). Answering a wait costs the server a fraction of a
    millisecond whatever it does, so if all 10,000 were due at once the last would be late by
    construction; ``--wait-spread-seconds 0`` measures that burst.

    Then ``--waits`` raw ``GET …/wait?timeout=300s``, round-robin over the tasks (100 per
    task by default), each on a connection of its own (``RawWaits``: bare asyncio streams, so
    that reading a burst of answers costs the benchmark little). Once the kernel shows them
    all established, WAIT_SETTLE_SECONDS more, then VmRSS of the server and of its zygote
    (/proc/<pid>/status). Then the session's ``maxRunning`` is raised to ``--wait-tasks``
    (PATCH), so every task starts at once.

    Answer time of each wait: from its task's ``completedAt`` (server clock, truncated to the
    millisecond: up to 1 ms too early) to the moment the benchmark has read the whole answer
    (``time.time()``). Every wait was held before its task even started, so every one is a
    sample.
    """
    result = Result("waits_10k")
    sizes = bench.sizes
    descriptors, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if descriptors < sizes.waits + 100:
        result.notes.append(
            f"UNEXPECTED: RLIMIT_NOFILE is {descriptors} here (and in the server): too few "
            f"for {sizes.waits} connections; raise the hard limit (ulimit -Hn)"
        )
    concurrency = max(bench.concurrency, sizes.wait_tasks)
    options = ("--max-wait", LONG_HOLD)
    with bench.server("waits_10k", concurrency=concurrency, options=options) as server:

        async def run() -> None:
            async with server.client() as client:
                (session,) = await open_sessions(client, 1)
                await session.update_limits(max_running=0)  # nothing starts until released
                step = sizes.wait_spread_seconds / sizes.wait_tasks
                bodies = [
                    {"agent": "sleep", "input": {"seconds": sizes.wait_task_seconds + i * step}}
                    for i in range(sizes.wait_tasks)
                ]
                tasks = await submit_batches([session], bodies)
                baseline_rss = status_kb(server.pid, "VmRSS")
                sender = RawWaits(server, LONG_HOLD)
                async with held_waits(server, tasks, sizes.waits, sender) as held:
                    await asyncio.sleep(WAIT_SETTLE_SECONDS)
                    server_rss, zygote_rss, _ = rss_kb(server)
                    result.notes += held_notes(held, sizes.waits)
                    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
                    released = time.perf_counter()
                    await session.update_limits(max_running=sizes.wait_tasks)
                    longest = sizes.wait_task_seconds + sizes.wait_spread_seconds
                    await asyncio.wait(held.waits, timeout=longest + ANSWER_MARGIN_SECONDS)
                    answering = time.perf_counter() - released
                    server_cpu = cpu_seconds(server.pid) - server_cpu
                    client_cpu = time.process_time() - client_cpu
                    per_task, problems = answer_times(held.waits)
                _, _, peak_rss = rss_kb(server)
            samples = [sample for answers in per_task.values() for sample in answers]
            result.figures += rss_figures(server_rss, zygote_rss, Target(400.0, "< 400 MB"))
            result.figures += p50_p99("completedAt→answer", samples)
            result.figures.append(
                Figure(
                    "completedAt→answer max",
                    max(samples, default=math.nan) * 1000,
                    "ms",
                    Target(50.0, "< 50 ms (each)"),
                )
            )
            result.notes.insert(
                0,
                f"{sizes.waits} waits on {len(tasks)} sleep tasks of {sizes.wait_task_seconds:g}"
                f"-{sizes.wait_task_seconds + sizes.wait_spread_seconds:g} s; server RSS before "
                f"the waits {baseline_rss / 1024:.1f} MB "
                f"({(server_rss - baseline_rss) / sizes.waits:.1f} kB per wait), peak (VmHWM) "
                f"over the run {peak_rss / 1024:.1f} MB; {held.established} connections to the "
                f"server established {held.opening_seconds:.1f} s after the first wait was "
                "started",
            )
            result.notes.insert(1, answer_note(per_task, answering, server_cpu, client_cpu))
            result.notes += problems

        asyncio.run(run())
    return result


def answer_note(
    per_task: dict[str, list[float]], answering: float, server_cpu: float, client_cpu: float
) -> str:
    """Where the answer times come from: the first answer of each task is its wake-up; the
    spread up to its last is the cost of answering its waits one after another."""
    samples = [sample for answers in per_task.values() for sample in answers]
    first = [min(answers) for answers in per_task.values()]
    last = [max(answers) for answers in per_task.values()]
    over = sum(sample > 0.050 for sample in samples)
    return (
        f"{len(samples)} answer times, {over} over 50 ms, p90 "
        f"{percentile(samples, 90) * 1000:.1f} ms; per task, its first answer p50 "
        f"{percentile(first, 50) * 1000:.1f} ms, its last p50 {percentile(last, 50) * 1000:.1f} "
        f"ms (about {len(samples) / max(len(per_task), 1):.0f} waits per task); all answered "
        f"{answering:.1f} s after the tasks were released; CPU over those {answering:.1f} s: "
        f"server {server_cpu / answering:.0%} of a core, benchmark (reading the answers) "
        f"{client_cpu / answering:.0%}"
    )


def answer_times(waits: Sequence[asyncio.Task[Answer]]) -> tuple[dict[str, list[float]], list[str]]:
    """Per task, the seconds from its ``completedAt`` to each of its waits' answers being
    read; and what went wrong with the waits that gave none."""
    per_task: dict[str, list[float]] = {}
    completed: dict[str, float] = {}  # completedAt as sent, parsed once per task
    failed: list[asyncio.Task[Answer]] = []
    unfinished = 0
    statuses: Counter[str] = Counter()
    for wait in waits:
        if not wait.done() or wait.cancelled() or wait.exception() is not None:
            failed.append(wait)
            continue
        response = wait.result()
        if response.status_code != 200:
            failed.append(wait)
            continue
        answer = json.loads(response.body)
        statuses[answer["status"]] += 1
        moment = answer["completedAt"]
        if moment is None:
            unfinished += 1  # the hold passed before the task ended
            continue
        if moment not in completed:
            completed[moment] = datetime.fromisoformat(moment).timestamp()
        per_task.setdefault(answer["taskId"], []).append(response.moment - completed[moment])
    problems = []
    if failed:
        problems.append(f"UNEXPECTED: {len(failed)} waits failed: {describe(failed[:3])}")
    if unfinished:
        problems.append(f"UNEXPECTED: {unfinished} waits answered before their task ended")
    if set(statuses) - {"completed"}:
        problems.append(f"UNEXPECTED: the waits' tasks were {dict(statuses)}")
    return per_task, problems
