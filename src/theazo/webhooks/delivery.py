"""The delivery worker: sends the outbox's due webhooks, records every attempt, and schedules
retries.

Every node runs one, API-only nodes and worker nodes alike. It wakes when a delivery is queued
(``EventHub.on_delivery_ready``, after the commit that queued it) and otherwise sleeps until the
next delivery is due. It claims at most as many deliveries as it has free slots, each for one
attempt under a lease that outlasts the attempt's time-out: a node that dies mid-attempt leaves
the delivery due again when the lease ends (at least once), and no other node sends it meanwhile.
Each send is its own asyncio task, so a slow receiver holds one slot, never the loop, other
deliveries or the execution of tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from theazo.core import defaults
from theazo.core.models import Delivery, DeliveryAttempt
from theazo.observability.logs import task_fields
from theazo.store.base import Store
from theazo.webhooks import signing
from theazo.webhooks.sender import Answer, Sender

log = logging.getLogger("theazo.webhooks")

INTERRUPTED = "interrupted: the node stopped before an answer came"

# An attempt's result, as metrics count it: delivered (2xx), rejected (another status),
# unreachable (no answer at all: refused, timed out, a forbidden address) or interrupted.
DELIVERED, REJECTED, UNREACHABLE, INTERRUPTED_RESULT = (
    "delivered",
    "rejected",
    "unreachable",
    "interrupted",
)
AttemptListener = Callable[[Delivery, DeliveryAttempt, str], None]


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    timeout_seconds: float = defaults.WEBHOOK_TIMEOUT_SECONDS
    retry_schedule: tuple[float, ...] = defaults.WEBHOOK_RETRY_SCHEDULE_SECONDS
    allow_private: bool = False
    concurrency: int = defaults.WEBHOOK_CONCURRENCY
    # None when the store's events cannot be lost (one node); else a periodic look.
    safety_sweep_seconds: float | None = None

    @property
    def lease_seconds(self) -> float:
        return self.timeout_seconds + defaults.WEBHOOK_LEASE_MARGIN_SECONDS


def retry_delay(attempt: int, schedule: Sequence[float], rng: random.Random) -> float | None:
    """Seconds until the next try after attempt ``attempt`` (1 for the first) failed: the
    schedule's entry ``attempt - 1`` give or take the jitter; None once it is exhausted."""
    if attempt > len(schedule):
        return None
    jitter = defaults.WEBHOOK_RETRY_JITTER
    return schedule[attempt - 1] * rng.uniform(1 - jitter, 1 + jitter)


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        settings: DeliverySettings | None = None,
        *,
        sender: Sender | None = None,
        rng: random.Random | None = None,
        on_attempt: AttemptListener | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or DeliverySettings()
        self.sender = sender or Sender(
            self.settings.timeout_seconds,
            allow_private=self.settings.allow_private,
            max_connections=self.settings.concurrency,
        )
        self._rng = rng or random.Random()
        self._on_attempt = on_attempt
        self._wake = asyncio.Event()
        self._sends: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        store.events.on_delivery_ready(self._wake.set)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop claiming; let sends in flight finish briefly, then interrupt the rest (each is
        recorded as interrupted and due again at once, for a restart or another node)."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            await self._loop
            self._loop = None
        if self._sends:
            _, late = await asyncio.wait(
                set(self._sends), timeout=defaults.WEBHOOK_SHUTDOWN_GRACE_SECONDS
            )
            for send in late:
                send.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.sender.aclose()

    async def run_once(self) -> int:
        """Send what is due now and wait for those sends; how many there were."""
        sends = await self._claim_and_send()
        await asyncio.gather(*sends)
        return len(sends)

    # --- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before looking: a wake-up from now on is not lost
            try:
                claimed = await self._claim_and_send()
                delay = await self._idle_delay(claimed=bool(claimed))
            except Exception:
                log.exception("webhook delivery: the store failed; trying again shortly")
                delay = defaults.WEBHOOK_STORE_RETRY_SECONDS
            await self._sleep(delay)

    async def _claim_and_send(self) -> list[asyncio.Task[None]]:
        free = self.settings.concurrency - len(self._sends)
        if free <= 0 or self._stopping:
            return []
        claimed = await self.store.claim_deliveries(free, self.settings.lease_seconds)
        return [self._spawn(delivery) for delivery in claimed]

    def _spawn(self, delivery: Delivery) -> asyncio.Task[None]:
        send = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._sends.add(send)
        send.add_done_callback(self._sent)
        return send

    def _sent(self, send: asyncio.Task[None]) -> None:
        self._sends.discard(send)
        self._wake.set()  # a slot is free

    async def _idle_delay(self, *, claimed: bool) -> float | None:
        """How long to sleep unless woken: until the next due delivery, at most the safety
        sweep; with no free slot, until a send ends."""
        if len(self._sends) >= self.settings.concurrency:
            return None
        due = await self.store.next_delivery_due()
        delay = None if due is None else (due - self.store.now()).total_seconds()
        if delay is not None and delay <= 0 and not claimed:
            delay = defaults.WEBHOOK_RECHECK_SECONDS  # another node holds it for a moment
        sweep = self.settings.safety_sweep_seconds
        if sweep is not None:
            delay = sweep if delay is None else min(delay, sweep)
        return None if delay is None else max(delay, 0.0)

    async def _sleep(self, delay: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    # --- one delivery ----------------------------------------------------------------------
    async def _deliver(self, delivery: Delivery) -> None:
        try:
            attempt, answer = await self._attempt(delivery)
        except asyncio.CancelledError:
            await self._record_interrupted(delivery)
            raise
        except Exception:
            log.exception(
                "task %s: webhook %s could not be sent; it is due again when its lease ends",
                delivery.task_id,
                delivery.message_id,
                extra=_fields(delivery),
            )
            return
        self._heard(delivery, attempt, _result(answer))
        await self._settle(delivery, attempt, answer)

    def _heard(self, delivery: Delivery, attempt: DeliveryAttempt, result: str) -> None:
        if self._on_attempt is not None:
            self._on_attempt(delivery, attempt, result)

    async def _attempt(self, delivery: Delivery) -> tuple[DeliveryAttempt, Answer]:
        secrets = await self.store.webhook_secrets(delivery.project_id)
        body = signing.encode_body(delivery.payload)
        now = self.store.now()
        headers = signing.sign_headers([s.secret for s in secrets], delivery.message_id, body, now)
        started = time.monotonic()
        answer = await self.sender.send(delivery.url, headers, body.encode())
        duration_ms = round((time.monotonic() - started) * 1000)
        attempt = DeliveryAttempt(now, duration_ms, answer.http_status, answer.error, answer.body)
        return attempt, answer

    async def _settle(self, delivery: Delivery, attempt: DeliveryAttempt, answer: Answer) -> None:
        retry_at = None if answer.delivered else self._retry_at(delivery.attempts)
        try:
            await self.store.record_delivery_attempt(
                delivery, attempt, delivered=answer.delivered, retry_at=retry_at
            )
        except Exception:
            log.exception(
                "task %s: webhook %s: the attempt could not be recorded; it is due again "
                "when its lease ends",
                delivery.task_id,
                delivery.message_id,
                extra=_fields(delivery),
            )
            return
        if not answer.delivered:
            _log_failure(delivery, attempt, retry_at)

    def _retry_at(self, attempt: int) -> datetime | None:
        delay = retry_delay(attempt, self.settings.retry_schedule, self._rng)
        return None if delay is None else self.store.now() + timedelta(seconds=delay)

    async def _record_interrupted(self, delivery: Delivery) -> None:
        attempt = DeliveryAttempt(self.store.now(), 0, None, INTERRUPTED)
        self._heard(delivery, attempt, INTERRUPTED_RESULT)
        try:
            await self.store.record_delivery_attempt(
                delivery, attempt, delivered=False, retry_at=self.store.now()
            )
        except Exception:
            log.warning(
                "task %s: webhook %s was interrupted; it is due again when its lease ends",
                delivery.task_id,
                delivery.message_id,
                exc_info=True,
                extra=_fields(delivery),
            )


def _result(answer: Answer) -> str:
    if answer.delivered:
        return DELIVERED
    return UNREACHABLE if answer.http_status is None else REJECTED


def _log_failure(delivery: Delivery, attempt: DeliveryAttempt, retry_at: datetime | None) -> None:
    what = attempt.error or f"HTTP {attempt.http_status}"
    when = None if retry_at is None else retry_at.isoformat(timespec="seconds")
    then = "giving up" if when is None else f"retrying at {when}"
    log.log(
        logging.ERROR if retry_at is None else logging.WARNING,
        "task %s: webhook %s (%s) to %s failed on attempt %d (%s); %s",
        delivery.task_id,
        delivery.message_id,
        delivery.event,
        delivery.url,
        delivery.attempts,
        what,
        then,
        extra=_fields(delivery),
    )


def _fields(delivery: Delivery) -> dict[str, object]:
    fields = task_fields(
        task_id=delivery.task_id, session_id=delivery.session_id, project_id=delivery.project_id
    )
    return fields | {"webhook_id": delivery.message_id}
