"""The node's Prometheus metrics, written with ``prometheus_client``, in a registry of its own.

Three sources, each through one narrow hook:

* task transitions: ``on_committed`` hears the status events this node's transactions commit
  (``EventHub.on_committed_here``), so a transition is counted once in the deployment, by the
  node that made it; Prometheus sums the nodes;
* webhook attempts: ``webhook_attempt``, called by the delivery worker after each one;
* HTTP requests: ``http_request``, called by ``HttpMetrics`` (api side, listener.py).

What is a state rather than an event is read when scraped, never counted in memory: the queued
and running tasks of the whole deployment from the store (a count kept per node would drift
as other nodes claim and finish), and this node's spare sandboxes, held waits, open streams
and slots from the objects that hold them.

No label carries a user, session or task id. Label values come from bounded sets: agents
(the deployment's), priorities, statuses, route templates, and error codes (capped, since
agents choose theirs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from theazo.core import defaults
from theazo.core.events import TaskEvent
from theazo.core.models import Delivery, DeliveryAttempt, Task
from theazo.core.states import Priority, TaskStatus
from theazo.observability.transitions import (
    Kind,
    queue_wait_seconds,
    run_seconds,
    transitions,
)
from theazo.webhooks.delivery import DELIVERED, INTERRUPTED_RESULT

log = logging.getLogger("theazo.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"
NO_ERROR = ""  # the error_code label of a task that did not fail

Unfinished = dict[tuple[TaskStatus, Priority], int]


@dataclass(frozen=True, slots=True)
class Readings:
    """Where a scrape reads the gauges (the node wires them to its store, pool and service)."""

    unfinished: Callable[[], Awaitable[Unfinished]]  # the deployment's, from the store
    spare_sandboxes: Callable[[], int]
    held_waits: Callable[[], int]
    open_streams: Callable[[], int]
    slots: Callable[[], tuple[int, int] | None]  # (used, total); None on a node without workers


class Metrics:
    def __init__(self, readings: Readings) -> None:
        # A registry per node, not the process-wide default: several nodes in one process (a
        # test, a benchmark) must not share, or refuse to register, each other's metrics.
        self.registry = CollectorRegistry(auto_describe=True)
        self._error_codes: set[str] = set()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.submitted = Counter(
            "theazo_tasks_submitted", "Tasks submitted.", ["agent", "priority"], registry=r
        )
        self.started = Counter(
            "theazo_tasks_started",
            "Attempts started (a sandbox took the task).",
            ["agent", "priority"],
            registry=r,
        )
        self.finished = Counter(
            "theazo_tasks_finished",
            "Tasks that ended, by how (error_code is empty unless the task failed).",
            ["agent", "status", "error_code"],
            registry=r,
        )
        self.retried = Counter(
            "theazo_tasks_retried",
            "Tasks queued again after their node was lost during an attempt.",
            ["agent"],
            registry=r,
        )
        self.cancelled = Counter(
            "theazo_tasks_cancelled",
            "Tasks cancelled, by the state they were cancelled in (queued or running).",
            ["agent", "state"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "theazo_task_queue_wait_seconds",
            "From submit to the start of the first attempt.",
            ["priority"],
            buckets=defaults.METRICS_QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self.run_time = Histogram(
            "theazo_task_run_seconds",
            "From the start of the attempt that ended a task to its end.",
            ["agent", "status"],
            buckets=defaults.METRICS_RUN_BUCKETS,
            registry=r,
        )
        self.webhook_attempts = Counter(
            "theazo_webhook_attempts",
            "Webhook attempts, by result: delivered (2xx), rejected (another status), "
            "unreachable (no answer) or interrupted (the node stopped).",
            ["event", "result"],
            registry=r,
        )
        self.webhook_attempt_time = Histogram(
            "theazo_webhook_attempt_duration_seconds",
            "How long one webhook attempt took (resolution, connection, answer).",
            ["event"],
            buckets=defaults.METRICS_WEBHOOK_ATTEMPT_BUCKETS,
            registry=r,
        )
        self.webhook_latency = Histogram(
            "theazo_webhook_delivery_latency_seconds",
            "From a webhook's event to its delivery, retries included.",
            ["event"],
            buckets=defaults.METRICS_WEBHOOK_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "theazo_http_requests",
            "HTTP requests to the API, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.store_read_errors = Counter(
            "theazo_metrics_store_read_errors",
            "Scrapes whose read of the queue failed (their queued and running gauges are left "
            "out).",
            registry=r,
        )
        self._state = _StateCollector(readings)
        r.register(self._state)

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: prometheus-client checks and locks on every
        ``labels`` call, several times the cost of the ``inc`` that follows, and a busy node
        counts a few transitions per task. Label values are bounded, and so is this."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # --- hooks -----------------------------------------------------------------------------
    def on_committed(self, events: Sequence[TaskEvent]) -> None:
        """Count the transitions in one committed batch (``EventHub.on_committed_here``)."""
        for change in transitions(events):
            task = change.task
            if change.kind is Kind.SUBMITTED:
                self._child(self.submitted, task.agent, task.priority.label).inc()
            elif change.kind is Kind.STARTED:
                self._child(self.started, task.agent, task.priority.label).inc()
                wait = queue_wait_seconds(task)
                if wait is not None:
                    self._child(self.queue_wait, task.priority.label).observe(wait)
            elif change.kind is Kind.RETRIED:
                self._child(self.retried, task.agent).inc()
            elif change.kind is Kind.FINISHED:
                self._finished(change.task)

    def _finished(self, task: Task) -> None:
        status = task.status.value
        code = self._error_code(task.error.code) if task.error is not None else NO_ERROR
        self._child(self.finished, task.agent, status, code).inc()
        ran = run_seconds(task)
        if ran is not None:
            self._child(self.run_time, task.agent, status).observe(ran)
        if task.status is TaskStatus.CANCELLED:
            state = "queued" if task.started_at is None else "running"
            self._child(self.cancelled, task.agent, state).inc()

    def _error_code(self, code: str) -> str:
        if code in self._error_codes:
            return code
        if len(self._error_codes) >= defaults.METRICS_MAX_ERROR_CODES:
            return OTHER
        self._error_codes.add(code)
        return code

    def webhook_attempt(self, delivery: Delivery, attempt: DeliveryAttempt, result: str) -> None:
        """One attempt of a webhook (``DeliveryWorker``'s ``on_attempt``)."""
        self._child(self.webhook_attempts, delivery.event, result).inc()
        if result == INTERRUPTED_RESULT:  # no answer came, nor will: its time means nothing
            return
        seconds = attempt.duration_ms / 1000
        self._child(self.webhook_attempt_time, delivery.event).observe(seconds)
        if result == DELIVERED:
            ended = attempt.attempted_at + timedelta(seconds=seconds)
            waited = (ended - delivery.created_at).total_seconds()
            self._child(self.webhook_latency, delivery.event).observe(max(0.0, waited))

    def http_request(self, method: str, route: str, status: int) -> None:
        self._child(self.http_requests, method, route, str(status)).inc()

    # --- scraping --------------------------------------------------------------------------
    async def scrape(self) -> bytes:
        """The text exposition, the store read first (the registry's collection is sync)."""
        try:
            await self._state.refresh()
        except Exception as exc:  # the counters are still worth a scrape
            self.store_read_errors.inc()
            log.warning("metrics: reading the queue failed (%s); its gauges are left out", exc)
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read at scrape time: the deployment's queue from the store (``refresh``, just
    before the collection), this node's sandboxes, waits, streams and slots as they are."""

    def __init__(self, readings: Readings) -> None:
        self._readings = readings
        self._unfinished: Unfinished | None = None

    async def refresh(self) -> None:
        self._unfinished = None
        self._unfinished = await asyncio.wait_for(
            self._readings.unfinished(), defaults.METRICS_STORE_READ_SECONDS
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names are not checked against the other collectors'

    def collect(self) -> Iterator[Metric]:
        readings = self._readings
        if self._unfinished is not None:
            for status, name in ((TaskStatus.QUEUED, "queued"), (TaskStatus.RUNNING, "running")):
                family = GaugeMetricFamily(
                    f"theazo_tasks_{name}",
                    f"Tasks {name} in the whole deployment (read from the database), by priority.",
                    labels=["priority"],
                )
                for priority in Priority:
                    family.add_metric([priority.label], self._unfinished.get((status, priority), 0))
                yield family
        yield _gauge(
            "theazo_sandboxes_spare",
            "Sandboxes started ahead on this node, ready for a task.",
            readings.spare_sandboxes(),
        )
        yield _gauge(
            "theazo_waits_held",
            "Long polls (wait and submit with Prefer: wait) this node holds open.",
            readings.held_waits(),
        )
        yield _gauge(
            "theazo_event_streams_open",
            "Event streams (Server-Sent Events) this node has open.",
            readings.open_streams(),
        )
        slots = readings.slots()
        if slots is not None:
            used, total = slots
            family = GaugeMetricFamily(
                "theazo_worker_slots",
                "This node's task slots (--concurrency), used and free.",
                labels=["state"],
            )
            family.add_metric(["used"], used)
            family.add_metric(["free"], max(0, total - used))
            yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
