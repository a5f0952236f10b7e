"""List cursors: where the next page of a session's listing begins.

A cursor names the last task of the page before, by its public id, in an opaque wrapping
(clients pass it back, never read it). It says nothing a tenant does not already see: not
the internal row id, which would tell how many tasks every other tenant submitted. It is
read back only within the session it was made in; another session's cursor names no task of
this one and is refused.
"""

from __future__ import annotations

import base64
import binascii
import re

from theazo.core.errors import InvalidField

FIELD = "cursor"
CODE = "invalid_cursor"
PATTERN = r"^[A-Za-z0-9_-]{1,100}$"  # base64url without padding; checked by the route
_VERSION = "t1:"  # a different wrapping later gets a different prefix
_TASK_ID = re.compile(r"task_[0-9A-Za-z]{1,64}")


def encode(task_id: str) -> str:
    """The cursor of the page that follows the task ``task_id``."""
    return base64.urlsafe_b64encode((_VERSION + task_id).encode()).rstrip(b"=").decode()


def decode(cursor: str) -> str:
    """The task id a cursor names; ``InvalidField`` if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    task_id = text.removeprefix(_VERSION)
    if not text.startswith(_VERSION) or not _TASK_ID.fullmatch(task_id):
        raise refused()
    return task_id


def refused() -> InvalidField:
    return InvalidField(
        FIELD, "the cursor is not one this listing gave: pass back a nextCursor as is", code=CODE
    )
