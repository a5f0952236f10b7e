"""The exceptions of the SDK. Catch ``TheazoError`` for all of them::

    TheazoError                        anything the SDK raises on purpose
    ├── APIError                       the server answered with an error (problem+json)
    │   ├── BadRequestError            400  malformed JSON
    │   ├── AuthenticationError        401  missing or unknown API key
    │   ├── BudgetExhaustedError       402  the session's budget is spent
    │   ├── NotFoundError              404  unknown session or task (or another project's)
    │   ├── ConflictError              409  the task's state does not allow this
    │   ├── PayloadTooLargeError       413  body or input too large
    │   ├── UnprocessableEntityError   422  a field is wrong; ``field`` names it
    │   ├── RateLimitError             429  a session limit is reached; see ``retry_after``
    │   └── ServerError                5xx
    └── APIConnectionError             no answer: refused, reset, DNS, TLS...
        └── APITimeoutError            no answer in time

Any other error status raises ``APIError`` itself. Switch on ``code``, which is stable, never
on the human-readable ``detail``.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExhaustedError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ServerError",
    "TheazoError",
    "UnprocessableEntityError",
]


class TheazoError(Exception):
    """Base class of every exception the SDK raises on purpose."""


class APIError(TheazoError):
    """The server answered with an error status.

    Attributes:
        status: The HTTP status, e.g. ``422``.
        code: The problem's stable, machine-readable code, e.g. ``"unknown_agent"``;
            ``"http_error"`` when the body was not a problem (a proxy's HTML page, say).
        title: The problem's title, e.g. ``"Unprocessable Entity"``.
        detail: What went wrong, for humans.
        field: The request field at fault, if the server named one.
        problem: The whole problem document as received (empty if the body was not JSON).
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str = "",
        field: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.field = field
        self.problem: dict[str, Any] = problem if problem is not None else {}


class BadRequestError(APIError):
    """400: the request could not be read (malformed JSON)."""


class AuthenticationError(APIError):
    """401: no API key was sent, or the server does not know it."""


class BudgetExhaustedError(APIError):
    """402: the session's budget is spent; raise it with ``Session.update_limits``."""


class NotFoundError(APIError):
    """404: no such session or task in the caller's project."""


class ConflictError(APIError):
    """409: the task's state does not allow this, e.g. cancelling a completed task."""


class PayloadTooLargeError(APIError):
    """413: the request body, or the task's input, is too large."""


class UnprocessableEntityError(APIError):
    """422: a field is wrong (unknown agent, bad priority, bad duration...); see ``field``."""


class RateLimitError(APIError):
    """429: a session limit is reached.

    Attributes:
        retry_after: Seconds the server suggests waiting before trying again, if it said.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str = "",
        field: str | None = None,
        problem: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, detail, title=title, field=field, problem=problem)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server failed; the request may be retried later."""


class APIConnectionError(TheazoError):
    """No answer came: the connection was refused or reset, a name did not resolve, TLS failed.

    Attributes:
        request: The request that got no answer, if known.
    """

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """No answer came in time (connect, read, write or pool time-out)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: BudgetExhaustedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_class(status: int) -> type[APIError]:
    """The exception class for an error status: a subclass if one fits, else ``APIError``."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)
