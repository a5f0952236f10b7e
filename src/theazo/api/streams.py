"""The routes of SPEC §8: a task's and a session's event streams, a task's log, and the
stream tokens a browser reads them with. Each parses, calls the service, shapes the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from theazo.api import sse, wire
from theazo.api.auth import Project, Reader, Service, stream_reader
from theazo.api.json_body import JsonRoute
from theazo.api.routes import KeyedRoute, problem_responses
from theazo.core import defaults
from theazo.core.clock import to_rfc3339
from theazo.core.errors import InvalidField

_ID = r"^\s*[0-9]{1,18}\s*$"
After = Annotated[
    str | None,
    Query(
        max_length=40,
        description="Resume after this event id (the `id:` of the last event received); "
        "the same as the Last-Event-ID header, which it overrides.",
    ),
]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=40,
        description="Sent by EventSource when it reconnects: resume after this id.",
    ),
]
Token = Annotated[
    str | None,
    Query(
        max_length=512,
        description="A stream token (POST /v1/sessions/{sessionId}/tokens), for a browser's "
        "EventSource, which cannot send an Authorization header.",
    ),
]
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events (docs/api.md, Events)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    204: {"description": "The task ended before the given id: nothing will follow."},
}


class _ReaderRoute(JsonRoute):
    authenticate = staticmethod(stream_reader)


router = APIRouter(prefix="/v1", route_class=_ReaderRoute)
keyed_router = APIRouter(prefix="/v1", route_class=KeyedRoute)


def _cursor(after: str | None, last_event_id: str | None) -> int | None:
    """The id to resume after: ?after= if given, else Last-Event-ID; None for a fresh stream."""
    for field, value in (("after", after), ("Last-Event-ID", last_event_id)):
        if value is not None and value.strip():
            if not value.isascii() or not value.strip().isdigit() or len(value.strip()) > 18:
                raise InvalidField(
                    field, f"{value!r} is not an event id (a whole number)", code="invalid_cursor"
                )
            return int(value)
    return None


@router.get(
    "/sessions/{session_id}/tasks/{task_id}/events",
    status_code=200,
    response_class=sse.EventStreamResponse,
    responses={**_STREAM, **problem_responses(404, 422)},
    summary="The task's events, live (Server-Sent Events)",
)
async def task_events(
    session_id: str,
    task_id: str,
    reader: Reader,
    service: Service,
    after: After = None,
    last_event_id: LastEventId = None,
    token: Token = None,
) -> Response:
    project = reader.project_for(session_id)
    stream = await service.task_stream(project, session_id, task_id, _cursor(after, last_event_id))
    if stream is None:
        return Response(status_code=204)
    return sse.EventStreamResponse(sse.frames(stream, "task"))


@router.get(
    "/sessions/{session_id}/events",
    status_code=200,
    response_class=sse.EventStreamResponse,
    responses={**_STREAM, **problem_responses(404, 422)},
    summary="The status and progress events of every task of the session, live",
)
async def session_events(
    session_id: str,
    reader: Reader,
    service: Service,
    after: After = None,
    last_event_id: LastEventId = None,
    token: Token = None,
) -> Response:
    project = reader.project_for(session_id)
    stream = await service.session_stream(project, session_id, _cursor(after, last_event_id))
    return sse.EventStreamResponse(sse.frames(stream, "session"))


@router.get(
    "/sessions/{session_id}/tasks/{task_id}/logs",
    response_model=wire.LogPage,
    responses=problem_responses(404, 422),
    summary="What the agent wrote to stdout and stderr, in order",
)
async def task_logs(
    session_id: str,
    task_id: str,
    reader: Reader,
    service: Service,
    after: Annotated[
        str | None,
        Query(pattern=_ID, description="A line's `seq`, or the previous page's `nextCursor`"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=defaults.LOG_PAGE_MAX)] = defaults.LOG_PAGE_DEFAULT,
    token: Token = None,
) -> Response:
    project = reader.project_for(session_id)
    start = 0 if after is None else int(after)
    lines = await service.task_logs(project, session_id, task_id, start, limit + 1)
    page, more = lines[:limit], len(lines) > limit
    body = wire.LogPage(
        data=[
            wire.LogLineOut(
                seq=line.seq,
                stream=line.data["stream"],
                text=line.data["text"],
                at=to_rfc3339(line.at) or "",
            )
            for line in page
        ],
        next_cursor=str(page[-1].seq) if more else None,
    )
    return Response(body.model_dump_json(by_alias=True), media_type="application/json")


@keyed_router.post(
    "/sessions/{session_id}/tokens",
    status_code=201,
    response_model=wire.StreamTokenOut,
    responses=problem_responses(400, 404, 413, 422),
    summary="A short-lived token that reads this session's streams and logs (for a browser)",
)
async def mint_token(
    session_id: str, project: Project, service: Service, body: wire.StreamTokenBody | None = None
) -> Response:
    ttl = None if body is None else body.ttl
    token, grant = await service.mint_stream_token(project, session_id, ttl)
    out = wire.StreamTokenOut(
        token=token, session_id=grant.session_id, expires_at=to_rfc3339(grant.expires_at) or ""
    )
    return Response(
        out.model_dump_json(by_alias=True), status_code=201, media_type="application/json"
    )
