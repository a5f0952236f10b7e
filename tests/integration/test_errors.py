"""Bad input gets a clear problem+json 4xx, never a 500; tenants never see each other."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, new_api_key
from theazo import AuthenticationError, NotFoundError, Theazo
from theazo.sdk import Session

PROBLEM = "application/problem+json"


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture(scope="module")
def other_key(server: ServerProcess) -> str:
    """A key of another project on the same server (made as an operator would)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "theazo", "keys", "create", "--database", server.database],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _call(
    server: ServerProcess, method: str, path: str, key: str | None = "", **kw: Any
) -> httpx.Response:
    headers = kw.pop("headers", {})
    if key is not None:
        headers["Authorization"] = f"Bearer {key or server.api_key}"
    return httpx.request(method, server.base_url + path, headers=headers, timeout=10, **kw)


def _assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    return body


def test_another_projects_session_and_task_are_404(
    server: ServerProcess, session: Session, other_key: str
) -> None:
    task = session.tasks.submit(agent="echo", input="mine")
    with Theazo(api_key=other_key, base_url=server.base_url) as intruder:
        with pytest.raises(NotFoundError):
            intruder.sessions.get(session.session_id)
        theirs = intruder.sessions.for_user(session.user_id)  # same user id, other project
        assert theirs.session_id != session.session_id
        with pytest.raises(NotFoundError):
            theirs.tasks.get(task.task_id)
    for method, path in [
        ("GET", f"/v1/sessions/{session.session_id}"),
        ("GET", f"/v1/sessions/{session.session_id}/tasks"),
        ("GET", f"/v1/sessions/{session.session_id}/tasks/{task.task_id}"),
        ("GET", f"/v1/sessions/{session.session_id}/tasks/{task.task_id}/wait?timeout=0"),
        ("POST", f"/v1/sessions/{session.session_id}/tasks/{task.task_id}/cancel"),
    ]:
        _assert_problem(_call(server, method, path, other_key), 404)
    response = _call(
        server,
        "POST",
        f"/v1/sessions/{session.session_id}/tasks",
        other_key,
        json={"agent": "echo", "input": 1},
    )
    _assert_problem(response, 404)


def test_a_task_is_invisible_from_another_session(theazo: Theazo, session: Session) -> None:
    task = session.tasks.submit(agent="echo", input="x")
    other = theazo.sessions.for_user(session.user_id + "-other")
    with pytest.raises(NotFoundError):
        other.tasks.get(task.task_id)
    with pytest.raises(NotFoundError):
        other.tasks.cancel(task.task_id)


