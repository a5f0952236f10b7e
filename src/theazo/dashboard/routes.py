"""The dashboard's HTTP side: its page and assets at /dashboard, and its JSON at
/dashboard/api. Each route parses, calls the dashboard's operations (dashboard/views.py), and
shapes the answer. Every route but sign-in needs the sign-in cookie; every change also needs
the page's own origin and its CSRF token (dashboard/auth.py)."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

import pydantic_core
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import AwareDatetime
from starlette.staticfiles import StaticFiles

from theazo.api import sse, wire
from theazo.api.json_body import JsonRoute
from theazo.api.routes import STATUS_LIST_PATTERN
from theazo.api.wire import WireModel
from theazo.core import defaults
from theazo.dashboard import live
from theazo.dashboard.auth import (
    COOKIE,
    Changer,
    DashboardService,
    Viewer,
    check_same_origin,
    signed_in,
)
from theazo.dashboard.wire import (
    BulkCancelBody,
    BulkCancelOut,
    DetailOut,
    Filter,
    MeOut,
    OverviewOut,
    SelectionOut,
    SessionPage,
    SignInBody,
    StreamTokenOut,
    dashboard_task,
)

STATIC = __package__ or "theazo.dashboard"
# The page loads nothing from anywhere else, runs no inline script and is never framed.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _DashboardRoute(JsonRoute):
    authenticate = staticmethod(signed_in)


class _SignInRoute(JsonRoute):
    pass


api = APIRouter(prefix="/dashboard/api", route_class=_DashboardRoute, include_in_schema=False)
entry = APIRouter(prefix="/dashboard/api", route_class=_SignInRoute, include_in_schema=False)
pages = APIRouter(include_in_schema=False)


def _json(model: WireModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(by_alias=True), status, media_type="application/json")


def _json_of(payload: object) -> Response:
    """For tasks, already in the API's wire form (api/wire.py: task_json)."""
    return Response(pydantic_core.to_json(payload), media_type="application/json")


# --- the page --------------------------------------------------------------------------------
@pages.get("/dashboard")
async def dashboard_root() -> Response:
    return RedirectResponse("/dashboard/", status_code=308)


