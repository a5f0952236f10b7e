"""Request bodies parsed as JSON and nothing else; paths that cannot name anything.

A body that is not UTF-8 or not exactly JSON (see ``json_values.loads``) fails as a
``json.JSONDecodeError``, which FastAPI answers as invalid JSON (400 ``malformed_json``)
rather than as a generic error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from theazo.api.problems import problem
from theazo.core import json_values


def parse(body: bytes) -> Any:
    """The JSON value of ``body``; ``json.JSONDecodeError`` when it is not exactly JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", "", 0) from exc
    return json_values.loads(text)


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse(await self.body())
        return self._json


Authenticate = Callable[[Request], Awaitable[object]]


class JsonRoute(APIRoute):
    """A route whose request body, when read as JSON, is read by ``parse``, and whose path
    names nothing when it holds a NUL (``%00``): no id has one, and PostgreSQL refuses to even
    look one up.

    FastAPI reads and checks the body before it runs the route's dependencies, the API key's
    among them; so when the body is refused, ``authenticate`` (which raises for a missing or
    unknown key) runs first, and a caller without a valid key hears 401 and nothing about its
    body.
    """

    authenticate: Authenticate | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        authenticate = type(self).authenticate

        async def strict(request: Request) -> Response:
            if "\x00" in request.scope["path"]:
                return problem(404, "not_found", "nothing has this path")
            try:
                return await handler(_JsonRequest(request.scope, request.receive))
            except RequestValidationError:
                if authenticate is not None:
                    await authenticate(request)
                raise

        return strict