@pytest.mark.parametrize("key", [None, "th_live_" + "x" * 40, "not-a-key", new_api_key()])
@pytest.mark.parametrize("body", [b'{"userId": "u"}', b"{bad", b'{"userId": NaN}', b"{}"])
def test_missing_or_unknown_key_is_401(server: ServerProcess, key: str | None, body: bytes) -> None:
    """Whatever the body: a caller without a valid key learns nothing about it."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    response = httpx.post(
        server.base_url + "/v1/sessions", content=body, headers=headers, timeout=10
    )
    _assert_problem(response, 401, "unauthorized")


def test_sdk_raises_typed_error_for_a_bad_key(server: ServerProcess) -> None:
    with (
        Theazo(api_key=new_api_key(), base_url=server.base_url) as theazo,
        pytest.raises(AuthenticationError) as caught,
    ):
        theazo.sessions.for_user("u")
    assert caught.value.status == 401 and caught.value.code == "unauthorized"


def test_unknown_session_and_task_are_404(server: ServerProcess, session: Session) -> None:
    _assert_problem(_call(server, "GET", "/v1/sessions/sess_nope"), 404)
    _assert_problem(_call(server, "GET", f"/v1/sessions/{session.session_id}/tasks/task_x"), 404)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"agent": "no_such_agent", "input": 1}, "unknown_agent", "agent"),
        ({"agent": "echo", "input": 1, "priority": "urgent"}, "invalid_priority", "priority"),
        ({"agent": "echo", "input": 1, "timeout": "soon"}, "invalid_duration", "timeout"),
        ({"agent": "echo", "input": 1, "timeout": -5}, "invalid_duration", "timeout"),
        (
            {"agent": "echo", "input": 1, "webhook": "ftp://x.example/"},
            "invalid_webhook_url",
            "webhook",
        ),
        ({"agent": "echo", "input": 1, "webhook": "not a url"}, "invalid_webhook_url", "webhook"),
        (
            {"agent": "echo", "input": 1, "webhook": "http://127.0.0.1:9/x"},
            "webhook_url_forbidden",
            "webhook",
        ),
        (
            {"agent": "echo", "input": 1, "webhook": "http://10.1.2.3/x"},
            "webhook_url_forbidden",
            "webhook",
        ),
        (
            {"agent": "echo", "input": 1, "webhook": "http://[::1]/x"},
            "webhook_url_forbidden",
            "webhook",
        ),
        ({"agent": "echo", "input": 1, "retries": -1}, "validation_error", "retries"),
        ({"agent": "echo", "input": 1, "retries": "2"}, "validation_error", "retries"),
        ({"agent": "echo", "input": 1, "metadata": {"a": 1}}, "validation_error", "metadata.a"),
        ({"agent": "echo", "input": 1, "priorty": "high"}, "validation_error", "priorty"),
        ({"agent": "echo"}, "validation_error", "input"),
        ({"input": 1}, "validation_error", "agent"),
        ({"agent": 5, "input": 1}, "validation_error", "agent"),
        ({"agent": "data_processor", "input": {"rows": "nope"}}, "invalid_input", None),
        # What one backend or another cannot store and send back (see core/json_values.py).
        ({"agent": "echo", "input": _nested(65)}, "invalid_input", "input"),
        ({"agent": "echo", "input": {"k": "a\x00b"}}, "invalid_input", "input"),
        ({"agent": "echo", "input": {"a\x00": 1}}, "invalid_input", "input"),
        (
            {"agent": "echo", "input": 1, "metadata": {"k": "\x00"}},
            "validation_error",
            "metadata.k",
        ),
        (
            {"agent": "echo", "input": 1, "webhook": "https://example.com/\x00"},
            "invalid_webhook_url",
            "webhook",
        ),
        ({"agent": "ec\x00ho", "input": 1}, "validation_error", "agent"),
    ],
)
def test_wrong_fields_are_422_naming_the_field(
    server: ServerProcess, session: Session, body: dict[str, Any], code: str, field: str | None
) -> None:
    response = _call(server, "POST", f"/v1/sessions/{session.session_id}/tasks", json=body)
    problem = _assert_problem(response, 422, code)
    if field is not None:
        assert problem["field"] == field
        assert field.split(".")[0] in problem["detail"]
    assert session.tasks.list().data == []  # nothing was stored


@pytest.mark.parametrize("raw", [b"{bad", b"", b"\xff\xfe", b'{"agent": "echo", "input": }'])
def test_malformed_json_is_400(server: ServerProcess, session: Session, raw: bytes) -> None:
    response = _call(
        server,
        "POST",
        f"/v1/sessions/{session.session_id}/tasks",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    _assert_problem(response, response.status_code)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"agent": "echo", "input": NaN}',
        b'{"agent": "echo", "input": -Infinity}',
        b'{"agent": "echo", "input": 1e400}',
        b'{"agent": "echo", "input": ' + b"9" * 5000 + b"}",
        b'{"agent": "echo", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"agent": "echo", "input": "\xff"}',
    ],
    ids=["nan", "infinity", "out-of-range", "long-integer", "deep", "not-utf8"],
)
@pytest.mark.parametrize("path", ["tasks", "tasks/batch"])
def test_what_python_parses_but_json_is_not_is_400(
    server: ServerProcess, session: Session, raw: bytes, path: str
) -> None:
    if path == "tasks/batch":
        raw = b'{"tasks": [' + raw + b"]}"
    response = _call(server, "POST", f"/v1/sessions/{session.session_id}/{path}", content=raw)
    _assert_problem(response, 400, "malformed_json")
    assert session.tasks.list().data == []


def test_a_lone_surrogate_in_the_input_is_422(server: ServerProcess, session: Session) -> None:
    raw = b'{"agent": "echo", "input": {"text": "\\ud800"}}'  # JSON escapes, as sent
    response = _call(server, "POST", f"/v1/sessions/{session.session_id}/tasks", content=raw)
    assert _assert_problem(response, 422, "invalid_input")["field"] == "input"
    assert session.tasks.list().data == []


def test_nul_in_a_user_id_is_422_and_in_a_path_404(server: ServerProcess, session: Session) -> None:
    response = _call(server, "POST", "/v1/sessions", json={"userId": "a\x00b"})
    assert _assert_problem(response, 422)["field"] == "userId"
    _assert_problem(_call(server, "GET", "/v1/sessions/sess_%00"), 404)
    path = f"/v1/sessions/{session.session_id}/tasks/task_%00/wait"
    _assert_problem(_call(server, "GET", path), 404)


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "null", "42"])
def test_a_body_that_is_not_an_object_is_422(
    server: ServerProcess, session: Session, raw: str
) -> None:
    response = _call(
        server, "POST", f"/v1/sessions/{session.session_id}/tasks", content=raw.encode()
    )
    _assert_problem(response, 422)


def test_oversized_body_is_413(server: ServerProcess, session: Session) -> None:
    huge = {"agent": "echo", "input": "x" * (2 * 1024 * 1024)}
    response = _call(server, "POST", f"/v1/sessions/{session.session_id}/tasks", json=huge)
    _assert_problem(response, 413, "payload_too_large")


def test_oversized_chunked_body_is_413(server: ServerProcess, session: Session) -> None:
    def chunks() -> Any:
        yield b'{"agent": "echo", "input": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = _call(server, "POST", f"/v1/sessions/{session.session_id}/tasks", content=chunks())
    _assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=%%%", "cursor"),
    ],
)
def test_bad_list_queries_are_422(
    server: ServerProcess, session: Session, query: str, field: str
) -> None:
    response = _call(server, "GET", f"/v1/sessions/{session.session_id}/tasks?{query}")
    assert _assert_problem(response, 422)["field"] == field


def test_bad_wait_timeout_is_422(server: ServerProcess, session: Session) -> None:
    task = session.tasks.submit(agent="echo", input=1)
    path = f"/v1/sessions/{session.session_id}/tasks/{task.task_id}/wait?timeout=forever"
    _assert_problem(_call(server, "GET", path), 422, "invalid_duration")


def test_unknown_route_and_method(server: ServerProcess) -> None:
    _assert_problem(_call(server, "GET", "/v1/nothing-here"), 404)
    _assert_problem(_call(server, "DELETE", "/v1/sessions"), 405)


def test_the_server_survives_and_stored_data_is_intact(
    server: ServerProcess, session: Session
) -> None:
    task = session.run(agent="echo", input={"kept": True})
    for raw in [b"{", b"[]", b'{"agent": null}', b"\x00" * 100]:
        _call(server, "POST", f"/v1/sessions/{session.session_id}/tasks", content=raw)
    assert session.tasks.get(task.task_id).output == {"kept": True}
    assert httpx.get(server.base_url + "/healthz").status_code == 200
