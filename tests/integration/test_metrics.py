"""Metrics and structured logs as an operator reads them: ``theazo serve --metrics HOST:PORT
--log-format json``, scraped over HTTP and parsed with prometheus-client's own parser, and its
log read line by line as JSON.

Tests in this module share one server and run one after another, so each measures what it
did as the difference between two scrapes.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StartServer
from tests.support.databases import postgres_schema
from tests.support.receiver import Receiver, Reply
from tests.support.server import ServerProcess, free_port
from tests.support.waiting import eventually
from theazo import Theazo
from theazo.sdk import Session

Key = tuple[str, frozenset[tuple[str, str]]]
ID_LIKE = re.compile(r"(task|sess|proj|user|w)_[A-Za-z0-9]")


class Scrape:
    """One scrape of /metrics: every sample, by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[Key, float] = {}
        self.families: dict[str, str] = {}  # name → type
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.get(name, **labels) - before.get(name, **labels)


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(start_server: StartServer, metrics_port: int) -> Iterator[ServerProcess]:
    with start_server(
        "--metrics", f"127.0.0.1:{metrics_port}",
        "--log-format", "json",
        "--log-level", "info",
        "--allow-private-webhooks",
        "--webhook-retry-schedule", "0.1s,0.1s",
    ) as process:  # fmt: skip
        yield process


Scraper = Callable[[], Scrape]


@pytest.fixture
def scrape(metrics_port: int) -> Scraper:
    def read() -> Scrape:
        response = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return Scrape(response.text)

    return read


def _running(session: Session, task_id: str) -> None:
    eventually(lambda: session.tasks.get(task_id).status == "running", what=f"{task_id} running")


# --- counters and histograms -------------------------------------------------------------------
def test_counters_and_histograms_move_by_what_the_tasks_did(
    server: ServerProcess, session: Session, scrape: Scraper
) -> None:
    before = scrape()
    for _ in range(2):
        assert session.run("echo", {"n": 1}).status == "completed"
    assert session.run("raiser", None).status == "failed"
    session.update_limits(max_running=1)
    running = session.tasks.submit("sleeper", {"seconds": 30})
    _running(session, running.task_id)
    queued = session.tasks.submit("sleeper", {"seconds": 30}, priority="low")
    assert session.tasks.cancel(queued.task_id).status == "cancelled"
    assert session.tasks.cancel(running.task_id).status == "cancelled"
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return after.delta(before, name, **labels)

    assert moved("theazo_tasks_submitted_total", agent="echo", priority="normal") == 2
    assert moved("theazo_tasks_submitted_total", agent="raiser", priority="normal") == 1
    assert moved("theazo_tasks_submitted_total", agent="sleeper", priority="normal") == 1
    assert moved("theazo_tasks_submitted_total", agent="sleeper", priority="low") == 1
    assert moved("theazo_tasks_started_total", agent="echo", priority="normal") == 2
    assert moved("theazo_tasks_started_total", agent="sleeper", priority="normal") == 1
    assert moved("theazo_tasks_started_total", agent="sleeper", priority="low") == 0
    finished = "theazo_tasks_finished_total"
    assert moved(finished, agent="echo", status="completed", error_code="") == 2
    assert moved(finished, agent="raiser", status="failed", error_code="agent_error") == 1
    assert moved(finished, agent="sleeper", status="cancelled", error_code="") == 2
    assert moved("theazo_tasks_cancelled_total", agent="sleeper", state="queued") == 1
    assert moved("theazo_tasks_cancelled_total", agent="sleeper", state="running") == 1
    assert moved("theazo_tasks_retried_total", agent="echo") == 0

    # Histograms: one observation per started task, and per ended task that had started.
    assert moved("theazo_task_queue_wait_seconds_count", priority="normal") == 4
    assert moved("theazo_task_queue_wait_seconds_count", priority="low") == 0
    assert moved("theazo_task_run_seconds_count", agent="echo", status="completed") == 2
    assert moved("theazo_task_run_seconds_count", agent="sleeper", status="cancelled") == 1
    assert moved("theazo_task_run_seconds_sum", agent="echo", status="completed") > 0
    assert after.families["theazo_task_run_seconds"] == "histogram"
    inf = after.get("theazo_task_run_seconds_bucket", agent="echo", status="completed", le="+Inf")
    assert inf == after.get("theazo_task_run_seconds_count", agent="echo", status="completed")

    cancel = "/v1/sessions/{session_id}/tasks/{task_id}/cancel"
    assert moved("theazo_http_requests_total", method="POST", route=cancel, status="200") == 2


