"""Every error answer becomes a typed exception carrying the problem's code and status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from theazo.sdk import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExhaustedError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    Task,
    TheazoError,
    UnprocessableEntityError,
)
from theazo.sdk._base import error_from_response, parse, parse_retry_after, transport_error


def problem(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem+json body as the server sends it."""
    return {
        "type": f"https://theazo.dev/problems/{code}",
        "title": "Some Title",
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def answer(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(
        status, json=body, headers={"Content-Type": "application/problem+json", **headers}
    )


@pytest.mark.parametrize(
    ("status", "code", "exception"),
    [
        (400, "malformed_json", BadRequestError),
        (401, "unauthorized", AuthenticationError),
        (402, "budget_exhausted", BudgetExhaustedError),
        (404, "not_found", NotFoundError),
        (409, "invalid_transition", ConflictError),
        (413, "payload_too_large", PayloadTooLargeError),
        (422, "unknown_agent", UnprocessableEntityError),
        (429, "session_queue_full", RateLimitError),
        (500, "internal_error", ServerError),
        (503, "unavailable", ServerError),
    ],
)
def test_each_status_raises_its_own_exception(
    status: int, code: str, exception: type[APIError]
) -> None:
    error = error_from_response(answer(status, problem(status, code, "what went wrong")))

    assert type(error) is exception
    assert isinstance(error, APIError)
    assert isinstance(error, TheazoError)
    assert (error.status, error.code, error.detail) == (status, code, "what went wrong")
    assert error.title == "Some Title"
    assert error.problem["type"] == f"https://theazo.dev/problems/{code}"


def test_another_client_error_status_raises_the_base_api_error() -> None:
    error = error_from_response(answer(405, problem(405, "method_not_allowed", "no")))
    assert type(error) is APIError
    assert error.code == "method_not_allowed"


def test_the_message_reads_status_code_and_detail() -> None:
    body = problem(422, "unknown_agent", "no agent named 'resercher'", field="agent")
    error = error_from_response(answer(422, body))

    assert str(error) == "422 unknown_agent: no agent named 'resercher'"
    assert error.field == "agent"


def test_a_problem_without_a_field_has_none() -> None:
    assert error_from_response(answer(404, problem(404, "not_found", "x"))).field is None


def test_a_rate_limit_carries_the_retry_after_header() -> None:
    response = answer(429, problem(429, "session_queue_full", "full"), **{"Retry-After": "2"})
    error = error_from_response(response)

    assert isinstance(error, RateLimitError)
    assert error.retry_after == 2.0


def test_a_rate_limit_without_retry_after_has_none() -> None:
    error = error_from_response(answer(429, problem(429, "session_queue_full", "full")))
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


def test_retry_after_may_be_an_http_date() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after("Thu, 02 Jan 2025 03:04:35 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 02 Jan 2025 03:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None


def test_a_non_json_error_body_still_raises_an_api_error() -> None:
    response = httpx.Response(502, text="<html><body>Bad Gateway from nginx</body></html>")
    error = error_from_response(response)

    assert isinstance(error, ServerError)
    assert (error.status, error.code) == (502, "http_error")
    assert "Bad Gateway from nginx" in error.detail
    assert error.title == "Bad Gateway"
    assert error.problem == {}


def test_a_long_non_json_body_is_truncated() -> None:
    error = error_from_response(httpx.Response(500, text="x" * 10_000))
    assert error.code == "http_error"
    assert 0 < len(error.detail) < 1_000


def test_an_empty_error_body_falls_back_to_the_reason_phrase() -> None:
    error = error_from_response(httpx.Response(404))
    assert isinstance(error, NotFoundError)
    assert error.detail == "Not Found"


def test_json_that_is_not_a_problem_object_is_treated_as_text() -> None:
    error = error_from_response(httpx.Response(400, json=["not", "a", "problem"]))
    assert isinstance(error, BadRequestError)
    assert error.code == "http_error"


def test_parse_raises_for_an_error_and_reads_a_success() -> None:
    with pytest.raises(NotFoundError) as caught:
        parse(answer(404, problem(404, "task_not_found", "no task task_x")), Task)
    assert caught.value.code == "task_not_found"

    body = {"taskId": "task_1", "sessionId": "sess_1", "agent": "echo", "status": "queued"}
    assert parse(httpx.Response(202, json=body), Task).task_id == "task_1"


def test_a_success_that_is_not_the_expected_shape_is_a_theazo_error() -> None:
    with pytest.raises(TheazoError, match="not a Task"):
        parse(httpx.Response(200, text="<html>captive portal</html>"), Task)


def test_a_time_out_becomes_api_timeout_error() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:8321/v1/agents")
    error = transport_error(httpx.ReadTimeout("timed out", request=request), request)

    assert isinstance(error, APITimeoutError)
    assert isinstance(error, APIConnectionError)
    assert error.request is request
    assert "GET http://127.0.0.1:8321/v1/agents" in str(error)


def test_a_refused_connection_becomes_api_connection_error() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:8321/v1/sessions")
    error = transport_error(httpx.ConnectError("connection refused", request=request), request)

    assert type(error) is APIConnectionError
    assert "connection refused" in str(error)


def test_the_exception_tree_is_as_documented() -> None:
    assert issubclass(APIError, TheazoError)
    assert issubclass(APIConnectionError, TheazoError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert not issubclass(APIConnectionError, APIError)
    for subclass in (
        BadRequestError,
        AuthenticationError,
        BudgetExhaustedError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        UnprocessableEntityError,
        RateLimitError,
        ServerError,
    ):
        assert issubclass(subclass, APIError)
