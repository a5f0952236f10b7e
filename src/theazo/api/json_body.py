"""Request bodies parsed as JSON and nothing else; paths that cannot name anything.

Python's parser also takes NaN, Infinity and numbers out of a float's range (read as
infinity); none of them is JSON, and the databases refuse them after the request was
accepted. Here they, a body that is not UTF-8, an integer too long to convert, and a nesting
too deep for the parser all fail as a ``json.JSONDecodeError``, which FastAPI answers as
invalid JSON (400 ``malformed_json``) rather than as a generic error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from theazo.api.problems import problem


def _not_json(text: str, reason: str) -> json.JSONDecodeError:
    return json.JSONDecodeError(reason, text, 0)


def _constant(name: str) -> Any:
    raise _not_json(name, f"{name} is not a JSON value")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _not_json(text, f"{text} is out of range for a number")
    return number


def parse(body: bytes) -> Any:
    """The JSON value of ``body``; ``json.JSONDecodeError`` when it is not exactly JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_json("", "the body is not UTF-8") from exc
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_finite)
    except RecursionError as exc:
        raise _not_json(text, "arrays and objects are nested too deeply") from exc
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer longer than Python converts (4,300 digits)
        raise _not_json(text, str(exc)) from exc


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