def test_http_requests_are_counted_by_route_template_never_by_path(
    server: ServerProcess, session: Session, scrape: Scraper
) -> None:
    before = scrape()
    headers = {"Authorization": f"Bearer {server.api_key}"}
    path = f"/v1/sessions/{session.session_id}/tasks/task_doesnotexist0000000000"
    for _ in range(3):
        assert httpx.get(server.base_url + path, headers=headers).status_code == 404
    assert httpx.get(server.base_url + "/no/such/route", headers=headers).status_code == 404
    assert httpx.request("PROPFIND", server.base_url + "/healthz").status_code == 405
    after = scrape()

    task = "/v1/sessions/{session_id}/tasks/{task_id}"
    assert (
        after.delta(before, "theazo_http_requests_total", method="GET", route=task, status="404")
        == 3
    )
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert after.delta(before, "theazo_http_requests_total", **unmatched) == 1
    # A method the API does not use is one label value, not one series per method.
    assert (
        after.delta(
            before, "theazo_http_requests_total", method="other", route="/healthz", status="405"
        )
        == 1
    )
    assert session.session_id not in after.text and "doesnotexist" not in after.text


def test_no_label_carries_a_user_session_or_task_id(
    server: ServerProcess, theazo: Theazo, scrape: Scraper
) -> None:
    session = theazo.sessions.for_user("user_metrics_cardinality")
    done = [session.run("echo", {"i": i}) for i in range(3)]
    found = scrape()
    values = {value for _, labels in found.samples for _, value in labels}
    assert values, "the scrape has labelled samples"
    assert not [v for v in values if ID_LIKE.match(v)]
    for text in (session.session_id, session.user_id, *(t.task_id for t in done)):
        assert text not in found.text


def test_agents_inventing_error_codes_cannot_grow_the_metrics_without_end(
    theazo: Theazo, scrape: Scraper
) -> None:
    """A node keeps at most 100 distinct error codes (core/defaults.py); past them, "other"."""
    session = theazo.sessions.for_user("user_code_inventor")
    session.update_limits(max_running=8)
    raise_own = "from theazo.agent import AgentFailed\nraise AgentFailed(input['c'], 'mine')"
    count = 120
    tasks = session.tasks.submit_batch(
        [
            {"agent": "attacker", "input": {"code": raise_own, "c": f"made_up_{i}"}}
            for i in range(count)
        ]
    )
    ended = [session.tasks.wait(t.task_id, timeout="60s") for t in tasks]
    assert {t.error.code for t in ended if t.error} >= {"made_up_0", "made_up_119"}

    found = scrape()
    failed = {
        dict(labels)["error_code"]: value
        for (name, labels), value in found.samples.items()
        if name == "theazo_tasks_finished_total" and ("agent", "attacker") in labels
    }
    assert sum(failed.values()) == count
    assert failed["other"] >= count - 100
    codes = {
        dict(labels)["error_code"]
        for (name, labels), _ in found.samples.items()
        if name == "theazo_tasks_finished_total"
    }
    assert len(codes - {"", "other"}) == 100


# --- gauges ------------------------------------------------------------------------------------
def test_gauges_show_the_queue_the_held_waits_and_the_open_streams(
    server: ServerProcess, session: Session, scrape: Scraper
) -> None:
    session.update_limits(max_running=1)
    running = session.tasks.submit("sleeper", {"seconds": 30})
    _running(session, running.task_id)
    queued = [session.tasks.submit("echo", {"i": i}, priority="low") for i in range(2)]
    idle = scrape()
    assert idle.get("theazo_tasks_queued", priority="low") == 2
    assert idle.get("theazo_tasks_queued", priority="high") == 0
    assert idle.get("theazo_tasks_running", priority="normal") == 1
    assert idle.get("theazo_worker_slots", state="used") == 1
    assert idle.get("theazo_waits_held") == 0 and idle.get("theazo_event_streams_open") == 0
    assert idle.get("theazo_sandboxes_spare") >= 1

    waiter = threading.Thread(target=session.tasks.wait, args=(queued[0].task_id, 30))
    waiter.start()
    url = f"{server.base_url}/v1/sessions/{session.session_id}/tasks/{running.task_id}/events"
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.stream("GET", url, headers=headers, timeout=30) as stream:
        assert stream.status_code == 200
        held = eventually(
            lambda: (
                (s := scrape()).get("theazo_waits_held") == 1
                and s.get("theazo_event_streams_open") == 1
                and s
            ),
            what="a held wait and an open stream",
        )
        assert held
    session.update_limits(max_running=10)  # the queued tasks start, and the wait ends
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    session.tasks.cancel(running.task_id)
    drained = eventually(
        lambda: (
            (s := scrape()).get("theazo_tasks_queued", priority="low") == 0
            and s.get("theazo_tasks_running", priority="normal") == 0
            and s.get("theazo_waits_held") == 0
            and s.get("theazo_event_streams_open") == 0
            and s
        ),
        what="the queue, the waits and the streams to empty",
    )
    assert drained


