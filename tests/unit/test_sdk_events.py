"""The SDK's event streams without a server: reading the wire, resuming, giving up."""

from __future__ import annotations

import httpx
import pytest

from theazo.sdk import (
    APIConnectionError,
    ChargeEvent,
    EndEvent,
    LogEvent,
    NotFoundError,
    ProgressEvent,
    StatusEvent,
)
from theazo.sdk._events import SSEParser, StreamFollower, to_event

TASK = (
    '{"taskId":"task_1","sessionId":"sess_1","agent":"a","status":"running","priority":'
    '"normal","input":null,"cost":{"amount":0,"currency":"usd"}}'
)


def _lines(text: str) -> list[str]:
    return text.split("\n")


def test_the_parser_reads_events_as_eventsource_does() -> None:
    parser = SSEParser()
    wire = 'retry: 500\n\n: keep-alive\n\nid: 3\nevent: progress\ndata: {"a":\ndata: 1}\n\n'
    found = [e for line in _lines(wire) if (e := parser.feed(line)) is not None]
    assert found == [("3", "progress", '{"a":\n1}')]
    assert parser.retry_ms == 500


def test_events_are_typed() -> None:
    status = to_event("0", "status", TASK)
    assert isinstance(status, StatusEvent) and status.task.status == "running"
    assert isinstance(to_event("9", "end", TASK), EndEvent)
    progress = to_event("2", "progress", '{"taskId":"t","progress":0.5,"message":null}')
    assert isinstance(progress, ProgressEvent) and progress.id == 2 and progress.progress == 0.5
    log = to_event("3", "log", '{"taskId":"t","stream":"stderr","text":"x","at":null}')
    assert isinstance(log, LogEvent) and log.stream == "stderr"
    charge = to_event(
        "4", "charge", '{"taskId":"t","amount":1.5,"description":"d","cost":{"amount":2}}'
    )
    assert isinstance(charge, ChargeEvent) and charge.cost.amount == 2
    assert to_event("5", "something-new", "{}") is None  # a newer server's event: skipped


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _follower(
    *,
    ends: bool = True,
    after: int | None = None,
    clock: Clock | None = None,
    deadline: float | None = None,
) -> tuple[StreamFollower, list[int | None]]:
    asked: list[int | None] = []

    def build(last: int | None) -> httpx.Request:
        asked.append(last)
        return httpx.Request("GET", "http://x/v1/stream", extensions={"timeout": {"read": 45}})

    follower = StreamFollower(
        build, after=after, ends=ends, clock=clock or Clock(), deadline=deadline, max_retries=2
    )
    return follower, asked


def test_a_dropped_stream_resumes_after_the_last_id_received() -> None:
    follower, asked = _follower()
    follower.request()
    for line in _lines(f"id: 4\nevent: status\ndata: {TASK}\n\nid: 5\nevent: prog"):
        follower.feed(line)  # the connection drops in the middle of event 5
    follower.failed(httpx.ReadError("dropped"))
    assert not follower.done
    follower.request()
    assert asked == [None, 4]
    for line in _lines(f"id: 6\nevent: end\ndata: {TASK}\n\n"):
        follower.feed(line)
    assert follower.done


def test_a_204_ends_the_stream_and_an_error_is_raised() -> None:
    follower, _ = _follower(after=9)
    assert not follower.opened(httpx.Response(204))
    assert follower.done
    problem = {"code": "task_not_found", "detail": "no task", "status": 404}
    with pytest.raises(NotFoundError):
        _follower()[0].opened(httpx.Response(404, json=problem))


def test_too_many_failures_in_a_row_give_up() -> None:
    follower, _ = _follower()
    follower.opened(httpx.Response(503, json={"code": "store_unavailable"}))
    follower.failed(httpx.ConnectError("refused"))
    assert follower.delay() > 0
    with pytest.raises(APIConnectionError):
        follower.failed(httpx.ConnectError("refused"))


def test_a_deadline_stops_the_stream_quietly() -> None:
    clock = Clock()
    follower, _ = _follower(ends=False, clock=clock, deadline=10.0)
    request = follower.request()
    assert request.extensions["timeout"]["read"] == 10.0
    clock.now = 11.0
    follower.failed(httpx.ReadTimeout("quiet"))
    assert follower.done
