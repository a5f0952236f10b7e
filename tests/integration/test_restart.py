"""A restart loses nothing: queued tasks run after it; a task that was running when the server
died is never left ``running``: it fails ``worker_lost``, or runs again if it had retries."""

from __future__ import annotations

from tests.conftest import StartServer
from tests.support.sandboxes import host_pid
from tests.support.waiting import eventually, process_gone
from theazo import Theazo

# A short lease, so that on PostgreSQL (where a restarted node cannot know that the old one
# is gone) the lost task is found in seconds.
LEASE = ("--lease", "2s")


def test_queued_tasks_run_after_a_restart(start_server: StartServer, api_key: str) -> None:
    with start_server("--concurrency", "1", *LEASE) as server:
        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            session = theazo.sessions.for_user("restart")
            blocker = session.tasks.submit(agent="sleeper", input={"seconds": 60})
            eventually(lambda: session.tasks.get(blocker.task_id).status == "running")
            queued = [session.tasks.submit(agent="echo", input=i) for i in range(3)]
            session_id = session.session_id

        server.kill()
        server.launch()

        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            session = theazo.sessions.get(session_id)
            lost = session.tasks.wait(blocker.task_id, timeout="10s")
            assert lost.status == "failed"
            assert lost.error is not None and lost.error.code == "worker_lost"
            results = [session.tasks.wait(t.task_id, timeout="20s") for t in queued]
            assert [t.status for t in results] == ["completed"] * 3
            assert [t.output for t in results] == [0, 1, 2]


def test_a_running_task_with_retries_runs_again_after_a_crash(
    start_server: StartServer, api_key: str
) -> None:
    with start_server(*LEASE) as server:
        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            session = theazo.sessions.for_user("retry")
            task = session.tasks.submit(agent="sleeper", input={"seconds": 1}, retries=1)
            running = eventually(
                lambda: (t := session.tasks.get(task.task_id)).message and t, what="report"
            )
            first_pid = eventually(lambda: host_pid(task.task_id), what="the agent's process")
            assert running.attempt == 1

        server.kill()
        eventually(lambda: process_gone(first_pid), timeout=10, what="orphan sandbox killed")
        server.launch()

        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            session = theazo.sessions.for_user("retry")
            done = session.tasks.wait(task.task_id, timeout="20s")
            assert done.status == "completed"
            assert done.attempt == 2


def test_graceful_stop_fails_what_cannot_finish_in_the_grace(
    start_server: StartServer, api_key: str
) -> None:
    with start_server(*LEASE) as server:
        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            session = theazo.sessions.for_user("graceful")
            slow = session.tasks.submit(agent="sleeper", input={"seconds": 60})
            eventually(lambda: session.tasks.get(slow.task_id).status == "running")

        assert server.stop() == 0  # SIGTERM: a clean exit after the 2 s grace
        server.launch()

        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            task = theazo.sessions.for_user("graceful").tasks.get(slow.task_id)
            assert task.status == "failed"
            assert task.error is not None and task.error.code == "worker_shutdown"
