"""Free-form JSON values (a task's input, an agent's output) that every part of the path can
store and send back: Python's parser and encoder accept more than JSON and more than the
databases and pydantic's encoder take, and a value refused only after it was stored would
break every later read of its task.

Imported by the CLI too, so it stays free of heavy imports.
"""

from __future__ import annotations

import json
import math
from typing import Any

from theazo.core import defaults


def loads(text: str) -> Any:
    """``text`` as JSON, and nothing more: Python's parser also takes NaN, Infinity and numbers
    out of a double's range (read as infinity), and fails on an over-long integer or a deep
    nesting with other errors. Each of these raises ``json.JSONDecodeError`` here."""
    try:
        return json.loads(text, parse_constant=_constant, parse_float=_finite)
    except RecursionError as exc:
        raise _not_json(text, "arrays and objects are nested too deeply") from exc
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer longer than Python converts (4,300 digits)
        raise _not_json(text, str(exc)) from exc


def _not_json(text: str, reason: str) -> json.JSONDecodeError:
    return json.JSONDecodeError(reason, text, 0)


def _constant(name: str) -> Any:
    raise _not_json(name, f"{name} is not a JSON value")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _not_json(text, f"{text} is out of range for a number")
    return number


def why_not_storable(value: Any, max_depth: int = defaults.MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` cannot be stored and sent back as JSON, or None when it can.

    Refused: arrays and objects nested deeper than ``max_depth``, numbers that are not finite
    (NaN, Infinity), and strings (keys included) with a NUL character or a lone UTF-16
    surrogate, which PostgreSQL and UTF-8 cannot take; refused on SQLite too, so that what
    one backend accepts another can hold. Walked without recursion, so a hostile nesting
    cannot exhaust the stack.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            reason = why_not_storable_text(item)
            if reason is not None:
                return reason
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{item} is not a JSON number"
        elif isinstance(item, list | tuple | dict):
            if depth >= max_depth:
                return f"arrays and objects are nested more than {max_depth} deep"
            if isinstance(item, dict):
                pending.extend((key, depth) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)
    return None


def why_not_storable_text(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can: a NUL, which PostgreSQL's text
    refuses, or a lone surrogate, which UTF-8 cannot encode."""
    if "\x00" in text:
        return "a string holds a NUL character (\\u0000), which PostgreSQL cannot store"
    if not _encodable(text):
        return "a string holds a lone surrogate, which UTF-8 cannot encode"
    return None


def _encodable(text: str) -> bool:
    if text.isascii():  # most text, checked without a copy
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    """``text`` with what no database can hold replaced: NUL by U+FFFD, and a lone surrogate
    by "?". For the texts a sandbox sends (progress messages, error messages), which are
    shown, not refused."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if _encodable(text):
        return text
    return text.encode("utf-8", "replace").decode("utf-8")
