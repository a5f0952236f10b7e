"""Every error answer, in one place: domain errors and framework errors become RFC 9457
``application/problem+json`` with a stable ``code``. Nothing a client sends produces a 500;
a database that fails for a moment is a 503 ``store_unavailable`` with ``Retry-After`` (507
``store_full`` for a full disk); a bug of ours produces a 500 problem without a traceback
(the traceback goes to the log).

The handlers are coroutines: Starlette runs a plain function in a thread, where the
exception being handled is not the thread's own and ``log.exception`` logged "NoneType: None".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from theazo.core.errors import (
    BudgetExhausted,
    DomainError,
    Forbidden,
    InvalidField,
    InvalidTransition,
    LimitReached,
    NotFound,
    PayloadTooLarge,
    StoreFull,
    StoreUnavailable,
    Unauthenticated,
)
from theazo.observability.logs import task_fields

log = logging.getLogger("theazo.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://theazo.dev/problems/"

_STATUS_OF: dict[type[DomainError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    InvalidField: 422,
    PayloadTooLarge: 413,
    InvalidTransition: 409,
    LimitReached: 429,
    BudgetExhausted: 402,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

# Codes for an error of a kind of our own (see api/wire.py), whatever the field.
_TYPE_CODES = {"unstorable_json": "invalid_input"}
# Codes for a wrong field, by the field's name; any other field is a "validation_error".
_FIELD_CODES = {
    "priority": "invalid_priority",
    "timeout": "invalid_duration",
    "webhook": "invalid_webhook_url",
    "status": "invalid_status",
    "cursor": "invalid_cursor",
}


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    errors: Sequence[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = list(errors)
    return Response(
        json.dumps(body, ensure_ascii=False), status, headers=headers, media_type=MEDIA_TYPE
    )


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status = next(s for cls, s in _STATUS_OF.items() if isinstance(exc, cls))
    headers = None
    if isinstance(exc, LimitReached):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    elif isinstance(exc, Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="theazo"'}
    field = exc.field if isinstance(exc, InvalidField) else None
    detail = exc.detail
    if field is not None and field not in detail:
        detail = f"{field}: {detail}"
    return problem(status, exc.code, detail, field=field, headers=headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    for error in raw:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error")
            detail = "the request body is not valid JSON" + (f": {reason}" if reason else "")
            return problem(400, "malformed_json", detail)
    errors = _dedupe(
        [{"field": _field_name(e.get("loc", ())), "message": str(e.get("msg"))} for e in raw]
    )
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    leaf = first["field"].split(".")[-1].split("[")[0]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    kind = str(raw[0].get("type")) if raw else ""
    code = _TYPE_CODES.get(kind) or _FIELD_CODES.get(leaf, "validation_error")
    return problem(422, code, detail, field=first["field"], errors=errors)


_TYPE_TAG = re.compile(r"^(str|int|float|bool|list|dict|none|any)$|[-\[(]")


def _dedupe(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """One error per field: a value that fits no branch of a union fails each branch."""
    seen: dict[str, dict[str, str]] = {}
    for error in errors:
        seen.setdefault(error["field"], error)
    return list(seen.values())


def _field_name(location: Sequence[Any]) -> str:
    """``("body", "tasks", 3, "priority")`` → ``tasks[3].priority``; the source is dropped, and
    so are pydantic's tags for the branches of a union (``timeout.constrained-str``)."""
    parts = [p for p in location if not (isinstance(p, str) and _TYPE_TAG.search(p))]
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        if not parts:
            return "body" if source == "body" else str(source)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + str(part)
    return name or "body"


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route for {request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not allowed here; use {' or '.join(allowed)}"
    return problem(exc.status_code, code, detail, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at this path (FastAPI answers 405 knowing only the
    route that matched, one of several registered for the path)."""
    matches: list[tuple[int, set[str]]] = []
    for template, operations in request.app.openapi()["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            matches.append((template.count("{"), {m.upper() for m in operations}))
    if not matches:
        return []
    fewest = min(parameters for parameters, _ in matches)  # /tasks/batch, not /tasks/{id}
    return sorted(set().union(*(methods for n, methods in matches if n == fewest)))


async def _on_store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    log.warning("%s %s: %s", request.method, request.url.path, exc.detail, extra=_ids_of(request))
    status = 507 if isinstance(exc, StoreFull) else 503
    detail = (
        "the server's database is out of disk space; try again once an operator made room"
        if status == 507
        else "the server's database failed for a moment; try again (a submit repeated with "
        "the same Idempotency-Key is never stored twice)"
    )
    headers = {"Retry-After": str(exc.retry_after_seconds)}
    return problem(status, exc.code, detail, headers=headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra=_ids_of(request),
    )
    return problem(500, "internal_error", "the server failed; the error is in its log")


def _ids_of(request: Request) -> dict[str, Any]:
    """The task and session a request names in its path, for its log record."""
    params = request.path_params
    return task_fields(task_id=params.get("task_id"), session_id=params.get("session_id"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(StoreUnavailable, _on_store_unavailable)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
