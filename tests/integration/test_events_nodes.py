"""Events across nodes on one PostgreSQL: a stream on a node that runs nothing follows a task
another node runs, and a client cut off from one node resumes on another."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.databases import postgres_schema, skip_without_postgres
from tests.support.server import ServerProcess, free_port
from tests.support.sse import read_until_end
from theazo import Theazo
from theazo.sdk import EndEvent, ProgressEvent, StatusEvent


@dataclass
class Nodes:
    api: ServerProcess  # --no-workers: every task runs on the other node
    worker: ServerProcess
    api_key: str


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, api_key: str) -> Iterator[Nodes]:
    skip_without_postgres()
    with postgres_schema() as url:
        api = ServerProcess(
            workdir=tmp_path_factory.mktemp("api"),
            port=free_port(),
            api_keys=[api_key],
            args=["--no-workers"],
            database=url,
        )
        worker = ServerProcess(
            workdir=tmp_path_factory.mktemp("worker"),
            port=free_port(),
            api_keys=[api_key],
            args=[],
            database=url,
        )
        api.launch()
        try:
            worker.launch()
            try:
                yield Nodes(api, worker, api_key)
            finally:
                worker.stop()
        finally:
            api.stop()


def test_a_node_that_runs_nothing_streams_what_another_node_runs(nodes: Nodes) -> None:
    with Theazo(api_key=nodes.api_key, base_url=nodes.api.base_url) as theazo:
        session = theazo.sessions.for_user("across")
        task = session.tasks.submit("ticker", {"steps": 5, "every": 0.1})
        seen = list(session.tasks.stream(task.task_id, timeout="30s"))
        session_seen = []
        for event in session.events(timeout="10s"):
            session_seen.append(event)
            if isinstance(event, StatusEvent) and event.task.is_terminal:
                break
    assert [e.progress for e in seen if isinstance(e, ProgressEvent)] == [
        s / 5 for s in range(1, 6)
    ]
    assert isinstance(seen[-1], EndEvent) and seen[-1].task.status == "completed"
    assert [e.id for e in session_seen] == list(range(1, len(session_seen) + 1))
    assert sum(isinstance(e, ProgressEvent) for e in session_seen) == 5


def test_a_client_cut_off_from_one_node_resumes_on_another(nodes: Nodes) -> None:
    with Theazo(api_key=nodes.api_key, base_url=nodes.api.base_url) as theazo:
        session = theazo.sessions.for_user("moved")
        task = session.tasks.submit("ticker", {"steps": 8, "every": 0.1})
        before = []
        for event in session.tasks.stream(task.task_id, timeout="30s"):
            before.append(event)
            if isinstance(event, ProgressEvent) and event.progress == 2 / 8:
                break
    last_id = before[-1].id
    rest = read_until_end(
        f"{nodes.worker.base_url}/v1/sessions/{session.session_id}/tasks/{task.task_id}/events",
        headers={"Authorization": f"Bearer {nodes.api_key}", "Last-Event-ID": str(last_id)},
    )
    assert [e.id for e in rest] == list(range(last_id + 1, last_id + 1 + len(rest)))
    reported = [e.progress for e in before if isinstance(e, ProgressEvent)]
    reported += [e.data["progress"] for e in rest if e.event == "progress"]
    assert reported == [s / 8 for s in range(1, 9)]
    assert rest[-1].event == "end"