# --- webhooks ----------------------------------------------------------------------------------
def test_webhook_attempts_are_counted_by_result_with_their_latency(
    session: Session, scrape: Scraper
) -> None:
    before = scrape()
    with Receiver().running() as receiver:
        receiver.script("/flaky", Reply(500))
        session.run("echo", None, webhook=receiver.url("/flaky"))
        receiver.wait_for("/flaky", count=2)
    down = Receiver()  # never started: every attempt is refused
    session.run("echo", None, webhook=down.url("/nobody"))

    attempts = "theazo_webhook_attempts_total"

    def settled() -> Scrape | None:
        found = scrape()
        done = found.delta(before, attempts, event="completed", result="unreachable") == 3
        return (
            found
            if done and found.delta(before, attempts, event="completed", result="delivered")
            else None
        )

    after = eventually(settled, what="the webhook attempts to be counted")
    assert after.delta(before, attempts, event="completed", result="rejected") == 1
    assert after.delta(before, attempts, event="completed", result="delivered") == 1
    assert (
        after.delta(before, "theazo_webhook_attempt_duration_seconds_count", event="completed") == 5
    )
    latency = "theazo_webhook_delivery_latency_seconds"
    assert after.delta(before, f"{latency}_count", event="completed") == 1
    assert after.delta(before, f"{latency}_sum", event="completed") > 0


# --- where metrics are ---------------------------------------------------------------------------
def test_metrics_are_not_on_the_api_port(server: ServerProcess, metrics_port: int) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    for sent in ({}, headers):
        answer = httpx.get(f"{server.base_url}/metrics", headers=sent)
        assert answer.status_code == 404 and "theazo_" not in answer.text
    listener = f"http://127.0.0.1:{metrics_port}"
    assert httpx.get(f"{listener}/v1/sessions", headers=headers).status_code == 404
    assert httpx.post(f"{listener}/metrics").status_code == 405
    assert httpx.head(f"{listener}/metrics").status_code == 200


# --- structured logs ---------------------------------------------------------------------------
def _json_lines(server: ServerProcess) -> list[dict[str, Any]]:
    """The node's log records: every line of its stderr (the log shares a file with the
    stdout of the node, whose few announcements are plain text)."""
    records = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def _transitions_of(server: ServerProcess, task_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in _json_lines(server)
        if r["logger"] == "theazo.tasks" and r.get("task_id") == task_id
    ]


def _exactly(
    count: int, fetch: Callable[[], list[dict[str, Any]]], what: str
) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = fetch()
        return found if len(found) == count else None

    return eventually(check, what=what)


def test_json_logs_record_each_transition_with_the_tasks_ids(
    server: ServerProcess, session: Session
) -> None:
    done = session.run("echo", {"n": 1})
    failed = session.run("raiser", None)

    for task, end in ((done, "completed"), (failed, "failed")):
        records = _exactly(
            3,
            functools.partial(_transitions_of, server, task.task_id),
            f"the transitions of {task.task_id} in the log",
        )
        assert [r["event"] for r in records] == ["submitted", "started", end]
        assert [r["attempt"] for r in records] == [0, 1, 1]
        for record in records:
            assert record["session_id"] == session.session_id
            assert record["project_id"].startswith("proj_")
            assert record["level"] == "info" and record["agent"] == task.agent
            assert record["time"].endswith("Z")
    (end_record,) = [r for r in _transitions_of(server, failed.task_id) if r["event"] == "failed"]
    assert end_record["error_code"] == "agent_error"


def test_json_logs_give_an_errors_task_ids(server: ServerProcess, session: Session) -> None:
    down = Receiver()  # never started: the webhook fails, and says so in the log
    task = session.run("echo", None, webhook=down.url("/nobody"))

    def failures() -> list[dict[str, Any]]:
        return [
            r
            for r in _json_lines(server)
            if r["logger"] == "theazo.webhooks" and r.get("task_id") == task.task_id
        ]

    records = _exactly(3, failures, "three failures of the webhook in the log")
    assert [r["level"] for r in records] == ["warning", "warning", "error"]
    for record in records:
        assert record["session_id"] == session.session_id
        assert record["project_id"].startswith("proj_")
        assert record["webhook_id"].startswith("msg_")


def test_every_log_line_is_json(server: ServerProcess) -> None:
    announcements = (
        "Sandbox isolation:",
        "Metrics are served on",
        "Theazo is serving on",
        "Dashboard:",
    )
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert lines
    plain = [line for line in lines if not line.startswith("{")]
    assert all(line.startswith(announcements) for line in plain), plain
    for line in lines:
        if line.startswith("{"):
            record = json.loads(line)
            assert {"time", "level", "logger", "message"} <= set(record)


