"""The webhook outbox, on every backend: written with the event, leased, retried, settled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.store.conftest import ManualClock, new_task
from theazo.core.errors import InvalidTransition, NotFound
from theazo.core.models import DeliveryAttempt, Outcome
from theazo.core.states import TaskStatus
from theazo.store import Store

HOOK = "https://receiver.example/hook"
LEASE = 30.0


async def _session(store: Store) -> tuple[str, str]:
    project = await store.create_project()
    return project, (await store.session_for_user(project, "u")).session_id


def _attempt(store: Store, status: int | None = 200) -> DeliveryAttempt:
    return DeliveryAttempt(store.now(), 12, status, None if status else "connection refused")


async def test_a_terminal_task_with_a_webhook_queues_one_delivery(store: Store) -> None:
    project, sid = await _session(store)
    hooked, plain = await store.submit(project, sid, [new_task(webhook=HOOK), new_task()])
    await store.claim("w", 2)
    await store.finish(hooked.task_id, 1, Outcome(TaskStatus.COMPLETED, output={"a": 1}))
    await store.finish(plain.task_id, 1, Outcome(TaskStatus.COMPLETED))

    (delivery,) = await store.claim_deliveries(10, LEASE)
    assert delivery.task_id == hooked.task_id and delivery.url == HOOK
    assert delivery.event == "completed" and delivery.attempts == 1
    assert delivery.payload == {
        "taskId": hooked.task_id,
        "sessionId": sid,
        "status": "completed",
        "output": {"a": 1},
        "error": None,
        "cost": {"amount": 0, "currency": "usd"},
        "completedAt": delivery.payload["completedAt"],
    }
    assert delivery.message_id.startswith("msg_")


async def test_cancel_and_lost_tasks_announce_their_end(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    queued, _running = await store.submit(
        project, sid, [new_task(webhook=HOOK), new_task(webhook=HOOK)]
    )
    await store.cancel(project, sid, queued.task_id)
    await store.claim("w", 1)
    clock.advance(store.settings.lease_seconds + 1)
    await store.rescue_lost_tasks()

    deliveries = await store.claim_deliveries(10, LEASE)
    assert sorted(d.payload["status"] for d in deliveries) == ["cancelled", "failed"]
    lost = next(d for d in deliveries if d.payload["status"] == "failed")
    assert lost.payload["error"]["code"] == "worker_lost"


async def test_started_and_progress_events_are_opt_in(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(
        project, sid, [new_task(webhook=HOOK, events=("started", "progress"))]
    )
    await store.claim("w", 1)
    await store.report_progress(task.task_id, 1, 0.5, "half", 0, announce=True)
    await store.report_progress(task.task_id, 1, 0.6, "more", 0)  # not announced
    await store.finish(task.task_id, 1, Outcome(TaskStatus.COMPLETED))

    deliveries = await store.claim_deliveries(10, LEASE)
    assert [d.event for d in deliveries] == ["started", "progress"]
    assert deliveries[1].payload["progress"] == 0.5
    assert deliveries[1].payload["message"] == "half"


async def test_a_leased_delivery_is_not_sent_twice_until_its_lease_ends(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task(webhook=HOOK)])
    await store.cancel(project, sid, task.task_id)

    (first,) = await store.claim_deliveries(10, LEASE)
    assert await store.claim_deliveries(10, LEASE) == []
    clock.advance(LEASE + 1)  # the sender died mid-attempt
    (again,) = await store.claim_deliveries(10, LEASE)
    assert again.message_id == first.message_id and again.attempts == 2


async def test_attempts_are_recorded_until_delivered_or_given_up(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    ok, doomed = await store.submit(project, sid, [new_task(webhook=HOOK), new_task(webhook=HOOK)])
    for task in (ok, doomed):
        await store.cancel(project, sid, task.task_id)
    first_ok, first_doomed = await store.claim_deliveries(10, LEASE)
    retry_at = store.now() + timedelta(seconds=5)
    await store.record_delivery_attempt(
        first_ok, _attempt(store, 500), delivered=False, retry_at=retry_at
    )
    await store.record_delivery_attempt(
        first_doomed, _attempt(store, None), delivered=False, retry_at=None
    )
    assert await store.next_delivery_due() == retry_at
    clock.advance(6)
    (second,) = await store.claim_deliveries(10, LEASE)
    await store.record_delivery_attempt(second, _attempt(store), delivered=True, retry_at=None)

    (delivered,) = await store.deliveries_of_task(project, sid, ok.task_id)
    assert delivered.status == "delivered" and delivered.delivered_at is not None
    assert [a.http_status for a in delivered.history] == [500, 200]
    (given_up,) = await store.deliveries_of_task(project, sid, doomed.task_id)
    assert given_up.status == "failed" and given_up.history[0].error == "connection refused"
    assert await store.next_delivery_due() is None


async def test_redeliver_sends_the_final_payload_again(store: Store) -> None:
    project, sid = await _session(store)
    running, done = await store.submit(
        project, sid, [new_task(webhook=HOOK), new_task(webhook=HOOK)]
    )
    await store.claim("w", 2)
    await store.finish(done.task_id, 1, Outcome(TaskStatus.COMPLETED, output=7))
    (sent,) = await store.claim_deliveries(10, LEASE)
    await store.record_delivery_attempt(sent, _attempt(store), delivered=True, retry_at=None)

    again = await store.redeliver(project, sid, done.task_id)
    assert again.status == "pending" and again.message_id == sent.message_id
    (resent,) = await store.claim_deliveries(10, LEASE)
    assert resent.payload == sent.payload
    with pytest.raises(InvalidTransition):
        await store.redeliver(project, sid, running.task_id)


async def test_secrets_rotate_with_an_overlap(store: Store, clock: ManualClock) -> None:
    project = await store.create_project()
    (first,) = await store.webhook_secrets(project)
    assert first.secret.startswith("whsec_") and first.expires_at is None
    assert await store.webhook_secrets(project) == [first]

    new, old = await store.rotate_webhook_secret(project, overlap_seconds=60)
    assert old.secret == first.secret and old.expires_at is not None
    assert new.secret != first.secret and new.expires_at is None
    clock.advance(61)
    assert await store.webhook_secrets(project) == [new]


async def test_deliveries_are_scoped_to_the_project(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task(webhook=HOOK)])
    other = await store.create_project()
    with pytest.raises(NotFound):
        await store.deliveries_of_task(other, sid, task.task_id)
    with pytest.raises(NotFound):
        await store.redeliver(other, sid, task.task_id)
