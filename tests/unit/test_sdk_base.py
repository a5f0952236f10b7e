"""The SDK's decisions that need no server: configuration, requests, and the wait protocol.

The protocols are generators; these tests drive them by hand with constructed responses and a
fake clock, which is all the real clients do (with a network in between).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import theazo
import theazo.sdk
from theazo.sdk import NotFoundError, Task, TaskPage, Theazo, TheazoError
from theazo.sdk._base import (
    DEFAULT_BASE_URL,
    RETRY_FIRST_WAIT_SECONDS,
    RETRY_JITTER,
    RETRY_MAX_WAIT_SECONDS,
    WAIT_HOLD_CAP_SECONDS,
    Flow,
    RequestBuilder,
    batch_body,
    format_hold,
    limits_body,
    resolve_api_key,
    resolve_base_url,
    retry_delay,
    submit_body,
)

HOLD_CAP = f"{WAIT_HOLD_CAP_SECONDS:g}s"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def builder(timeout: httpx.Timeout | None = None, *, retries: bool = True) -> RequestBuilder:
    headers = httpx.Headers({"Authorization": "Bearer th_test_k"})
    return RequestBuilder(
        "http://theazo.test/base", headers, timeout or httpx.Timeout(30.0), retries=retries
    )


def task_answer(status: str, task_id: str = "task_1") -> httpx.Response:
    body = {"taskId": task_id, "sessionId": "sess_1", "agent": "echo", "status": status}
    return httpx.Response(200, json=body)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def finish(flow: Flow[Task], response: httpx.Response) -> Task:
    with pytest.raises(StopIteration) as done:
        flow.send(response)
    result: Task = done.value.value
    return result


# --- configuration ----------------------------------------------------------------------------
def test_the_api_key_comes_from_the_argument_first_then_the_environment() -> None:
    assert resolve_api_key("th_test_arg", {"THEAZO_API_KEY": "th_test_env"}) == "th_test_arg"
    assert resolve_api_key(None, {"THEAZO_API_KEY": "th_test_env"}) == "th_test_env"


@pytest.mark.parametrize("environ", [{}, {"THEAZO_API_KEY": ""}])
def test_a_missing_api_key_is_a_clear_error(environ: dict[str, str]) -> None:
    with pytest.raises(TheazoError, match="THEAZO_API_KEY"):
        resolve_api_key(None, environ)


def test_the_base_url_comes_from_the_argument_then_the_environment_then_the_default() -> None:
    env = {"THEAZO_BASE_URL": "https://env.example/"}
    assert resolve_base_url("http://arg.example:9000/", env) == "http://arg.example:9000"
    assert resolve_base_url(None, env) == "https://env.example"
    assert resolve_base_url(None, {}) == DEFAULT_BASE_URL == "http://127.0.0.1:8321"


def test_a_base_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(TheazoError, match="http"):
        resolve_base_url("localhost:8321", {})


def test_the_client_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THEAZO_API_KEY", "th_test_from_env")
    monkeypatch.setenv("THEAZO_BASE_URL", "http://env.example:1234")
    with Theazo() as client:
        request = client._requests.list_agents()
    assert client.base_url == "http://env.example:1234"
    assert request.headers["Authorization"] == "Bearer th_test_from_env"
    assert request.headers["User-Agent"] == f"theazo-python/{theazo.__version__}"
    assert str(request.url) == "http://env.example:1234/v1/agents"


def test_the_client_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THEAZO_API_KEY", raising=False)
    with pytest.raises(TheazoError, match="API key"):
        Theazo()


def test_the_repr_does_not_show_the_key() -> None:
    with Theazo(api_key="th_test_secret") as client:
        assert "secret" not in repr(client)


# --- requests ---------------------------------------------------------------------------------
def test_a_submit_sends_only_the_options_given() -> None:
    request = builder().submit("sess_1", submit_body("echo", {"x": 1}))

    assert (request.method, str(request.url)) == (
        "POST",
        "http://theazo.test/base/v1/sessions/sess_1/tasks",
    )
    assert body_of(request) == {"agent": "echo", "input": {"x": 1}, "priority": "normal"}
    assert "Idempotency-Key" not in builder(retries=False).submit("sess_1", {}).headers


def test_a_submit_without_a_key_gets_one_so_a_retry_cannot_store_it_twice() -> None:
    first, second = (builder().submit("sess_1", {"agent": "echo"}) for _ in range(2))
    assert first.headers["Idempotency-Key"].startswith("theazo-sdk-")
    assert first.headers["Idempotency-Key"] != second.headers["Idempotency-Key"]
    given = builder().submit("sess_1", {"agent": "echo"}, "mine")
    assert given.headers["Idempotency-Key"] == "mine"


def _answer(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return httpx.Response(status, headers=headers)


def test_only_a_503_is_retried_and_only_so_often() -> None:
    mid = lambda: 0.5  # noqa: E731 - no jitter
    assert retry_delay(_answer(503), 0, 5, rng=mid) == RETRY_FIRST_WAIT_SECONDS
    assert retry_delay(_answer(503), 3, 5, rng=mid) == RETRY_FIRST_WAIT_SECONDS * 8
    assert retry_delay(_answer(503), 5, 5, rng=mid) is None  # retries spent
    for status in (200, 400, 429, 500, 502, 504, 507):
        assert retry_delay(_answer(status, "1"), 0, 5, rng=mid) is None


def test_a_retry_waits_for_the_servers_hint_within_reason() -> None:
    mid = lambda: 0.5  # noqa: E731
    assert retry_delay(_answer(503, "4"), 0, 5, rng=mid) == 4.0
    assert retry_delay(_answer(503, "1"), 4, 5, rng=mid) == RETRY_FIRST_WAIT_SECONDS * 16
    assert retry_delay(_answer(503, "3600"), 0, 5, rng=mid) == RETRY_MAX_WAIT_SECONDS
    low, high = (retry_delay(_answer(503, "2"), 0, 5, rng=lambda v=v: v) for v in (0.0, 1.0))
    assert (low, high) == pytest.approx((2 * (1 - RETRY_JITTER), 2 * (1 + RETRY_JITTER)))


def test_a_submit_sends_every_option_in_camel_case_and_the_key_as_a_header() -> None:
    body = submit_body(
        "echo",
        None,
        priority="high",
        webhook="https://example.com/hook",
        webhook_events=("completed", "started"),
        timeout="5m",
        metadata={"order": "42"},
        retries=2,
    )
    request = builder().submit("sess_1", body, idempotency_key="order-42")

    assert body_of(request) == {
        "agent": "echo",
        "input": None,
        "priority": "high",
        "webhook": "https://example.com/hook",
        "webhookEvents": ["completed", "started"],
        "timeout": "5m",
        "metadata": {"order": "42"},
        "retries": 2,
    }
    assert request.headers["Idempotency-Key"] == "order-42"


def test_a_batch_converts_each_task_to_camel_case() -> None:
    body = batch_body(
        [
            {"agent": "echo", "input": 1},
            {"agent": "echo", "input": 2, "webhook_events": ["progress"], "idempotency_key": "b"},
        ]
    )
    assert body == {
        "tasks": [
            {"agent": "echo", "input": 1, "priority": "normal"},
            {
                "agent": "echo",
                "input": 2,
                "priority": "normal",
                "webhookEvents": ["progress"],
                "idempotencyKey": "b",
            },
        ]
    }


def test_a_batch_task_with_an_unknown_key_is_refused_before_sending() -> None:
    with pytest.raises(TypeError, match="priorty"):
        batch_body([{"agent": "echo", "priorty": "high"}])


def test_limits_send_only_what_is_given_and_none_removes_the_budget() -> None:
    assert limits_body(max_running=3) == {"limits": {"maxRunning": 3}}
    assert limits_body(budget=None) == {"limits": {"budget": None}}
    assert limits_body(max_queued=5, budget=100) == {"limits": {"maxQueued": 5, "budget": 100}}


def test_path_segments_are_url_quoted() -> None:
    request = builder().get_task("sess/1", "task?x")
    assert request.url.raw_path == b"/base/v1/sessions/sess%2F1/tasks/task%3Fx"


def test_webhook_requests_go_to_their_endpoints() -> None:
    requests = builder()
    base = "http://theazo.test/base/v1"
    sent = [
        requests.webhook_secret(),
        requests.rotate_webhook_secret(),
        requests.deliveries("sess_1", "task_1"),
        requests.redeliver("sess_1", "task_1"),
    ]
    assert [(r.method, str(r.url)) for r in sent] == [
        ("GET", f"{base}/webhook-secret"),
        ("POST", f"{base}/webhook-secret/rotate"),
        ("GET", f"{base}/sessions/sess_1/tasks/task_1/deliveries"),
        ("POST", f"{base}/sessions/sess_1/tasks/task_1/deliveries/redeliver"),
    ]


def test_an_empty_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        builder().get_task("sess_1", "")


def test_a_list_joins_statuses_and_the_next_page_adds_the_cursor() -> None:
    first = builder().list_tasks("sess_1", ["queued", "running"], limit=2)
    assert dict(first.url.params) == {"status": "queued,running", "limit": "2"}

    page = TaskPage.model_validate(
        {"data": [{"taskId": "t", "sessionId": "s", "agent": "a", "status": "queued"}],
         "nextCursor": "dDE"}
    )  # fmt: skip
    second = builder().next_page(first, page)
    assert second is not None
    assert dict(second.url.params) == {"status": "queued,running", "limit": "2", "cursor": "dDE"}
    assert second.headers["Authorization"] == "Bearer th_test_k"
    assert builder().next_page(second, TaskPage(data=page.data, next_cursor=None)) is None


def test_every_request_carries_the_client_timeout() -> None:
    request = builder(httpx.Timeout(7.0)).get_session("sess_1")
    assert request.extensions["timeout"]["read"] == 7.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(12.5, "12.5s"), (60.0, "60s"), (0.0, "0s"), (0.25, "0.25s")]
)
def test_holds_are_written_as_durations_the_server_reads(seconds: float, text: str) -> None:
    assert format_hold(seconds) == text


# --- the wait protocol ------------------------------------------------------------------------
def test_a_wait_whose_read_timeout_outlasts_each_hold() -> None:
    request = builder(httpx.Timeout(5.0)).wait_task("sess_1", "task_1", 60.0)
    assert request.url.params["timeout"] == "60s"
    assert request.extensions["timeout"]["read"] > 60.0
    assert request.extensions["timeout"]["connect"] == 5.0


def test_wait_returns_at_once_when_the_task_is_already_terminal() -> None:
    clock = FakeClock()
    flow = builder().wait("sess_1", "task_1", "5m", clock=clock)

    request = next(flow)
    assert request.method == "GET"
    assert request.url.path == "/base/v1/sessions/sess_1/tasks/task_1/wait"
    assert finish(flow, task_answer("completed")).status == "completed"


def test_wait_loops_past_the_server_cap_and_asks_only_for_what_remains() -> None:
    clock = FakeClock()
    flow = builder().wait("sess_1", "task_1", "2m", clock=clock)

    holds = [next(flow).url.params["timeout"]]
    clock.now += 60
    holds.append(flow.send(task_answer("running")).url.params["timeout"])
    clock.now += 47.5
    holds.append(flow.send(task_answer("running")).url.params["timeout"])
    clock.now += 12.5

    assert holds == [HOLD_CAP, HOLD_CAP, "12.5s"]
    last = finish(flow, task_answer("running"))
    assert last.status == "running"  # the deadline passed: the task as it is


def test_wait_stops_as_soon_as_the_task_ends_before_the_deadline() -> None:
    clock = FakeClock()
    flow = builder().wait("sess_1", "task_1", 3600, clock=clock)
    next(flow)
    clock.now += 60
    flow.send(task_answer("running"))
    clock.now += 1
    assert finish(flow, task_answer("failed")).status == "failed"


def test_wait_without_a_timeout_keeps_asking_for_the_full_hold() -> None:
    clock = FakeClock()
    flow = builder().wait("sess_1", "task_1", None, clock=clock)
    holds = [next(flow).url.params["timeout"]]
    for _ in range(5):
        clock.now += 3600
        holds.append(flow.send(task_answer("running")).url.params["timeout"])
    assert holds == [HOLD_CAP] * 6
    assert finish(flow, task_answer("cancelled")).status == "cancelled"


def test_wait_with_a_zero_timeout_asks_once() -> None:
    clock = FakeClock()
    flow = builder().wait("sess_1", "task_1", 0, clock=clock)
    assert next(flow).url.params["timeout"] == "0s"
    assert finish(flow, task_answer("queued")).status == "queued"


def test_a_bad_wait_timeout_fails_before_any_request() -> None:
    with pytest.raises(ValueError, match="duration"):
        builder().wait("sess_1", "task_1", "soon")


def test_an_error_during_a_wait_raises_its_typed_exception() -> None:
    flow = builder().wait("sess_1", "task_1", "1m", clock=FakeClock())
    next(flow)
    gone = {"type": "t", "title": "Not Found", "status": 404, "detail": "no", "code": "not_found"}
    with pytest.raises(NotFoundError):
        flow.send(httpx.Response(404, json=gone))


def test_run_submits_then_waits_on_the_new_task() -> None:
    clock = FakeClock()
    flow = builder().run(
        "sess_1", "echo", {"x": 1}, priority="low", wait_timeout="90s", clock=clock,
        metadata={"m": "v"}, idempotency_key="k",
    )  # fmt: skip

    submit = next(flow)
    assert (submit.method, submit.url.path) == ("POST", "/base/v1/sessions/sess_1/tasks")
    assert body_of(submit) == {
        "agent": "echo",
        "input": {"x": 1},
        "priority": "low",
        "metadata": {"m": "v"},
    }
    assert submit.headers["Idempotency-Key"] == "k"

    clock.now += 1  # the submit took a second: it counts against wait_timeout
    wait = flow.send(task_answer("queued", task_id="task_9"))
    assert wait.url.path == "/base/v1/sessions/sess_1/tasks/task_9/wait"
    assert wait.url.params["timeout"] == HOLD_CAP
    clock.now += 60
    assert flow.send(task_answer("running", task_id="task_9")).url.params["timeout"] == "29s"
    assert finish(flow, task_answer("completed", task_id="task_9")).task_id == "task_9"


def test_run_returns_without_waiting_when_the_submit_answers_a_finished_task() -> None:
    flow = builder().run("sess_1", "echo", 1, idempotency_key="done-before", clock=FakeClock())
    next(flow)
    assert finish(flow, task_answer("completed")).status == "completed"


def test_run_refuses_an_unknown_option() -> None:
    with pytest.raises(TypeError, match="priorty"):
        builder().run("sess_1", "echo", 1, priorty="high")  # type: ignore[call-arg]


# --- the public surface -----------------------------------------------------------------------
def test_the_public_surface_is_pinned() -> None:
    assert sorted(theazo.sdk.__all__) == [
        "APIConnectionError",
        "APIError",
        "APITimeoutError",
        "Agent",
        "Agents",
        "AsyncAgents",
        "AsyncSession",
        "AsyncSessions",
        "AsyncTasks",
        "AsyncTheazo",
        "AsyncWebhooks",
        "AuthenticationError",
        "BadRequestError",
        "BudgetExhaustedError",
        "ChargeEvent",
        "ConflictError",
        "Cost",
        "Delivery",
        "DeliveryAttempt",
        "EndEvent",
        "Limits",
        "LogEvent",
        "LogLine",
        "LogPage",
        "Network",
        "NotFoundError",
        "PayloadTooLargeError",
        "PreviousSecret",
        "ProgressEvent",
        "RateLimitError",
        "ServerError",
        "Session",
        "SessionInfo",
        "SessionStreamEvent",
        "Sessions",
        "StatusEvent",
        "StreamEvent",
        "StreamToken",
        "Task",
        "TaskError",
        "TaskPage",
        "TaskStreamEvent",
        "TaskUsage",
        "Tasks",
        "Theazo",
        "TheazoError",
        "Tokens",
        "UnprocessableEntityError",
        "Usage",
        "WebhookSecret",
        "Webhooks",
    ]
    for name in theazo.sdk.__all__:
        assert getattr(theazo.sdk, name) is not None


def test_every_name_the_top_level_package_promises_exists_in_the_sdk() -> None:
    for name in theazo._SDK_NAMES:
        assert getattr(theazo, name) is getattr(theazo.sdk, name)


def test_the_client_sends_a_submit_again_after_a_503_with_the_same_key() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            problem = {"status": 503, "code": "store_unavailable", "detail": "a moment"}
            return httpx.Response(503, json=problem, headers={"Retry-After": "0"})
        body = json.loads(request.content)
        return httpx.Response(202, json={"taskId": "task_1", "sessionId": "sess_1", **body})

    transport = httpx.MockTransport(answer)
    with (
        httpx.Client(transport=transport) as http,
        Theazo(api_key="th_test_k", base_url="http://theazo.test", http_client=http) as client,
    ):
        response = client._send(client._requests.submit("sess_1", submit_body("echo", 1)))
    assert response.status_code == 202
    assert len(seen) == 2
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]


def test_a_client_without_retries_raises_the_503() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    with (
        httpx.Client(transport=transport) as http,
        Theazo(
            api_key="th_test_k", base_url="http://theazo.test", http_client=http, max_retries=0
        ) as client,
    ):
        assert client._send(client._requests.list_agents()).status_code == 503