# --- retries, and several nodes ------------------------------------------------------------------
def _scrape_at(port: int) -> Scrape:
    return Scrape(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)


def test_a_task_retried_after_a_crash_is_counted_and_logged_by_the_node_that_retried_it(
    start_server: StartServer, api_key: str
) -> None:
    port = free_port()
    options = ("--metrics", f"127.0.0.1:{port}", "--log-format", "json", "--log-level", "info")
    with start_server(*options, "--lease", "2s") as server:
        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            session = theazo.sessions.for_user(f"user_retry_{free_port()}")
            task = session.tasks.submit("sleeper", {"seconds": 1}, retries=1)
            _running(session, task.task_id)

        server.kill()
        server.launch()  # the same database, log file and --metrics address

        with Theazo(api_key=api_key, base_url=server.base_url) as theazo:
            done = theazo.sessions.get(session.session_id).tasks.wait(task.task_id, timeout="20s")
        assert done.status == "completed" and done.attempt == 2
        after = _scrape_at(port)  # this process's counters: the rescue and the second run
        assert after.get("theazo_tasks_retried_total", agent="sleeper") == 1
        assert after.get("theazo_tasks_started_total", agent="sleeper", priority="normal") == 1
        finished = {"agent": "sleeper", "status": "completed", "error_code": ""}
        assert after.get("theazo_tasks_finished_total", **finished) == 1
        # Only a first attempt's wait is measured: the retry's began when it was requeued.
        assert after.get("theazo_task_queue_wait_seconds_count", priority="normal") == 0

        records = _exactly(
            5, functools.partial(_transitions_of, server, task.task_id), "five transitions"
        )
        assert [(r["event"], r["attempt"]) for r in records] == [
            ("submitted", 0),
            ("started", 1),
            ("retried", 1),
            ("started", 2),
            ("completed", 2),
        ]


def test_each_node_counts_what_it_did_and_the_queue_is_the_deployments(
    tmp_path_factory: pytest.TempPathFactory, api_key: str
) -> None:
    """On PostgreSQL: an API node counts the submit, the worker node the start and the end; both
    read the same queue."""
    api_port, worker_port = free_port(), free_port()
    with (
        postgres_schema() as url,
        ServerProcess.start(
            tmp_path_factory.mktemp("api"),
            api_keys=[api_key],
            database=url,
            args=["--no-workers", "--metrics", f"127.0.0.1:{api_port}"],
        ) as api,
        ServerProcess.start(
            tmp_path_factory.mktemp("worker"),
            database=url,
            kind="worker",
            args=["--metrics", f"127.0.0.1:{worker_port}"],
        ),
        Theazo(api_key=api_key, base_url=api.base_url) as theazo,
    ):
        session = theazo.sessions.for_user("user_two_nodes")
        session.update_limits(max_running=1)
        blocker = session.tasks.submit("sleeper", {"seconds": 30})
        _running(session, blocker.task_id)
        queued = session.tasks.submit("echo", {"n": 1}, priority="high")

        on_api, on_worker = _scrape_at(api_port), _scrape_at(worker_port)
        for node in (on_api, on_worker):
            assert node.get("theazo_tasks_queued", priority="high") == 1
            assert node.get("theazo_tasks_running", priority="normal") == 1
        assert on_api.get("theazo_tasks_submitted_total", agent="sleeper", priority="normal") == 1
        assert (
            on_worker.get("theazo_tasks_submitted_total", agent="sleeper", priority="normal") == 0
        )
        assert on_worker.get("theazo_tasks_started_total", agent="sleeper", priority="normal") == 1
        assert on_api.get("theazo_tasks_started_total", agent="sleeper", priority="normal") == 0
        assert on_worker.get("theazo_worker_slots", state="used") == 1
        assert ("theazo_worker_slots", frozenset({("state", "used")})) not in on_api.samples

        session.tasks.cancel(blocker.task_id)  # by the API node: counted there
        assert session.tasks.wait(queued.task_id, timeout="20s").status == "completed"
        on_api, on_worker = _scrape_at(api_port), _scrape_at(worker_port)
        cancelled = {"agent": "sleeper", "state": "running"}
        assert on_api.get("theazo_tasks_cancelled_total", **cancelled) == 1
        assert on_worker.get("theazo_tasks_cancelled_total", **cancelled) == 0
        completed = {"agent": "echo", "status": "completed", "error_code": ""}
        assert on_worker.get("theazo_tasks_finished_total", **completed) == 1
        assert on_api.get("theazo_tasks_finished_total", **completed) == 0
