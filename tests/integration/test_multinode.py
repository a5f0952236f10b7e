"""Several nodes on one PostgreSQL: two API nodes and two worker nodes share the queue."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.databases import postgres_schema, skip_without_postgres
from tests.support.sandboxes import host_pid
from tests.support.server import ServerProcess, free_port
from tests.support.waiting import eventually, process_gone
from theazo import Theazo

LEASE_SECONDS = 3.0


@dataclass
class Cluster:
    api: list[ServerProcess]
    workers: list[ServerProcess]
    api_key: str
    shared: Path  # shown to every sandbox of the worker nodes as /shared, writable

    def shared_dir(self) -> tuple[Path, str]:
        """A fresh directory the recorder agents of one test write to: on the host, and as
        the sandboxes see it."""
        name = uuid.uuid4().hex
        path = self.shared / name
        path.mkdir()
        path.chmod(0o777)  # the sandboxes' user is not the test's when the test runs as root
        return path, f"/shared/{name}"

    def client(self, index: int) -> Theazo:
        return Theazo(api_key=self.api_key, base_url=self.api[index].base_url)

    def worker_running(self, sandbox_pid: int) -> ServerProcess:
        """The worker node whose zygote forked this (live) sandbox."""
        zygote = _parent(sandbox_pid)
        return next(w for w in self.workers if w.pid == _parent(zygote))


def _parent(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, api_key: str) -> Iterator[Cluster]:
    skip_without_postgres()
    lease = ["--lease", f"{LEASE_SECONDS:g}s"]
    shared = tmp_path_factory.mktemp("shared")
    shared.chmod(0o755)
    shown = ["--sandbox-mount", f"{shared}:/shared:rw", "--sandbox-env", "TEST_NODE_NAME"]
    with postgres_schema() as url:
        started: list[ServerProcess] = []
        try:
            for _ in range(2):
                node = ServerProcess(
                    workdir=tmp_path_factory.mktemp("api"),
                    port=free_port(),
                    api_keys=[api_key],
                    args=["--no-workers"],
                    database=url,
                )
                node.launch()
                started.append(node)
            workers = []
            for index in range(2):
                worker = ServerProcess(
                    workdir=tmp_path_factory.mktemp("worker"),
                    port=free_port(),
                    api_keys=[],
                    args=["--concurrency", "4", *lease, *shown],
                    database=url,
                    kind="worker",
                    env={"TEST_NODE_NAME": f"worker-{index}"},
                )
                worker.launch()
                started.append(worker)
                workers.append(worker)
            yield Cluster(api=started[:2], workers=workers, api_key=api_key, shared=shared)
        finally:
            for node in started:
                node.stop()


def test_submit_on_one_api_node_and_wait_on_the_other(cluster: Cluster) -> None:
    with cluster.client(0) as a, cluster.client(1) as b:
        task = a.sessions.for_user("multi").tasks.submit(agent="sleeper", input={"seconds": 0.3})
        done = b.sessions.for_user("multi").tasks.wait(task.task_id, timeout="20s")
    assert done.status == "completed"


def test_a_wait_is_answered_promptly_across_nodes(cluster: Cluster) -> None:
    with cluster.client(0) as a, cluster.client(1) as b:
        session_a, session_b = a.sessions.for_user("prompt"), b.sessions.for_user("prompt")
        started = time.monotonic()  # before the submit: the sleep may begin before its answer
        task = session_a.tasks.submit(agent="sleeper", input={"seconds": 1})
        waited = session_b.tasks.wait(task.task_id, timeout="30s")
        elapsed = time.monotonic() - started
    assert waited.status == "completed"
    # Held by node B until node A's worker finished: answered on the NOTIFY, not at the
    # 30 s timeout (nothing else would wake a held wait).
    assert 1 <= elapsed < 5


def test_cancel_on_one_node_kills_the_sandbox_on_a_worker_node(cluster: Cluster) -> None:
    with cluster.client(0) as a, cluster.client(1) as b:
        task = a.sessions.for_user("cancel").tasks.submit(agent="sleeper", input={"seconds": 60})
        session_b = b.sessions.for_user("cancel")
        eventually(lambda: session_b.tasks.get(task.task_id).message, what="the agent's report")
        pid = eventually(lambda: host_pid(task.task_id), what="the agent's process")
        worker = cluster.worker_running(pid)
        assert worker in cluster.workers

        cancelled = session_b.tasks.cancel(task.task_id)

    assert cancelled.status == "cancelled"
    eventually(lambda: process_gone(pid), timeout=5, what="the sandbox on the worker node")


def test_many_tasks_across_two_workers_each_run_exactly_once(cluster: Cluster) -> None:
    tmp_path, seen_as = cluster.shared_dir()
    headers = {"Authorization": f"Bearer {cluster.api_key}"}
    with cluster.client(0) as a:
        session = a.sessions.for_user("bulk")
        for batch in range(2):  # half through each API node
            response = httpx.post(
                f"{cluster.api[batch].base_url}/v1/sessions/{session.session_id}/tasks/batch",
                json={"tasks": [{"agent": "recorder", "input": {"dir": seen_as}}] * 1000},
                headers=headers,
                timeout=60,
            )
            assert response.status_code == 202, response.text

        def all_done() -> bool:
            usage = session.refresh().usage
            return usage.queued == 0 and usage.running == 0

        eventually(all_done, timeout=240, interval=0.5, what="2,000 tasks")
        completed = list(session.tasks.iter(status="completed", page_size=500))

    assert len(completed) == 2000
    lines = [line.split() for line in (tmp_path / "executions.log").read_text().splitlines()]
    runs = Counter(task_id for task_id, *_ in lines)
    assert len(runs) == 2000
    assert set(runs.values()) == {1}
    per_node = Counter(node for *_, node in lines)
    assert set(per_node) == {"worker-0", "worker-1"}, per_node  # both worker nodes took a share


def test_killing_a_worker_mid_task_loses_only_its_tasks(cluster: Cluster) -> None:
    tmp_path, seen_as = cluster.shared_dir()
    with cluster.client(0) as a:
        session = a.sessions.for_user("crash")
        slow = [
            session.tasks.submit(agent="recorder", input={"dir": seen_as, "seconds": 30})
            for _ in range(4)
        ]
        retried = session.tasks.submit(
            agent="recorder", input={"dir": seen_as, "seconds": 2}, retries=1
        )
        everything = [*slow, retried]
        eventually(
            lambda: all(session.tasks.get(t.task_id).message for t in everything),
            timeout=20,
            what="all five running",
        )
        pids = {
            t.task_id: eventually(lambda t=t: host_pid(t.task_id), what="the agent's process")
            for t in everything
        }
        victim = cluster.worker_running(pids[retried.task_id])
        on_victim = {tid for tid, pid in pids.items() if cluster.worker_running(pid) is victim}

        victim.kill()
        try:
            for task in slow:
                if task.task_id in on_victim:
                    lost = session.tasks.wait(task.task_id, timeout=f"{LEASE_SECONDS * 4:g}s")
                    assert lost.status == "failed"
                    assert lost.error is not None and lost.error.code == "worker_lost"
                else:
                    assert session.tasks.get(task.task_id).status == "running"
                    session.tasks.cancel(task.task_id)
            rerun = session.tasks.wait(retried.task_id, timeout="30s")
            assert rerun.status == "completed" and rerun.attempt == 2
        finally:
            victim.launch()

    lines = (tmp_path / "executions.log").read_text().splitlines()
    runs = Counter(line.split()[0] for line in lines)
    assert runs[retried.task_id] == 2  # once lost with its node, once re-run
    assert all(runs[t.task_id] == 1 for t in slow)
