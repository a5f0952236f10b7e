"""Request bodies: refused with 413 over the size limit, before they are read into memory; and
read as JSON whatever their declared type, since this API takes nothing else (``curl -d``
sends ``application/x-www-form-urlencoded`` by default)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theazo.api.problems import problem


class BodyLimit:
    def __init__(self, app: ASGIApp, default_limit: int, batch_limit: int) -> None:
        self.app = app
        self.default_limit = default_limit
        self.batch_limit = batch_limit

    def _limit_for(self, path: str) -> int:
        return self.batch_limit if path.endswith("/tasks/batch") else self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = _as_json(scope)
        limit = self._limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = problem(413, "payload_too_large", _detail(limit))
            await response(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No Content-Length (a chunked body): read it here, up to the limit, then replay it.
        body = await _read_up_to(receive, limit)
        if body is None:
            response = problem(413, "payload_too_large", _detail(limit))
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # the disconnect, when the client goes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read_up_to(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _detail(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


def _as_json(scope: Scope) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    if len(headers) == len(scope["headers"]) and scope["method"] in ("GET", "HEAD"):
        return scope
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