@pages.get("/dashboard/")
async def dashboard_page() -> Response:
    page = resources.files(STATIC).joinpath("static", "index.html").read_bytes()
    return Response(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


class _Assets(StaticFiles):
    """The page's scripts and styles: revalidated on every load (an upgrade shows at once;
    an unchanged file costs a 304), never sniffed as another type."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


# --- signing in and out ---------------------------------------------------------------------
@entry.post("/sign-in")
async def sign_in(request: Request, body: SignInBody, dashboard: DashboardService) -> Response:
    check_same_origin(request)
    cookie, grant = await dashboard.sign_in(body.api_key)
    response = _json(MeOut.of(grant))
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(defaults.DASHBOARD_SESSION_HOURS * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@entry.post("/sign-out", status_code=204)
async def sign_out(request: Request) -> Response:
    check_same_origin(request)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@api.get("/me")
async def me(viewer: Viewer) -> Response:
    return _json(MeOut.of(viewer))


# --- tasks -----------------------------------------------------------------------------------
def _filter(
    status: Annotated[str | None, Query(pattern=STATUS_LIST_PATTERN)] = None,
    agent: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    session_id: Annotated[
        str | None, Query(alias="sessionId", min_length=1, max_length=200)
    ] = None,
    user_id: Annotated[str | None, Query(alias="userId", min_length=1, max_length=200)] = None,
    priority: Annotated[wire.PriorityLabel | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
) -> Filter:
    statuses = [s.strip() for s in status.split(",")] if status else []
    return Filter(
        status=statuses,  # type: ignore[arg-type]  # the pattern let only statuses through
        agent=agent,
        session_id=session_id,
        user_id=user_id,
        priority=priority,
        since=since,
        until=until,
    )


Filters = Annotated[Filter, Depends(_filter)]


@api.get("/tasks")
async def list_tasks(
    viewer: Viewer,
    dashboard: DashboardService,
    filters: Filters,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=defaults.LIST_MAX_LIMIT)] = defaults.LIST_DEFAULT_LIMIT,
) -> Response:
    query = filters.to_query()
    page = await dashboard.tasks(viewer.project_id, query, limit, cursor)
    now = dashboard.store.now()
    body = {"data": [dashboard_task(t, now) for t in page.tasks], "nextCursor": page.next_cursor}
    return _json_of(body)


@api.get("/tasks/selection")
async def selection(
    viewer: Viewer,
    dashboard: DashboardService,
    filters: Filters,
) -> Response:
    query = filters.to_query()
    found = await dashboard.selection(viewer.project_id, query)
    return _json(SelectionOut(count=found.count, capped=found.capped, through=found.through))


@api.post("/tasks/cancel")
async def bulk_cancel(
    body: BulkCancelBody, changer: Changer, dashboard: DashboardService
) -> Response:
    done = await dashboard.cancel_selection(changer.project_id, body.to_query(), body.through)
    return _json(BulkCancelOut(cancelled=done.cancelled, already_ended=done.already_ended))


@api.get("/sessions/{session_id}/tasks/{task_id}")
async def task_detail(
    session_id: str, task_id: str, viewer: Viewer, dashboard: DashboardService
) -> Response:
    detail = await dashboard.detail(viewer.project_id, session_id, task_id)
    return _json(DetailOut.of(detail, dashboard.store.now()))


@api.post("/sessions/{session_id}/tasks/{task_id}/cancel")
async def cancel_task(
    session_id: str, task_id: str, changer: Changer, dashboard: DashboardService
) -> Response:
    task = await dashboard.service.cancel(changer.project_id, session_id, task_id)
    return _json_of(dashboard_task(task, dashboard.store.now()))


@api.post("/sessions/{session_id}/tasks/{task_id}/redeliver", status_code=202)
async def redeliver(
    session_id: str, task_id: str, changer: Changer, dashboard: DashboardService
) -> Response:
    delivery = await dashboard.service.redeliver(changer.project_id, session_id, task_id)
    return _json(wire.DeliveryOut.of(delivery), 202)


@api.get("/sessions/{session_id}/stream-token")
async def stream_token(session_id: str, viewer: Viewer, dashboard: DashboardService) -> Response:
    """A stream token for the page's EventSource on the public task streams (read-only, one
    session, short-lived): the page never holds the key."""
    token, _ = await dashboard.service.mint_stream_token(viewer.project_id, session_id, None)
    return _json(StreamTokenOut(token=token))


# --- sessions, the deployment, the live list ------------------------------------------------
@api.get("/sessions")
async def list_sessions(
    viewer: Viewer,
    dashboard: DashboardService,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[
        int, Query(ge=1, le=defaults.LIST_MAX_LIMIT)
    ] = defaults.DASHBOARD_SESSIONS_PAGE,
) -> Response:
    views = await dashboard.sessions(viewer.project_id, after, limit + 1)
    page = views[:limit]
    next_after = page[-1].session.user_id if len(views) > limit else None
    return _json(SessionPage(data=[wire.SessionOut.of(v) for v in page], next_after=next_after))


@api.patch("/sessions/{session_id}")
async def patch_session(
    session_id: str, body: wire.SessionPatch, changer: Changer, dashboard: DashboardService
) -> Response:
    view = await dashboard.service.set_limits(changer.project_id, session_id, body.to_patch())
    return _json(wire.SessionOut.of(view))


@api.get("/overview")
async def overview(viewer: Viewer, dashboard: DashboardService) -> Response:
    return _json(OverviewOut.of(await dashboard.overview(viewer.project_id)))


@api.get("/events")
async def events(viewer: Viewer, dashboard: DashboardService) -> Response:
    return sse.EventStreamResponse(live.project_frames(dashboard.store.events, viewer.project_id))


def install(app: FastAPI) -> None:
    """Serve the dashboard from ``app``: its page, its assets, its JSON."""
    app.include_router(pages)
    app.include_router(entry)
    app.include_router(api)
    assets = _Assets(packages=[(STATIC, "static")])
    app.mount("/dashboard/static", assets, name="dashboard-static")
