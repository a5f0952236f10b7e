"""What the dashboard reads (store/project_reads.py), on every backend: a project's tasks
across its sessions with each filter, its sessions, its queue at a glance, the nodes, and a
task's timeline; never anything of another project."""

from __future__ import annotations

from datetime import timedelta

from tests.store.conftest import ManualClock, new_task
from theazo.core.models import Outcome, TaskError
from theazo.core.states import Priority, TaskStatus
from theazo.store import Store
from theazo.store.base import TaskQuery


async def test_a_projects_tasks_across_its_sessions_newest_first(
    store: Store, clock: ManualClock
) -> None:
    project = await store.create_project()
    alice = (await store.session_for_user(project, "alice")).session_id
    bob = (await store.session_for_user(project, "bob")).session_id
    (a1,) = await store.submit(project, alice, [new_task("echo")])
    clock.advance(60)
    (b1,) = await store.submit(project, bob, [new_task("noop", Priority.HIGH)])
    clock.advance(60)
    (a2,) = await store.submit(project, alice, [new_task("echo", Priority.LOW)])
    (running,) = await store.claim("w1", 1)  # b1: high goes first
    other = await store.create_project()
    stranger = (await store.session_for_user(other, "alice")).session_id
    await store.submit(other, stranger, [new_task("echo")])

    async def ids(
        query: TaskQuery = TaskQuery(), limit: int = 10, before: int | None = None
    ) -> list[str]:
        return [t.task_id for t in await store.list_project_tasks(project, query, limit, before)]

    assert running.task.task_id == b1.task_id
    assert await ids() == [a2.task_id, b1.task_id, a1.task_id]
    assert await ids(TaskQuery(statuses=(TaskStatus.QUEUED,))) == [a2.task_id, a1.task_id]
    assert await ids(TaskQuery(statuses=(TaskStatus.RUNNING, TaskStatus.FAILED))) == [b1.task_id]
    assert await ids(TaskQuery(agent="noop")) == [b1.task_id]
    assert await ids(TaskQuery(session_id=alice)) == [a2.task_id, a1.task_id]
    assert await ids(TaskQuery(user_id="bob")) == [b1.task_id]
    assert await ids(TaskQuery(priority=Priority.LOW)) == [a2.task_id]
    start = a1.created_at
    assert await ids(TaskQuery(created_after=start + timedelta(seconds=30))) == [
        a2.task_id,
        b1.task_id,
    ]
    assert await ids(TaskQuery(created_before=start + timedelta(seconds=90))) == [
        b1.task_id,
        a1.task_id,
    ]
    assert await ids(TaskQuery(user_id="alice", agent="noop")) == []
    assert await ids(limit=1) == [a2.task_id]
    assert await ids(before=a2.id) == [b1.task_id, a1.task_id]


async def test_a_projects_sessions_in_user_order(store: Store) -> None:
    project = await store.create_project()
    for user in ("carol", "alice", "bob"):
        await store.session_for_user(project, user)
    await store.session_for_user(await store.create_project(), "aaron")

    first = await store.list_sessions(project, None, 2)
    assert [s.user_id for s in first] == ["alice", "bob"]
    rest = await store.list_sessions(project, first[-1].user_id, 2)
    assert [s.user_id for s in rest] == ["carol"]


async def test_the_overview_counts_the_queue_and_recent_ends(
    store: Store, clock: ManualClock
) -> None:
    project = await store.create_project()
    sid = (await store.session_for_user(project, "u")).session_id
    oldest, *_ = await store.submit(
        project,
        sid,
        [new_task(priority=Priority.HIGH), new_task(), new_task(), new_task(priority=Priority.LOW)],
    )
    clock.advance(30)
    claimed = await store.claim("w1", 2)  # the high one and the first normal one
    await store.finish(claimed[0].task.task_id, 1, Outcome(TaskStatus.COMPLETED, output=1))
    error = TaskError("agent_error", "no")
    await store.finish(claimed[1].task.task_id, 1, Outcome(TaskStatus.FAILED, error=error))
    await store.submit(project, sid, [new_task()])
    (await store.claim("w1", 1))  # the second normal one: running

    overview = await store.project_overview(project, clock.now() - timedelta(seconds=10))
    counts = {(c.status, c.priority): c.count for c in overview.active}
    assert counts == {
        (TaskStatus.RUNNING, Priority.NORMAL): 1,
        (TaskStatus.QUEUED, Priority.NORMAL): 1,
        (TaskStatus.QUEUED, Priority.LOW): 1,
    }
    assert overview.oldest_queued_at == oldest.created_at
    assert overview.ended_since == {TaskStatus.COMPLETED: 1, TaskStatus.FAILED: 1}
    later = await store.project_overview(project, clock.now() + timedelta(seconds=1))
    assert later.ended_since == {}
    empty = await store.project_overview(await store.create_project(), clock.now())
    assert empty.active == () and empty.oldest_queued_at is None


async def test_nodes_with_their_slots_and_running_tasks(store: Store) -> None:
    project = await store.create_project()
    sid = (await store.session_for_user(project, "u")).session_id
    await store.register_worker("w1", "host-a", 11, slots=4)
    await store.register_worker("w2", "host-b", 12)
    await store.submit(project, sid, [new_task(), new_task()])
    await store.claim("w1", 2)

    nodes = {n.worker_id: n for n in await store.worker_nodes()}
    assert (nodes["w1"].host, nodes["w1"].slots, nodes["w1"].running) == ("host-a", 4, 2)
    assert (nodes["w2"].slots, nodes["w2"].running) == (None, 0)


async def test_a_tasks_timeline_shows_each_status_it_had(store: Store, clock: ManualClock) -> None:
    project = await store.create_project()
    sid = (await store.session_for_user(project, "u")).session_id
    (task,) = await store.submit(project, sid, [new_task(max_attempts=2)])
    await store.register_worker("w1", "h", 1)
    await store.claim("w1", 1)
    clock.advance(5)
    await store.release(task.task_id, 1, started=True)  # lost with its worker: back in the queue
    await store.claim("w1", 1)
    clock.advance(5)
    await store.finish(task.task_id, 2, Outcome(TaskStatus.COMPLETED, output=1))

    timeline = await store.task_timeline(project, sid, task.task_id)
    seen = [(e.kind, e.task.status, e.task.attempt) for e in timeline if e.task is not None]
    assert seen == [
        ("status", TaskStatus.QUEUED, 0),
        ("status", TaskStatus.RUNNING, 1),
        ("status", TaskStatus.QUEUED, 1),
        ("status", TaskStatus.RUNNING, 2),
        ("status", TaskStatus.COMPLETED, 2),
        ("end", TaskStatus.COMPLETED, 2),
    ]
