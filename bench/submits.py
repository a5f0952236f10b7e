"""Submits over HTTP at volume: several client processes at once, and batches of 1,000."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

from bench.common import (
    SESSIONS,
    START_TIMEOUT_SECONDS,
    UNLIMITED_QUEUE,
    Bench,
    Figure,
    Result,
    Server,
    Target,
    cpu_seconds,
    open_sessions,
    p50_p99,
    sdk_client,
    submit_batches,
    submit_concurrently,
)

CONCURRENT_TASKS = 20_000  # submit_concurrent, over all its client processes
CLIENT_SUBMITTERS = 16  # concurrent submit loops in each client process
BATCH_TASKS = 20_000  # submit_batch
BATCH_LOOPS = 2  # batches in flight at once: the client parses one while the server takes one
SECONDS_PER_TASK = 0.01  # how long a client process may take per task before it is given up


@dataclass(frozen=True, slots=True)
class ClientJob:
    number: int
    base_url: str
    api_key: str
    tasks: int


@dataclass(frozen=True, slots=True)
class ClientReport:
    number: int
    accepted: int = 0
    first: float = 0.0  # time.time() just before its first request was sent
    last: float = 0.0  # time.time() once its last 202 was parsed
    cpu: float = 0.0  # its CPU seconds in between
    answered: tuple[float, ...] = ()  # time.time() of each 202
    error: str | None = None


def submit_client(job: ClientJob, start: Barrier, reports: Queue[ClientReport]) -> None:
    """A client process: sessions of its own, one warm-up submit, then (once every client is
    ready, at ``start``) ``job.tasks`` submits from CLIENT_SUBMITTERS loops."""
    try:
        reports.put(asyncio.run(submit_from_client(job, start)))
    except BaseException:
        start.abort()  # the others and the parent stop waiting for this one
        reports.put(ClientReport(job.number, error=traceback.format_exc()))


async def submit_from_client(job: ClientJob, start: Barrier) -> ClientReport:
    async with sdk_client(job.base_url, job.api_key, CLIENT_SUBMITTERS + 4) as client:
        sessions = await open_sessions(client, SESSIONS, prefix=f"bench_client{job.number}")
        await sessions[0].tasks.submit("noop")  # warm-up: connections, imports
        await asyncio.to_thread(start.wait, START_TIMEOUT_SECONDS)
        answered: list[float] = []
        cpu, first = time.process_time(), time.time()
        tasks = await submit_concurrently(
            sessions,
            job.tasks,
            "noop",
            on_submitted=lambda _session, _task: answered.append(time.time()),
            submitters=CLIENT_SUBMITTERS,
        )
        last = time.time()
    cpu = time.process_time() - cpu
    return ClientReport(job.number, len(tasks), first, last, cpu, tuple(answered))


def run_clients(server: Server, clients: int, total: int) -> tuple[list[ClientReport], float]:
    """Start ``clients`` processes (spawned: a fresh interpreter, no inherited loop or threads)
    sharing ``total`` submits; their reports, and the server's CPU seconds from the moment
    they all started submitting to the last report."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(clients + 1)
    reports: Queue[ClientReport] = context.Queue()
    processes = [
        context.Process(
            target=submit_client,
            args=(
                ClientJob(
                    n, server.base_url, server.api_key, total // clients + (n < total % clients)
                ),
                start,
                reports,
            ),
            name=f"bench-client-{n}",
        )
        for n in range(clients)
    ]
    for process in processes:
        process.start()
    try:
        try:
            start.wait(START_TIMEOUT_SECONDS)
        except threading.BrokenBarrierError:
            pass  # a client failed before it was ready: its report says why
        server_cpu = cpu_seconds(server.pid)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS + total * SECONDS_PER_TASK
        collected = []
        for _ in processes:
            try:
                collected.append(reports.get(timeout=max(deadline - time.monotonic(), 0.1)))
            except queue.Empty:
                break
        server_cpu = cpu_seconds(server.pid) - server_cpu
    finally:
        for process in processes:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join()
    return collected, server_cpu


