"""The FastAPI application: routes, problem mapping and the body limit, around a service."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from theazo import __version__
from theazo.api import problems, routes, streams
from theazo.api.body_limit import BodyLimit
from theazo.core import defaults
from theazo.dashboard import routes as dashboard

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

DESCRIPTION = """\
Run agents as asynchronous tasks: submit a task, get its id at once, then poll, long-poll,
cancel, or receive a webhook when it ends. Every error is `application/problem+json` with a
stable `code`.
"""


def create_app(lifespan: Lifespan) -> FastAPI:
    """The app; ``lifespan`` starts the node and sets ``app.state.service``."""
    app = FastAPI(
        title="Theazo",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.include_router(routes.router)
    app.include_router(streams.router)
    app.include_router(streams.keyed_router)
    app.include_router(routes.health_router)
    dashboard.install(app)
    problems.install(app)
    app.openapi = lambda: _openapi_with_agents(app)  # type: ignore[method-assign]
    app.add_middleware(
        BodyLimit,
        default_limit=defaults.MAX_BODY_BYTES,
        batch_limit=defaults.MAX_BATCH_BODY_BYTES,
    )
    return app


def _openapi_with_agents(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the agents this deployment serves as the only values a
    submit's ``agent`` may take: clients and fuzzers then know exactly what is valid."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _declare_bearer_keys(schema)
        service = getattr(app.state, "service", None)
        if service is not None:
            agent = schema["components"]["schemas"]["SubmitBody"]["properties"]["agent"]
            agent["enum"] = sorted(service.catalogue())
        app.openapi_schema = schema
    return app.openapi_schema


def _declare_bearer_keys(schema: dict[str, Any]) -> None:
    """Every /v1 operation takes an API key as a bearer token."""
    schema.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: th_live_… or th_test_…",
        }
    }
    for path, operations in schema["paths"].items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                operation["security"] = [{"apiKey": []}]
