"""Domain errors. Each carries a stable machine-readable ``code``.

The HTTP layer maps each class to a status in one place (``theazo.api.problems``); nothing
below the HTTP layer knows about status codes.

    DomainError
     ├── Unauthenticated     no key, or a key we do not know
     ├── Forbidden           known, but the request may not come this way (a foreign origin)
     ├── NotFound            unknown, or belongs to another project (existence never leaks)
     ├── InvalidField        a field of the request is wrong; names the field
     ├── PayloadTooLarge     a body, input or output over its size limit
     ├── InvalidTransition   the task's state does not allow the change
     ├── LimitReached        a session limit; carries a retry hint
     └── BudgetExhausted     the session's budget is spent

    StoreUnavailable        the database failed for a moment (not the client's doing)
     └── StoreFull          the database's disk is full
"""

from __future__ import annotations


class DomainError(Exception):
    code = "error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class Unauthenticated(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class InvalidField(DomainError):
    code = "validation_error"

    def __init__(self, field: str, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.field = field


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class InvalidTransition(DomainError):
    code = "invalid_state"


class LimitReached(DomainError):
    code = "limit_reached"

    def __init__(self, detail: str, *, code: str, retry_after_seconds: int) -> None:
        super().__init__(detail, code=code)
        self.retry_after_seconds = retry_after_seconds


class BudgetExhausted(DomainError):
    code = "budget_exhausted"


class StoreUnavailable(Exception):
    """The database could not do what was asked: a dropped connection, a lock held too long,
    an I/O error. Nothing was done (the transaction rolled back), and trying again later may
    work; the HTTP layer answers 503 with ``Retry-After``."""

    code = "store_unavailable"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_seconds = retry_after_seconds


class StoreFull(StoreUnavailable):
    """The database's disk is full: writes fail until an operator makes room (507)."""

    code = "store_full"
