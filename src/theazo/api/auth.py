"""Who is calling: every way a request proves it may act on a project, in one place.

- ``Authorization: Bearer <API key>``: the project's key; it may do everything in the project.
- ``?token=<stream token>`` (core/stream_tokens.py): what a browser's ``EventSource`` sends,
  since it cannot set headers; it may only read one session's event streams and logs.

Routes take ``Project`` (an API key) or ``Reader`` (an API key or a stream token). A caller
that proves nothing hears 401; a stream token used for another session hears 404, as for any
session the caller may not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from theazo.core.errors import NotFound, Unauthenticated
from theazo.core.service import TaskService


async def service_of(request: Request) -> TaskService:
    # async on purpose: FastAPI runs a plain `def` dependency in a thread pool, and threads
    # fighting the event loop for the GIL slowed every request down.
    service: TaskService = request.app.state.service
    return service


async def api_key_project(request: Request) -> str:
    """The caller's project, from ``Authorization: Bearer <key>``. The header is read here
    rather than through a security dependency: each dependency level costs FastAPI real time
    per request. OpenAPI still declares the scheme (see app.py)."""
    key = _bearer(request)
    if key is None:
        raise Unauthenticated("send an API key as 'Authorization: Bearer th_live_…'")
    project_id = await (await service_of(request)).authenticate(key)
    if project_id is None:
        raise Unauthenticated("the API key is not known here")
    return project_id


@dataclass(frozen=True, slots=True)
class StreamReader:
    """A caller that may read event streams and logs: a whole project (an API key), or one
    session of it (a stream token)."""

    project_id: str
    only_session: str | None = None

    def project_for(self, session_id: str) -> str:
        """The project to read ``session_id`` in; NotFound when the token is another session's."""
        if self.only_session is not None and self.only_session != session_id:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        return self.project_id


async def stream_reader(request: Request) -> StreamReader:
    """An API key if one is sent, else a stream token in ``?token=``."""
    if _bearer(request) is not None or "token" not in request.query_params:
        return StreamReader(await api_key_project(request))
    service = await service_of(request)
    grant = await service.read_stream_token(request.query_params["token"])
    if grant is None:
        raise Unauthenticated("the stream token is not valid here, or has expired")
    return StreamReader(grant.project_id, grant.session_id)


def _bearer(request: Request) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


Service = Annotated[TaskService, Depends(service_of)]
Project = Annotated[str, Depends(api_key_project)]
Reader = Annotated[StreamReader, Depends(stream_reader)]
