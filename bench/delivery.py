"""Webhook delivery: a receiver in the benchmark process, and how soon each delivery arrives."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from bench.common import (
    Bench,
    Figure,
    Result,
    Target,
    open_sessions,
    p50_p99,
    ratio,
    submit_batches,
)

TASKS = 1_000
DELIVERY_TIMEOUT_SECONDS = 120.0  # plus DELIVERY_SECONDS_PER_TASK each: then give up waiting
DELIVERY_SECONDS_PER_TASK = 0.1


@dataclass(frozen=True, slots=True)
class Arrival:
    moment: float  # time.time() once the whole request was read
    message_id: str  # the webhook-id header: the same on every retry of one delivery
    payload: dict[str, Any]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 would drop connections under a burst


class Receiver:
    """A webhook receiver on 127.0.0.1 in threads of the benchmark process: it answers every
    POST with 200 and records when it arrived (``with Receiver() as receiver``)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._task_ids: set[str] = set()  # those a delivery has arrived about
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                moment = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver._record(
                    Arrival(moment, self.headers.get("webhook-id", ""), json.loads(body))
                )

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per request on stderr otherwise

        self._http = _HTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, name="webhook-receiver")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def _record(self, arrival: Arrival) -> None:
        with self._changed:
            self.arrivals.append(arrival)
            self._task_ids.add(arrival.payload.get("taskId", ""))
            self._changed.notify_all()

    def wait_for(self, task_ids: set[str], timeout: float) -> bool:
        """Block until a delivery about each of ``task_ids`` has arrived, or ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: task_ids <= self._task_ids, timeout)


def measure_delivery(bench: Bench) -> Result:
    """Webhooks: from a task's end to its delivery arriving at a local receiver.

    A server with workers and ``--allow-private-webhooks``; a ``Receiver`` (threads of the
    benchmark process) on 127.0.0.1 answering 200 at once. One warm-up ``noop`` task with a
    webhook, waited for; then ``--tasks`` (TASKS by default) ``noop`` tasks with
    ``webhook=<receiver>`` submitted in batches of 1,000 into one session, and nothing else done
    until a delivery about each has arrived.

    Delivery latency of each task: from its ``completedAt`` as the payload gives it (server
    clock, truncated to the millisecond: the figure is 0-1 ms high, so the mean is given too)
    to the moment the receiver has read the whole request (``time.time()``); the first arrival
    per task. Deliveries/s: arrivals after the first, divided by the time from the first
    arrival to the last. For comparison, the tasks' own completion rate over the same run
    (first to last ``completedAt``): deliveries cannot outpace the tasks they announce.
    """
    result = Result("delivery")
    count = bench.count(TASKS)
    options = ("--allow-private-webhooks",)
    with Receiver() as receiver, bench.server("delivery", options=options) as server:

        async def run() -> None:
            async with server.client() as client:
                (session,) = await open_sessions(client, 1)
                warmup = await session.tasks.submit("noop", webhook=receiver.url)
                if not await asyncio.to_thread(
                    receiver.wait_for, {warmup.task_id}, DELIVERY_TIMEOUT_SECONDS
                ):
                    raise RuntimeError("the warm-up task's webhook never arrived")
                body = {"agent": "noop", "webhook": receiver.url}
                tasks = await submit_batches([session], [body] * count)
            task_ids = {task.task_id for task in tasks}
            timeout = DELIVERY_TIMEOUT_SECONDS + count * DELIVERY_SECONDS_PER_TASK
            if not await asyncio.to_thread(receiver.wait_for, task_ids, timeout):
                result.notes.append(f"UNEXPECTED: not every webhook arrived within {timeout:g} s")
            first: dict[str, Arrival] = {}
            repeats: Counter[str] = Counter()
            for arrival in receiver.arrivals:
                task_id = arrival.payload.get("taskId", "")
                if task_id in task_ids:
                    repeats[task_id] += task_id in first
                    first.setdefault(task_id, arrival)
            report(result, list(first.values()), count, sum(repeats.values()))

        asyncio.run(run())
    return result


def report(result: Result, arrivals: list[Arrival], submitted: int, repeats: int) -> None:
    if not arrivals:
        result.notes.append(f"UNEXPECTED: none of {submitted} webhooks arrived")
        return
    completed = [datetime.fromisoformat(a.payload["completedAt"]).timestamp() for a in arrivals]
    latencies = [a.moment - end for a, end in zip(arrivals, completed, strict=True)]
    moments = sorted(a.moment for a in arrivals)
    result.figures += p50_p99("completedAt→delivered", latencies, Target(20.0, "< 20 ms"))
    result.figures.append(
        Figure("completedAt→delivered mean", statistics.fmean(latencies) * 1000, "ms")
    )
    result.figures.append(
        Figure("delivered", ratio(len(moments) - 1, moments[-1] - moments[0]), "deliveries/s")
    )
    statuses = Counter(a.payload.get("status") for a in arrivals)
    result.notes.append(
        f"{len(arrivals)} of {submitted} webhooks arrived ({repeats} arrived more than once); "
        f"the tasks' own rate, first to last completedAt: "
        f"{ratio(len(completed) - 1, max(completed) - min(completed)):.1f} tasks/s; completedAt "
        f"has 1 ms resolution (truncated, so each sample is 0-1 ms high)"
    )
    if set(statuses) != {"completed"}:
        result.notes.append(f"UNEXPECTED: the payloads' statuses: {dict(statuses)}")
