"""Task events in the store, on every backend: each task's events numbered from 1 in the order
they happened, the session's status and progress events numbered again in the session's order,
each event told to subscribers only after its commit, and read back from any id."""

from __future__ import annotations

from tests.store.conftest import ManualClock, new_task
from theazo.core import events
from theazo.core.errors import NotFound
from theazo.core.events import TaskEvent
from theazo.core.models import Outcome, TaskError
from theazo.core.states import TaskStatus
from theazo.store import Store


async def _session(store: Store, user: str = "u") -> tuple[str, str]:
    project = await store.create_project()
    return project, (await store.session_for_user(project, user)).session_id


def _shape(found: list[TaskEvent]) -> list[tuple[int, str, str | None]]:
    """(id, kind, status shown) of each event."""
    return [(e.seq, e.kind, None if e.task is None else e.task.status.value) for e in found]


async def test_a_task_life_is_numbered_from_one(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task(payload={"q": 1})])
    await store.claim("w1", 1)
    reported = [
        events.progress_event(0.5, "half", clock.now()),
        events.log_event("stdout", "hello", clock.now()),
        events.charge_event(1_500_000, "tokens", 1_500_000, clock.now()),
    ]
    saved = await store.report_progress(
        task.task_id, 1, 0.5, "half", 1_500_000, events=reported, log_bytes=6
    )
    assert saved is not None and saved.log_bytes == 6
    await store.finish(task.task_id, 1, Outcome(TaskStatus.COMPLETED, output={"ok": True}))

    current, found = await store.task_events(project, sid, task.task_id, after=0, limit=100)
    assert _shape(found) == [
        (1, "status", "queued"),
        (2, "status", "running"),
        (3, "progress", None),
        (4, "log", None),
        (5, "charge", None),
        (6, "status", "completed"),
        (7, "end", "completed"),
    ]
    assert current.event_seq == 7
    queued, running = found[0].task, found[1].task
    assert queued is not None and queued.input == {"q": 1} and queued.output is None
    assert running is not None and running.started_at is not None and running.progress is None
    assert found[2].data == {"progress": 0.5, "message": "half"}
    assert found[3].data == {"stream": "stdout", "text": "hello"}
    assert found[4].data["description"] == "tokens"
    assert found[6].task is not None and found[6].task.output == {"ok": True}

    _, rest = await store.task_events(project, sid, task.task_id, after=4, limit=2)
    assert [e.seq for e in rest] == [5, 6]
    logs = await store.task_logs(project, sid, task.task_id, after=0, limit=10)
    assert [(e.seq, e.data["text"]) for e in logs] == [(4, "hello")]


async def test_the_session_stream_interleaves_its_tasks(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    first, second = await store.submit(project, sid, [new_task(), new_task()])
    await store.claim("w1", 2)
    await store.report_progress(
        second.task_id, 1, 0.1, None, 0, events=[events.progress_event(0.1, None, clock.now())]
    )
    await store.report_progress(  # a log is not a session event
        first.task_id, 1, None, None, 0, events=[events.log_event("stderr", "x", clock.now())]
    )
    await store.cancel(project, sid, first.task_id)

    found = await store.session_events(project, sid, after=0, limit=100)
    assert [(e.session_seq, e.task_id, e.kind) for e in found] == [
        (1, first.task_id, "status"),
        (2, second.task_id, "status"),
        (3, first.task_id, "status"),
        (4, second.task_id, "status"),
        (5, second.task_id, "progress"),
        (6, first.task_id, "status"),
    ]
    assert found[-1].task is not None and found[-1].task.status is TaskStatus.CANCELLED
    assert await store.last_session_event(project, sid) == 6
    later = await store.session_events(project, sid, after=4, limit=100)
    assert [e.session_seq for e in later] == [5, 6]


async def test_subscribers_hear_each_event_once_after_its_commit(store: Store) -> None:
    project, sid = await _session(store)
    by_session = store.events.subscribe(session_id=sid)
    (task,) = await store.submit(project, sid, [new_task()])
    by_task = store.events.subscribe(task_id=task.task_id)
    await store.claim("w1", 1)
    await store.finish(
        task.task_id, 1, Outcome(TaskStatus.FAILED, error=TaskError("agent_error", "no"))
    )

    assert [(e.session_seq, e.kind) for e in by_session.take()[0]] == [
        (1, "status"),
        (2, "status"),
        (3, "status"),
    ]
    told, must_read = by_task.take()
    assert [(e.seq, e.kind) for e in told] == [(2, "status"), (3, "status"), (4, "end")]
    assert not must_read
    by_task.close()
    by_session.close()
    assert store.events.subscription_count == 0


async def test_a_requeued_task_shows_each_attempt(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task(max_attempts=2)])
    await store.claim("w1", 1)
    clock.advance(3600)
    await store.rescue_lost_tasks()
    _, found = await store.task_events(project, sid, task.task_id, after=0, limit=10)
    assert _shape(found) == [
        (1, "status", "queued"),
        (2, "status", "running"),
        (3, "status", "queued"),
    ]
    assert [e.task.attempt for e in found if e.task] == [0, 1, 1]


async def test_logs_after_the_end_are_kept(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    (claimed,) = await store.claim("w1", 1)
    await store.cancel(project, sid, task.task_id)
    assert await store.report_progress(task.task_id, 1, 0.5, None, 0) is None
    late = [events.log_event("stderr", "stopping", clock.now())]
    await store.append_logs(claimed.task, late, log_bytes=9)
    logs = await store.task_logs(project, sid, task.task_id, after=0, limit=10)
    assert [(e.seq, e.data["text"]) for e in logs] == [(5, "stopping")]
    assert (await store.get_task(project, sid, task.task_id)).log_bytes == 9


async def test_another_project_reads_no_events(store: Store) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    other = await store.create_project()
    for read in (
        store.task_events(other, sid, task.task_id, 0, 10),
        store.task_logs(other, sid, task.task_id, 0, 10),
        store.session_events(other, sid, 0, 10),
    ):
        try:
            await read
        except NotFound:
            continue
        raise AssertionError("another project read the events")


async def test_the_deployment_secret_is_made_once(store: Store) -> None:
    first = await store.deployment_secret("stream-tokens")
    assert await store.deployment_secret("stream-tokens") == first
    assert await store.deployment_secret("other") != first


async def test_a_run_last_reports_come_before_its_end(store: Store, clock: ManualClock) -> None:
    project, sid = await _session(store)
    (task,) = await store.submit(project, sid, [new_task()])
    await store.claim("w1", 1)
    last = (
        events.progress_event(1.0, "done", clock.now()),
        events.log_event("stdout", "bye", clock.now()),
    )
    outcome = Outcome(TaskStatus.COMPLETED, output=1, events=last, log_bytes=4)
    finished = await store.finish(task.task_id, 1, outcome)
    assert finished is not None and finished.log_bytes == 4
    _, found = await store.task_events(project, sid, task.task_id, after=2, limit=10)
    assert [(e.seq, e.kind) for e in found] == [
        (3, "progress"),
        (4, "log"),
        (5, "status"),
        (6, "end"),
    ]
    in_session = await store.session_events(project, sid, after=2, limit=10)
    assert [(e.session_seq, e.kind) for e in in_session] == [(3, "progress"), (4, "status")]
