"""Retention, on every backend: finished tasks past it go with their events, log and webhook
deliveries, oldest first and in batches; queued, running and still-to-be-announced tasks stay,
and so do their sessions' spending."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.store.conftest import ManualClock, new_task
from theazo.core import events
from theazo.core.errors import NotFound
from theazo.core.models import DeliveryAttempt, Outcome
from theazo.core.states import TaskStatus
from theazo.scheduler.maintenance import Pruner
from theazo.store import Store

HOOK = "https://hooks.example.com/theazo"
DAY = 86_400.0


async def _session(store: Store) -> tuple[str, str]:
    project = await store.create_project()
    return project, (await store.session_for_user(project, "u")).session_id


async def _run_to_end(store: Store, task_id: str, charged_micros: int = 0) -> None:
    (claimed,) = await store.claim("w1", 1)
    assert claimed.task.task_id == task_id
    line = [events.log_event("stdout", "working", store.now())]
    await store.report_progress(task_id, 1, 0.5, "half", 0, events=line, log_bytes=8)
    await store.finish(
        task_id, 1, Outcome(TaskStatus.COMPLETED, output={}, charged_micros=charged_micros)
    )


async def test_finished_tasks_past_the_cut_off_go_with_their_events_and_log(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    (old,) = await store.submit(project, sid, [new_task()])
    await _run_to_end(store, old.task_id, charged_micros=2_000_000)
    clock.advance(DAY)
    (recent,) = await store.submit(project, sid, [new_task()])
    await _run_to_end(store, recent.task_id)
    (waiting,) = await store.submit(project, sid, [new_task()])
    spent_before = (await store.session_spend(sid)).spent_micros

    clock.advance(DAY / 2)
    assert await store.prune_finished_tasks(store.now() - timedelta(days=1), 100) == 1

    with pytest.raises(NotFound):
        await store.get_task(project, sid, old.task_id)
    with pytest.raises(NotFound):
        await store.task_logs(project, sid, old.task_id, after=0, limit=10)
    kept = await store.task_logs(project, sid, recent.task_id, after=0, limit=10)
    assert [e.data["text"] for e in kept] == ["working"]
    assert (await store.get_task(project, sid, waiting.task_id)).status is TaskStatus.QUEUED
    # The session's stream goes on from where it was; its spending stays whole.
    assert await store.last_session_event(project, sid) > 0
    assert (await store.session_spend(sid)).spent_micros == spent_before
    assert await store.prune_finished_tasks(store.now() - timedelta(days=1), 100) == 0


async def test_pruning_takes_the_oldest_first_in_batches(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    submitted = await store.submit(project, sid, [new_task() for _ in range(5)])
    for task in submitted:
        await store.cancel(project, sid, task.task_id)
        clock.advance(1)

    assert await store.prune_finished_tasks(store.now(), 2) == 2
    left = [t.task_id for t in await store.list_tasks(project, sid, (), 10, None)]
    assert sorted(left) == sorted(t.task_id for t in submitted[2:])
    assert await store.prune_finished_tasks(store.now(), 0) == 0
    assert await store.prune_finished_tasks(store.now(), 10) == 3


async def test_a_webhook_still_to_send_keeps_its_task_until_it_settles(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    (hooked,) = await store.submit(project, sid, [new_task(webhook=HOOK)])
    await store.cancel(project, sid, hooked.task_id)
    clock.advance(DAY)
    assert await store.prune_finished_tasks(store.now(), 10) == 0

    (delivery,) = await store.claim_deliveries(10, 30.0)
    attempt = DeliveryAttempt(store.now(), 12, 200, None)
    await store.record_delivery_attempt(delivery, attempt, delivered=True, retry_at=None)
    assert await store.prune_finished_tasks(store.now(), 10) == 1
    with pytest.raises(NotFound):
        await store.deliveries_of_task(project, sid, hooked.task_id)


async def test_the_pruner_takes_a_backlog_batch_after_batch(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    for task in await store.submit(project, sid, [new_task() for _ in range(5)]):
        await store.cancel(project, sid, task.task_id)
    clock.advance(DAY + 1)
    pruner = Pruner(store, retention_seconds=DAY, batch=2)
    assert await pruner.prune() == 5
    assert await store.list_tasks(project, sid, (), 10, None) == []
