"""The routes of SPEC §3. Each parses, calls the service, and shapes the answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from typing import Annotated, Any

import pydantic_core
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel

from theazo.api import wire
from theazo.api.auth import Project, Service, api_key_project
from theazo.api.json_body import JsonRoute
from theazo.core import cursors, defaults
from theazo.core.errors import InvalidField
from theazo.core.models import Task
from theazo.core.service import TaskService
from theazo.core.states import TaskStatus


def _problems(*statuses: int) -> dict[int | str, dict[str, object]]:
    described = {401: "No key, or an unknown one"} | {
        400: "Malformed JSON",
        402: "The session's budget is spent",
        404: "Unknown, or not in the caller's project",
        409: "The task's state does not allow this",
        413: "Body or input too large",
        422: "A field is wrong; the problem names it",
        429: "A session limit is reached",
    }
    return {
        status: {
            "model": wire.Problem,
            "description": described[status],
            "content": {"application/problem+json": {}},
        }
        for status in (401, *statuses)
    }


problem_responses = _problems  # for the routes of other modules (api/streams.py)


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _response(model.model_dump_json(by_alias=True), status, headers)


def _json_of(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """For what is already in wire form (see wire.task_json): serialised by pydantic's own
    encoder, as a model's fields would be."""
    return _response(pydantic_core.to_json(payload), status, headers)


def _response(body: bytes | str, status: int, headers: dict[str, str] | None) -> Response:
    return Response(body, status, headers=headers, media_type="application/json")


class KeyedRoute(JsonRoute):
    authenticate = staticmethod(api_key_project)


router = APIRouter(prefix="/v1", route_class=KeyedRoute)


@router.post(
    "/sessions",
    response_model=wire.SessionOut,
    responses=_problems(400, 413, 422),
    summary="Get or create the session of a user",
)
async def create_session(body: wire.SessionCreate, project: Project, service: Service) -> Response:
    return _json(wire.SessionOut.of(await service.session_for_user(project, body.user_id)))


@router.get("/sessions/{session_id}", response_model=wire.SessionOut, responses=_problems(404))
async def get_session(session_id: str, project: Project, service: Service) -> Response:
    return _json(wire.SessionOut.of(await service.get_session(project, session_id)))


@router.patch(
    "/sessions/{session_id}",
    response_model=wire.SessionOut,
    responses=_problems(400, 404, 413, 422),
    summary="Change a session's limits",
)
async def patch_session(
    session_id: str, body: wire.SessionPatch, project: Project, service: Service
) -> Response:
    view = await service.set_limits(project, session_id, body.to_patch())
    return _json(wire.SessionOut.of(view))


def _task_location(session_id: str, task_id: str) -> str:
    return f"/v1/sessions/{session_id}/tasks/{task_id}"


@router.post(
    "/sessions/{session_id}/tasks",
    status_code=202,
    response_model=wire.TaskOut,
    responses=_problems(400, 402, 404, 413, 422, 429),
    summary="Submit a task",
)
async def submit_task(
    request: Request,
    session_id: str,
    body: wire.SubmitBody,
    project: Project,
    service: Service,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=defaults.MAX_IDEMPOTENCY_KEY_CHARS, min_length=1),
    ] = None,
    prefer: Annotated[
        str | None,
        Header(
            max_length=200,
            description="`wait=N` (RFC 7240): hold the answer up to N seconds (capped like a "
            "long poll) for the task to end: 200 with the finished task, else 202 as usual.",
        ),
    ] = None,
) -> Response:
    task = await service.submit(project, session_id, body.to_request(idempotency_key))
    headers = {"Location": _task_location(session_id, task.task_id)}
    hold = _preferred_wait(prefer, service)
    if hold > 0:
        headers["Preference-Applied"] = f"wait={hold:g}"
        if not task.status.is_terminal:
            waited = await _unless_disconnected(
                request, service.wait_submitted(project, session_id, task, hold)
            )
            if waited is None:
                return Response(status_code=499)
            task = waited
    status = 200 if hold > 0 and task.status.is_terminal else 202
    return _json_of(wire.task_json(task, service.store.now()), status, headers=headers)


_PREFER_WAIT = re.compile(r"(?:^|[\s,;])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def _preferred_wait(prefer: str | None, service: TaskService) -> float:
    match = _PREFER_WAIT.search(prefer or "")
    if match is None:
        return 0.0
    return min(float(match.group(1)), service.settings.max_wait_seconds)


@router.post(
    "/sessions/{session_id}/tasks/batch",
    status_code=202,
    response_model=wire.TaskBatch,
    responses=_problems(400, 402, 404, 413, 422, 429),
    summary="Submit up to 1,000 tasks, all or nothing",
)
async def submit_batch(
    session_id: str, body: wire.BatchBody, project: Project, service: Service
) -> Response:
    tasks = await service.submit_batch(project, session_id, [t.to_request() for t in body.tasks])
    now = service.store.now()
    return _json_of({"data": [wire.task_json(task, now) for task in tasks]}, 202)


@router.get(
    "/sessions/{session_id}/tasks",
    response_model=wire.TaskList,
    responses=_problems(404, 422),
    summary="List tasks, newest first",
)
async def list_tasks(
    session_id: str,
    project: Project,
    service: Service,
    status: Annotated[
        str | None,
        Query(
            description="One status, or several separated by commas",
            pattern=STATUS_LIST_PATTERN,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=defaults.LIST_MAX_LIMIT)] = defaults.LIST_DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(pattern=cursors.PATTERN, description="`nextCursor` of the previous page"),
    ] = None,
) -> Response:
    statuses = _parse_statuses(status)
    tasks = await service.list(project, session_id, statuses, limit + 1, cursor)
    page, more = tasks[:limit], len(tasks) > limit
    next_cursor = cursors.encode(page[-1].task_id) if more and page else None
    now = service.store.now()
    return _json_of({"data": [wire.task_json(t, now) for t in page], "nextCursor": next_cursor})


