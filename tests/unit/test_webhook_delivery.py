"""The delivery worker against a real receiver on 127.0.0.1 and a store on a temp SQLite file:
what it sends, what it records, when it retries, and what it refuses."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.receiver import Receiver, Reply
from theazo import __version__
from theazo.core import defaults
from theazo.core.models import Delivery, NewTask
from theazo.core.states import Priority
from theazo.store import Store, StoreSettings, create_store
from theazo.webhooks.delivery import DeliverySettings, DeliveryWorker, retry_delay
from theazo.webhooks.sender import Sender

LOCAL = DeliverySettings(timeout_seconds=2, allow_private=True)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = create_store(f"sqlite:///{tmp_path / 'theazo.db'}", StoreSettings())
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


@pytest.fixture
async def workers(store: Store) -> AsyncIterator[list[DeliveryWorker]]:
    made: list[DeliveryWorker] = []
    yield made
    for worker in made:
        await worker.stop()


def worker_of(
    store: Store, made: list[DeliveryWorker], settings: DeliverySettings
) -> DeliveryWorker:
    worker = DeliveryWorker(store, settings)
    made.append(worker)
    return worker


async def cancelled_task(store: Store, url: str) -> tuple[str, str, str]:
    """A task with a webhook, cancelled at once: its final webhook is due now."""
    project = await store.create_project()
    session = await store.session_for_user(project, "user")
    new = NewTask("echo", None, Priority.NORMAL, 60, 1, webhook_url=url)
    (task,) = await store.submit(project, session.session_id, [new])
    await store.cancel(project, session.session_id, task.task_id)
    return project, session.session_id, task.task_id


async def only_delivery(store: Store, ids: tuple[str, str, str]) -> Delivery:
    (delivery,) = await store.deliveries_of_task(*ids)
    return delivery


async def test_a_delivery_is_signed_sent_and_recorded(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    ids = await cancelled_task(store, receiver.url("/hook"))

    assert await worker_of(store, workers, LOCAL).run_once() == 1

    (request,) = receiver.received("/hook")
    (secret,) = await store.webhook_secrets(ids[0])
    assert request.verify(secret.secret)["status"] == "cancelled"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"theazo-webhooks/{__version__}"
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    delivery = await only_delivery(store, ids)
    assert delivery.status == "delivered" and delivery.message_id == request.message_id
    (attempt,) = delivery.history
    assert attempt.http_status == 200 and attempt.error is None and attempt.duration_ms >= 0


async def test_a_private_address_is_refused_at_delivery_time_too(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    # Accepted at submit (say the name then resolved to a public address); now it is local.
    ids = await cancelled_task(store, receiver.url("/rebound"))

    await worker_of(store, workers, DeliverySettings(timeout_seconds=2)).run_once()

    assert receiver.received() == []
    delivery = await only_delivery(store, ids)
    (attempt,) = delivery.history
    assert attempt.http_status is None and "not a public address" in (attempt.error or "")
    assert delivery.status == "pending"  # retried on the schedule: DNS may change back


async def test_a_failure_is_retried_on_the_schedule_with_jitter(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    receiver.script("/flaky", Reply(503))
    ids = await cancelled_task(store, receiver.url("/flaky"))
    before = store.now()

    await worker_of(store, workers, LOCAL).run_once()

    delivery = await only_delivery(store, ids)
    assert delivery.status == "pending" and delivery.history[0].http_status == 503
    assert delivery.next_attempt_at is not None
    first = defaults.WEBHOOK_RETRY_SCHEDULE_SECONDS[0]
    waited = delivery.next_attempt_at - before
    assert timedelta(seconds=first * 0.9) <= waited <= timedelta(seconds=first * 1.1 + 1)


async def test_after_the_schedule_the_delivery_fails(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    receiver.script("/down", Reply(500))
    ids = await cancelled_task(store, receiver.url("/down"))

    await worker_of(store, workers, DeliverySettings(2, (), allow_private=True)).run_once()

    delivery = await only_delivery(store, ids)
    assert delivery.status == "failed" and delivery.next_attempt_at is None


async def test_redirects_are_not_followed(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    receiver.script("/moved", Reply(302))
    ids = await cancelled_task(store, receiver.url("/moved"))

    await worker_of(store, workers, LOCAL).run_once()

    assert [r.path for r in receiver.received()] == ["/moved"]
    (attempt,) = (await only_delivery(store, ids)).history
    assert attempt.http_status == 302 and "not followed" in (attempt.error or "")


async def test_only_the_start_of_an_answer_is_read(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    receiver.script("/chatty", Reply(200, b"x" * (1024 * 1024)))
    ids = await cancelled_task(store, receiver.url("/chatty"))

    await worker_of(store, workers, LOCAL).run_once()

    delivery = await only_delivery(store, ids)
    assert delivery.status == "delivered"
    assert len(delivery.history[0].response_body or "") == defaults.WEBHOOK_MAX_RESPONSE_BYTES


async def test_a_receiver_that_does_not_answer_in_time_is_a_time_out(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    receiver.script("/slow", Reply(hang_seconds=10))
    ids = await cancelled_task(store, receiver.url("/slow"))

    await worker_of(store, workers, DeliverySettings(0.3, allow_private=True)).run_once()

    (attempt,) = (await only_delivery(store, ids)).history
    assert attempt.http_status is None and attempt.error == "no answer within 0.3s"
    assert 250 <= attempt.duration_ms < 2000


async def test_the_running_worker_wakes_on_new_deliveries_and_on_due_retries(
    store: Store, receiver: Receiver, workers: list[DeliveryWorker]
) -> None:
    worker = worker_of(store, workers, DeliverySettings(2, (0.2,), allow_private=True))
    worker.start()
    receiver.script("/again", Reply(500))

    await cancelled_task(store, receiver.url("/again"))

    first, second = await receiver.arrival("/again", count=2, timeout=5)
    assert first.message_id == second.message_id
    assert second.arrived_at - first.arrived_at >= 0.15


async def test_a_send_cut_short_by_stop_is_due_again_at_once(
    store: Store,
    receiver: Receiver,
    workers: list[DeliveryWorker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(defaults, "WEBHOOK_SHUTDOWN_GRACE_SECONDS", 0.1)
    receiver.script("/stuck", Reply(hang_seconds=10))
    worker = worker_of(store, workers, LOCAL)
    worker.start()
    ids = await cancelled_task(store, receiver.url("/stuck"))
    await receiver.arrival("/stuck")

    await worker.stop()

    delivery = await only_delivery(store, ids)
    assert delivery.status == "pending" and "interrupted" in (delivery.history[0].error or "")
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at <= store.now()


def test_attempt_n_waits_for_the_nth_entry_of_the_schedule_give_or_take_ten_percent() -> None:
    rng = random.Random(7)
    schedule = (5.0, 30.0, 120.0)
    for attempt, base in enumerate(schedule, start=1):
        for _ in range(50):
            delay = retry_delay(attempt, schedule, rng)
            assert delay is not None and base * 0.9 <= delay <= base * 1.1
    assert retry_delay(4, schedule, rng) is None


@pytest.mark.parametrize(
    ("url", "sni"),
    [
        ("https://hooks.example.com:8443/in?x=1", "hooks.example.com"),
        ("http://hooks.example.com/in", None),
    ],
)
async def test_a_request_goes_to_the_checked_address_under_the_hosts_name(
    url: str, sni: str | None
) -> None:
    sender = Sender()
    try:
        request = sender.pinned_request(
            httpx.URL(url), ipaddress.ip_address("93.184.216.34"), {"webhook-id": "m"}, b"{}"
        )
    finally:
        await sender.aclose()

    assert request.url.host == "93.184.216.34"
    assert request.url.path == "/in" and request.url.port == httpx.URL(url).port
    assert request.headers["host"] == httpx.URL(url).netloc.decode()
    assert request.extensions.get("sni_hostname") == sni
    assert request.headers["webhook-id"] == "m"
