"""The store's contract, run against every backend (SQLite always, PostgreSQL when present)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.store.conftest import ManualClock, new_task
from theazo.core.errors import BudgetExhausted, InvalidTransition, LimitReached, NotFound
from theazo.core.models import Outcome, TaskError
from theazo.core.rates import RateLimits
from theazo.core.states import Priority, Scheduling, TaskStatus
from theazo.core.usage import ModelUsage, Tokens, UsageUpdate
from theazo.store import Store
from theazo.store.base import LimitsPatch

COMPLETED = Outcome(TaskStatus.COMPLETED, output={"ok": True})


async def _session(store: Store, user: str = "u") -> tuple[str, str]:
    project = await store.create_project()
    session = await store.session_for_user(project, user)
    return project, session.session_id


async def _claim_ids(store: Store, limit: int, worker: str = "w1") -> list[str]:
    return [c.task.task_id for c in await store.claim(worker, limit)]


async def test_claim_order_is_priority_then_submission(store: Store) -> None:
    project, sid = await _session(store)
    low, normal1, high, normal2 = await store.submit(
        project,
        sid,
        [new_task(priority=Priority.LOW), new_task(), new_task(priority=Priority.HIGH), new_task()],
    )
    assert await _claim_ids(store, 10) == [
        high.task_id,
        normal1.task_id,
        normal2.task_id,
        low.task_id,
    ]


async def test_fair_share_lets_a_late_session_in_within_one_turn(store: Store) -> None:
    project = await store.create_project()
    busy = (await store.session_for_user(project, "busy")).session_id
    late = (await store.session_for_user(project, "late")).session_id
    backlog = await store.submit(project, busy, [new_task() for _ in range(50)])
    assert await _claim_ids(store, 1) == [backlog[0].task_id]
    (single,) = await store.submit(project, late, [new_task()])

    next_two = await _claim_ids(store, 2)
    assert single.task_id in next_two


async def test_fifo_scheduling_is_strict_submission_order(open_store: Any) -> None:
    store = await open_store(scheduling=Scheduling.FIFO)
    project = await store.create_project()
    busy = (await store.session_for_user(project, "busy")).session_id
    late = (await store.session_for_user(project, "late")).session_id
    backlog = await store.submit(project, busy, [new_task() for _ in range(5)])
    (single,) = await store.submit(project, late, [new_task()])
    assert await _claim_ids(store, 10) == [t.task_id for t in [*backlog, single]]


async def test_priority_dominates_fairness(store: Store) -> None:
    project = await store.create_project()
    a = (await store.session_for_user(project, "a")).session_id
    b = (await store.session_for_user(project, "b")).session_id
    normal = await store.submit(project, a, [new_task() for _ in range(3)])
    (high,) = await store.submit(project, b, [new_task(priority=Priority.HIGH)])
    assert (await _claim_ids(store, 10))[0] == high.task_id
    del normal


async def test_session_running_limit_is_kept_and_skipped_not_waited_for(store: Store) -> None:
    project = await store.create_project()
    limited = (await store.session_for_user(project, "limited")).session_id
    other = (await store.session_for_user(project, "other")).session_id
    await store.set_session_limits(project, limited, LimitsPatch(max_running=1))
    mine = await store.submit(project, limited, [new_task() for _ in range(3)])
    (theirs,) = await store.submit(project, other, [new_task()])

    assert await _claim_ids(store, 10) == [mine[0].task_id, theirs.task_id]
    assert await _claim_ids(store, 10) == []
    await store.finish(mine[0].task_id, 1, COMPLETED)
    assert await _claim_ids(store, 10) == [mine[1].task_id]


async def test_queue_position_follows_claim_order(store: Store) -> None:
    project, sid = await _session(store)
    tasks = await store.submit(project, sid, [new_task() for _ in range(3)])
    assert [await store.queue_position(t) for t in tasks] == [0, 1, 2]
    await store.claim("w1", 1)
    assert await store.queue_position(tasks[2]) == 1


async def test_unfinished_tasks_are_counted_by_status_and_priority(store: Store) -> None:
    assert await store.unfinished_by_priority() == {}
    project, sid = await _session(store)
    other_project, other = await _session(store, "another user")
    await store.submit(project, sid, [new_task(priority=Priority.HIGH), new_task()])
    await store.submit(other_project, other, [new_task(priority=Priority.LOW) for _ in range(3)])
    (high,) = await store.claim("w1", 1)
    await store.submit(project, sid, [new_task(priority=Priority.HIGH)])
    assert await store.unfinished_by_priority() == {
        (TaskStatus.RUNNING, Priority.HIGH): 1,
        (TaskStatus.QUEUED, Priority.HIGH): 1,
        (TaskStatus.QUEUED, Priority.NORMAL): 1,
        (TaskStatus.QUEUED, Priority.LOW): 3,
    }
    await store.finish(high.task.task_id, high.task.attempt, COMPLETED)
    counts = await store.unfinished_by_priority()
    assert (TaskStatus.RUNNING, Priority.HIGH) not in counts
    assert sum(counts.values()) == 5


async def test_finish_is_recorded_once_and_never_overwritten(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    await store.claim("w1", 1)

    done = await store.finish(task.task_id, 1, COMPLETED)
    late = await store.finish(
        task.task_id, 1, Outcome(TaskStatus.FAILED, error=TaskError("agent_error", "late"))
    )

    assert done is not None and done.status is TaskStatus.COMPLETED
    assert late is None
    got = await store.get_task(project, sid, task.task_id)
    assert got.status is TaskStatus.COMPLETED and got.output == {"ok": True}


async def test_finish_after_cancel_is_dropped(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    await store.claim("w1", 1)
    cancelled = await store.cancel(project, sid, task.task_id)
    assert cancelled.status is TaskStatus.CANCELLED

    assert await store.finish(task.task_id, 1, COMPLETED) is None
    assert await store.report_progress(task.task_id, 1, 0.5, "late", 0) is None
    assert (await store.get_task(project, sid, task.task_id)).output is None


async def test_cancel_rules(store: Store) -> None:
    project, sid = await _session(store)
    queued, done = await store.submit(project, sid, [new_task(), new_task()])
    first = await store.cancel(project, sid, queued.task_id)
    again = await store.cancel(project, sid, queued.task_id)
    assert first.status is TaskStatus.CANCELLED and again == first
    assert first.started_at is None and first.finished_at is not None

    await store.claim("w1", 1)
    await store.finish(done.task_id, 1, COMPLETED)
    with pytest.raises(InvalidTransition):
        await store.cancel(project, sid, done.task_id)


async def test_rescue_requeues_with_retries_then_fails_worker_lost(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task(max_attempts=2)])
    await store.claim("w1", 1)
    clock.advance(store.settings.lease_seconds - 1)
    assert await store.rescue_lost_tasks() == []

    clock.advance(2)
    (requeued,) = await store.rescue_lost_tasks()
    assert requeued.status is TaskStatus.QUEUED and requeued.attempt == 1
    assert await store.finish(task.task_id, 1, COMPLETED) is None  # the lost attempt

    (claimed,) = await store.claim("w2", 1)
    assert claimed.task.attempt == 2
    clock.advance(store.settings.lease_seconds + 1)
    (lost,) = await store.rescue_lost_tasks()
    assert lost.status is TaskStatus.FAILED
    assert lost.error is not None and lost.error.code == "worker_lost"


async def test_one_heartbeat_holds_all_of_a_workers_tasks(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    a, b, c = await store.submit(project, sid, [new_task(), new_task(), new_task()])
    await store.register_worker("w1", "host", 1)
    await store.claim("w1", 2)
    await store.cancel(project, sid, b.task_id)
    assert await store.attempts_held("w1") == {a.task_id: 1}

    for _ in range(3):  # beats hold the task past several leases
        clock.advance(store.settings.lease_seconds - 1)
        assert await store.heartbeat("w1") is True
        assert await store.rescue_lost_tasks() == []

    clock.advance(store.settings.lease_seconds + 1)  # silent for a lease: all of it is lost
    (lost,) = await store.rescue_lost_tasks()
    assert lost.task_id == a.task_id and lost.status is TaskStatus.FAILED
    assert await store.attempts_held("w1") == {}
    assert c.task_id not in {t.task_id for t in await store.rescue_lost_tasks()}


async def test_a_worker_never_takes_its_own_tasks_for_lost(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    mine, theirs = await store.submit(project, sid, [new_task(), new_task()])
    await store.claim("me", 1)
    await store.claim("other", 1)
    clock.advance(store.settings.lease_seconds + 1)  # neither beat: both leases passed
    (rescued,) = await store.rescue_lost_tasks(alive_worker_id="me")
    assert rescued.task_id == theirs.task_id and rescued.status is TaskStatus.FAILED
    assert await store.attempts_held("me") == {mine.task_id: 1}


async def test_a_forgotten_worker_hears_so_from_its_heartbeat(store: Store) -> None:
    assert await store.heartbeat("never-registered") is False
    await store.register_worker("w", "host", 1)
    assert await store.heartbeat("w") is True


async def test_an_attempt_given_back_unstarted_is_as_if_never_claimed(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task(max_attempts=1)])
    await store.claim("w1", 1)
    released = await store.release(task.task_id, 1, started=False)
    assert released is not None and released.status is TaskStatus.QUEUED
    assert released.attempt == 0 and released.worker_id is None
    session = await store.get_session(project, sid)
    assert (session.queued_count, session.running_count) == (1, 0)
    assert await store.release(task.task_id, 1, started=False) is None  # already given back
    (again,) = await store.claim("w2", 1)
    assert again.task.attempt == 1  # its one attempt is still its own


async def test_an_attempt_given_back_started_is_lost_with_its_worker(store: Store) -> None:
    project, sid = await _session(store)
    retried, final = await store.submit(project, sid, [new_task(max_attempts=2), new_task()])
    await store.claim("w1", 2)
    requeued = await store.release(retried.task_id, 1, started=True)
    assert requeued is not None and requeued.status is TaskStatus.QUEUED
    assert requeued.attempt == 1
    failed = await store.release(final.task_id, 1, started=True)
    assert failed is not None and failed.status is TaskStatus.FAILED
    assert failed.error is not None and failed.error.code == "worker_lost"
    assert "could not record how it ended" in failed.error.message
    assert await store.finish(final.task_id, 1, COMPLETED) is None
    session = await store.get_session(project, sid)
    assert (session.queued_count, session.running_count) == (1, 0)


async def test_running_tasks_without_a_worker_row_are_rescued_when_asked(
    store: Store,
) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    await store.claim("w1", 1)
    async with store.transaction():  # type: ignore[attr-defined]
        await store._one("delete_worker", worker_id="w1")  # type: ignore[attr-defined]
    assert await store.rescue_lost_tasks() == []
    (orphan,) = await store.rescue_lost_tasks(orphans=True)
    assert orphan.task_id == task.task_id and orphan.status is TaskStatus.FAILED


async def test_a_worker_leaving_settles_what_it_still_runs(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    await store.claim("w1", 1)
    await store.remove_worker("w1")
    lost = await store.get_task(project, sid, task.task_id)
    assert lost.status is TaskStatus.FAILED
    assert (await store.get_session(project, sid)).running_count == 0


async def test_dead_workers_tasks_are_rescued_at_once(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    await store.register_worker("old", "host", 1)
    await store.claim("old", 1)
    assert await store.other_workers("new") == ["old"]
    (lost,) = await store.rescue_lost_tasks(["old"])
    assert lost.task_id == task.task_id and lost.status is TaskStatus.FAILED
    assert await store.other_workers("new") == []


async def test_idempotency_key_returns_the_first_task(store: Store) -> None:
    project, sid = await _session(store)
    (first,) = await store.submit(project, sid, [new_task(key="k")])
    (again,) = await store.submit(project, sid, [new_task(key="k", payload="other")])
    assert again.task_id == first.task_id and again.input is None
    session = await store.get_session(project, sid)
    assert session.task_count == 1 and session.queued_count == 1


async def test_queue_limit_refuses_the_whole_batch(store: Store) -> None:
    project, sid = await _session(store)
    await store.set_session_limits(project, sid, LimitsPatch(max_queued=3))
    await store.submit(project, sid, [new_task(), new_task()])
    with pytest.raises(LimitReached) as caught:
        await store.submit(project, sid, [new_task(), new_task()])
    assert caught.value.code == "session_queue_full"
    assert (await store.get_session(project, sid)).queued_count == 2


async def test_budget_refuses_submits_once_spent(store: Store) -> None:
    project, sid = await _session(store)
    await store.set_session_limits(project, sid, LimitsPatch(budget=5))
    (task,) = await store.submit(project, sid, [new_task()])
    await store.claim("w1", 1)
    await store.report_progress(task.task_id, 1, None, None, 5_000_000)
    with pytest.raises(BudgetExhausted):
        await store.submit(project, sid, [new_task()])


async def test_costs_and_counters_add_up(open_store: Any, clock: ManualClock) -> None:
    store = await open_store(compute_price_micros=2_000_000)  # 2 cents a second
    project, sid = await _session(store)
    a, b = await store.submit(project, sid, [new_task(), new_task()])
    await store.claim("w1", 2)
    await store.report_progress(a.task_id, 1, 0.5, "half", 1_250_000)
    clock.advance(1.5)
    done = await store.finish(a.task_id, 1, Outcome(TaskStatus.COMPLETED, charged_micros=250_000))
    cancelled = await store.cancel(project, sid, b.task_id)

    assert done is not None
    assert done.compute_micros == 3_000_000 and done.charged_micros == 1_500_000
    assert done.cost_at(clock.now()).amount == 5  # 4.5 rounds half up
    assert cancelled.cost_at(clock.now()).amount == 3
    session = await store.get_session(project, sid)
    assert session.spent_micros == 7_500_000
    assert session.billed_amount == 8
    assert (session.queued_count, session.running_count, session.task_count) == (0, 0, 2)


async def test_events_fire_after_commit_and_not_after_a_refusal(store: Store) -> None:
    seen: list[str] = []
    store.events.on_work_available(lambda: seen.append("work"))
    project, sid = await _session(store)
    await store.set_session_limits(project, sid, LimitsPatch(max_queued=1))
    seen.clear()
    await store.submit(project, sid, [new_task()])
    assert seen == ["work"]
    with pytest.raises(LimitReached):
        await store.submit(project, sid, [new_task()])
    assert seen == ["work"]


async def test_tenancy_every_lookup_is_scoped_to_the_project(store: Store) -> None:
    project, sid = await _session(store)
    other_project = await store.create_project()
    (task,) = await store.submit(project, sid, [new_task()])
    with pytest.raises(NotFound):
        await store.get_session(other_project, sid)
    with pytest.raises(NotFound):
        await store.get_task(other_project, sid, task.task_id)
    with pytest.raises(NotFound):
        await store.cancel(other_project, sid, task.task_id)
    with pytest.raises(NotFound):
        await store.submit(other_project, sid, [new_task()])


async def test_keys_are_found_by_hash_only(store: Store) -> None:
    project = await store.create_project()
    await store.add_api_key(project, "a" * 64, "th_live_…abcd")
    assert await store.project_for_key("a" * 64) == project
    assert await store.project_for_key("b" * 64) is None
    assert await store.count_api_keys() == 1


async def test_a_batch_keeps_order_inputs_and_repeated_keys(store: Store) -> None:
    project, sid = await _session(store)
    inputs: list[Any] = [None, {"b": 1, "a": [1, 2.5, "x", None]}, "héllo ✓", [], 0, False]
    batch = [new_task(payload=value) for value in inputs]
    batch.insert(2, new_task(key="same", payload="first"))
    batch.append(new_task(key="same", payload="second"))

    tasks = await store.submit(project, sid, batch)

    assert [t.input for t in tasks] == [*inputs[:2], "first", *inputs[2:], "first"]
    assert tasks[2].task_id == tasks[-1].task_id
    assert [t.id for t in tasks[:-1]] == sorted(t.id for t in tasks[:-1])
    assert (await store.get_session(project, sid)).task_count == len(inputs) + 1


async def test_workers_silent_for_long_are_forgotten(store: Store, clock: ManualClock) -> None:
    await store.register_worker("old", "host", 1)
    clock.advance(60)
    await store.register_worker("new", "host", 2)
    assert await store.forget_silent_workers(store.now() - timedelta(seconds=30)) == 1
    assert await store.other_workers("nobody") == ["new"]


async def test_a_silent_worker_is_not_forgotten_while_it_holds_tasks(
    store: Store, clock: ManualClock
) -> None:
    project, sid = await _session(store)
    await store.submit(project, sid, [new_task()])
    await store.claim("old", 1)
    clock.advance(60)
    assert await store.forget_silent_workers(store.now() - timedelta(seconds=30)) == 0
    await store.rescue_lost_tasks()
    assert await store.forget_silent_workers(store.now() - timedelta(seconds=30)) == 1


async def test_budgets_and_spend_are_read_per_session(open_store: Any, clock: ManualClock) -> None:
    store = await open_store(compute_price_micros=500_000)  # half a cent a second
    project, sid = await _session(store)
    other = (await store.session_for_user(project, "other")).session_id
    await store.set_session_limits(project, sid, LimitsPatch(budget=100))
    assert await store.session_budgets([sid, other, "sess_unknown"]) == {sid: 100, other: None}
    assert await store.session_budgets([]) == {}

    (task,) = await store.submit(project, sid, [new_task()])
    await store.claim("w1", 1)
    await store.report_progress(task.task_id, 1, None, None, 3_000_000)
    clock.advance(2)
    spend = await store.session_spend(sid)
    assert spend.budget == 100
    assert spend.compute_rate_micros == 500_000
    assert spend.spent_micros == 3_000_000 + 2 * 500_000
    assert (await store.session_spend(other)).spent_micros == 0


async def test_model_usage_is_kept_by_task_and_summed_by_session(store: Store) -> None:
    project, sid = await _session(store)
    a, b = await store.submit(project, sid, [new_task(), new_task()])
    await store.claim("w1", 2)
    first = ModelUsage().add("gpt-4o-mini", Tokens(100, 20, 40))
    reported = await store.report_progress(
        a.task_id, 1, None, None, 1_000, usage=UsageUpdate(first, Tokens(100, 20, 40))
    )
    assert reported is not None and reported.usage == first
    # A report without usage leaves it as it is.
    reported = await store.report_progress(a.task_id, 1, 0.5, None, 0)
    assert reported is not None and reported.usage == first
    both = first.add("claude-3-5-haiku", Tokens(10, 5, 0))
    done = await store.finish(
        a.task_id, 1, Outcome(TaskStatus.COMPLETED, usage=UsageUpdate(both, Tokens(10, 5, 0)))
    )
    assert done is not None and done.usage == both
    assert done.usage.tokens == Tokens(110, 25, 40)
    await store.finish(
        b.task_id,
        1,
        Outcome(
            TaskStatus.COMPLETED,
            usage=UsageUpdate(ModelUsage().add("gpt-4o-mini", Tokens(1, 1)), Tokens(1, 1)),
        ),
    )
    got = await store.get_task(project, sid, a.task_id)
    assert got.usage.as_json() == {
        "claude-3-5-haiku": {"input": 10, "output": 5, "cached": 0},
        "gpt-4o-mini": {"input": 100, "output": 20, "cached": 40},
    }
    session = await store.get_session(project, sid)
    assert session.tokens == Tokens(111, 26, 40)
    assert session.spent_micros == 1_000


async def test_a_task_without_model_calls_has_no_usage(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    assert not task.usage and task.usage.tokens == Tokens()
    session = await store.get_session(project, sid)
    assert session.tokens == Tokens()


async def test_model_calls_are_counted_per_session_in_a_sliding_minute(
    store: Store, clock: ManualClock
) -> None:
    limits = RateLimits(requests_per_minute=2, tokens_per_minute=100)
    assert await store.count_model_call("s1", limits) is None
    clock.advance(10)
    assert await store.count_model_call("s1", limits) is None
    refused = await store.count_model_call("s1", limits)
    assert refused is not None and refused.retry_after_seconds == 50
    assert await store.count_model_call("s2", limits) is None  # each session its own
    await store.count_model_tokens("s2", limits, 150)
    refused = await store.count_model_call("s2", limits)
    assert refused is not None and "150 tokens" in refused.reason
    clock.advance(50)  # the first call of s1 has left its minute
    assert await store.count_model_call("s1", limits) is None
    assert await store.count_model_call("s1", limits) is not None
    clock.advance(60)
    assert await store.count_model_call("s2", limits) is None