def measure_submit_concurrent(bench: Bench) -> Result:
    """Tasks accepted per second by ``POST …/tasks`` from several client processes at once.

    Server with ``--no-workers`` (the tasks stay queued). ``--submit-clients`` client
    processes (multiprocessing, spawned), each with its own ``AsyncTheazo`` and SESSIONS
    sessions of its own: a warm-up submit, then they wait for each other (a barrier) and share
    ``--tasks`` (CONCURRENT_TASKS by default) ``noop`` submits, CLIENT_SUBMITTERS concurrent
    loops in each. From the earliest moment a client started submitting to the latest moment
    a client parsed its last 202 (``time.time()``, compared across processes).
    """
    result = Result("submit_concurrent")
    clients = bench.sizes.submit_clients
    total = bench.count(CONCURRENT_TASKS)
    with bench.server("submit_concurrent", workers=False, options=UNLIMITED_QUEUE) as server:
        reports, server_cpu = run_clients(server, clients, total)
    failed = [r for r in reports if r.error is not None]
    done = [r for r in reports if r.error is None]
    if len(reports) < clients:
        result.notes.append(f"UNEXPECTED: only {len(reports)} of {clients} clients reported")
    result.notes += [f"UNEXPECTED: client {r.number} failed:\n{r.error}" for r in failed]
    if not done:
        raise RuntimeError("no client process finished")
    start, end = min(r.first for r in done), max(r.last for r in done)
    elapsed = end - start
    accepted = sum(r.accepted for r in done)
    answered = sorted(moment for r in done for moment in r.answered)
    middle = answered[len(answered) // 2]
    result.figures.append(
        Figure("accepted", accepted / elapsed, "tasks/s", Target(3000.0, "≥ 3,000", at_least=True))
    )
    result.figures.append(Figure("server CPU per submit", server_cpu / accepted * 1000, "ms"))
    each = ", ".join(f"{r.accepted / (r.last - r.first):.0f}" for r in done)
    result.notes.append(
        f"{accepted} submits in {elapsed:.2f} s by {len(done)} client processes x "
        f"{CLIENT_SUBMITTERS} concurrent submitters; each client's own rate (tasks/s): {each}; "
        f"CPU: server {server_cpu / elapsed:.0%} of a core, the clients "
        f"{sum(r.cpu for r in done) / elapsed:.0%} of a core in all"
    )
    result.notes.append(
        f"rate over the first half of the submits {len(answered) // 2 / (middle - start):.0f} "
        f"tasks/s, over the second half (a deeper queue) "
        f"{(len(answered) - len(answered) // 2) / (end - middle):.0f} tasks/s"
    )
    return result


def measure_submit_batch(bench: Bench) -> Result:
    """Tasks accepted per second by ``POST …/tasks/batch``, 1,000 tasks a request.

    Server with ``--no-workers``. One ``AsyncTheazo`` client, SESSIONS sessions; one warm-up
    batch of 1,000, then ``--tasks`` (BATCH_TASKS by default) ``noop`` tasks in batches of
    1,000, round-robin over the sessions, BATCH_LOOPS batches in flight at once. From just
    before the first batch is sent to the moment the last batch's 202 has been parsed by the
    SDK (its 1,000 tasks included). Also each batch's round trip.
    """
    result = Result("submit_batch")
    total = bench.count(BATCH_TASKS)
    with bench.server("submit_batch", workers=False, options=UNLIMITED_QUEUE) as server:

        async def run() -> None:
            async with server.client() as client:
                sessions = await open_sessions(client, SESSIONS)
                await submit_batches(sessions, [{"agent": "noop"}] * 1000)  # warm-up
                round_trips: list[float] = []
                server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
                start = time.perf_counter()
                tasks = await submit_batches(
                    sessions,
                    [{"agent": "noop"}] * total,
                    loops=BATCH_LOOPS,
                    round_trips=round_trips,
                )
                elapsed = time.perf_counter() - start
                server_busy = (cpu_seconds(server.pid) - server_cpu) / elapsed
                client_busy = (time.process_time() - client_cpu) / elapsed
            result.figures.append(
                Figure(
                    "accepted",
                    len(tasks) / elapsed,
                    "tasks/s",
                    Target(20_000.0, "≥ 20,000", at_least=True),
                )
            )
            result.figures.append(
                Figure("server CPU per task", server_busy * elapsed / len(tasks) * 1000, "ms")
            )
            result.figures += p50_p99("batch round trip", round_trips)
            result.notes.append(
                f"{len(tasks)} tasks in {len(round_trips)} batch(es) in {elapsed:.2f} s, "
                f"{BATCH_LOOPS} in flight at once; CPU: server {server_busy:.0%} of a core, "
                f"benchmark client {client_busy:.0%} (parsing the tasks in each answer)"
            )

        asyncio.run(run())
    return result