_STATUS = "(queued|running|completed|failed|cancelled)"
STATUS_LIST_PATTERN = rf"^\s*{_STATUS}\s*(,\s*{_STATUS}\s*)*$"


def _parse_statuses(value: str | None) -> list[TaskStatus]:
    if value is None or not value.strip():
        return []
    statuses = []
    for part in value.split(","):
        try:
            statuses.append(TaskStatus(part.strip()))
        except ValueError:
            raise InvalidField(
                "status",
                f"{part.strip()!r} is not a status: use queued, running, completed, failed "
                "or cancelled",
                code="invalid_status",
            ) from None
    return statuses


@router.get(
    "/sessions/{session_id}/tasks/{task_id}",
    response_model=wire.TaskOut,
    responses=_problems(404),
)
async def get_task(session_id: str, task_id: str, project: Project, service: Service) -> Response:
    task = await service.get(project, session_id, task_id)
    return _json_of(wire.task_json(task, service.store.now()))


@router.get(
    "/sessions/{session_id}/tasks/{task_id}/wait",
    response_model=wire.TaskOut,
    responses=_problems(404, 422),
    summary="Long poll: answer when the task ends or the timeout passes",
)
async def wait_task(
    request: Request,
    session_id: str,
    task_id: str,
    project: Project,
    service: Service,
    timeout: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=wire.DURATION_PATTERN,
            description=f'"1500ms", "30s", "5m", "1h" or seconds; capped at '
            f"{defaults.MAX_WAIT_SECONDS:g}s by default",
        ),
    ] = None,
) -> Response:
    seconds = service.wait_timeout(timeout)
    task = await _unless_disconnected(request, service.wait(project, session_id, task_id, seconds))
    if task is None:
        return Response(status_code=499)
    return _json_of(wire.task_json(task, service.store.now()))


async def _unless_disconnected(request: Request, wait: Awaitable[Task]) -> Task | None:
    """The wait's task, or None if the client left first (then stop holding it for nobody).

    The wait runs in the request's own task; one small watcher cancels it if the client goes
    (a task per held wait is memory: ten thousand waits are ten thousand of them)."""
    handler = asyncio.current_task()
    assert handler is not None
    left = False

    async def watch() -> None:
        nonlocal left
        await _until_disconnected(request)
        left = True
        handler.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await wait
    except asyncio.CancelledError:
        if left:
            handler.uncancel()  # our own cancel, handled: the request may still be answered
            return None
        raise
    finally:
        watcher.cancel()


async def _until_disconnected(request: Request) -> None:
    """Return when the client closes the connection (a GET's body is empty: the next message
    is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post(
    "/sessions/{session_id}/tasks/{task_id}/cancel",
    response_model=wire.TaskOut,
    responses=_problems(404, 409),
)
async def cancel_task(
    session_id: str, task_id: str, project: Project, service: Service
) -> Response:
    task = await service.cancel(project, session_id, task_id)
    return _json_of(wire.task_json(task, service.store.now()))


@router.get(
    "/sessions/{session_id}/tasks/{task_id}/deliveries",
    response_model=wire.DeliveryList,
    responses=_problems(404),
    summary="The task's webhook deliveries and every attempt",
)
async def list_deliveries(
    session_id: str, task_id: str, project: Project, service: Service
) -> Response:
    deliveries = await service.deliveries(project, session_id, task_id)
    return _json(wire.DeliveryList(data=[wire.DeliveryOut.of(d) for d in deliveries]))


@router.post(
    "/sessions/{session_id}/tasks/{task_id}/deliveries/redeliver",
    status_code=202,
    response_model=wire.DeliveryOut,
    responses=_problems(404, 409),
    summary="Send a finished task's final webhook again",
)
async def redeliver(session_id: str, task_id: str, project: Project, service: Service) -> Response:
    delivery = await service.redeliver(project, session_id, task_id)
    return _json(wire.DeliveryOut.of(delivery), 202)


@router.get(
    "/webhook-secret",
    response_model=wire.WebhookSecretOut,
    responses=_problems(),
    summary="The project's webhook signing secret",
)
async def get_webhook_secret(project: Project, service: Service) -> Response:
    return _json(wire.WebhookSecretOut.of(await service.webhook_secrets(project)))


@router.post(
    "/webhook-secret/rotate",
    response_model=wire.WebhookSecretOut,
    responses=_problems(),
    summary="Make a new webhook secret; the old one keeps signing for the overlap window",
)
async def rotate_webhook_secret(project: Project, service: Service) -> Response:
    return _json(wire.WebhookSecretOut.of(await service.rotate_webhook_secret(project)))


@router.get("/agents", response_model=wire.AgentList, responses=_problems())
async def list_agents(project: Project, service: Service) -> Response:
    agents = sorted(service.catalogue().values(), key=lambda a: a.name)
    return _json(wire.AgentList(data=[wire.AgentOut.of(a) for a in agents]))


health_router = APIRouter()


@health_router.get("/healthz", response_model=wire.Health)
async def healthz(request: Request, service: Service) -> Response:
    pool = request.app.state.node.pool
    found = pool.isolation
    sandbox = wire.SandboxHealth(
        tier=pool.tier.label,
        network=pool.settings.isolation.network.value,
        landlock_abi=found.get("landlockAbi", 0) if found.get("namespaces") else 0,
        cgroup=found.get("cgroup") if found.get("namespaces") else None,
    )
    return _json(wire.Health(status="ok", waits=service.store.events.waiter_count, sandbox=sandbox))
