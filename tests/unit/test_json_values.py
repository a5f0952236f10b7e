"""What the service takes as a free-form JSON value, and what it reads as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from theazo.core.json_values import loads, storable_text, why_not_storable


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]  # arrays and objects both count
    return value


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -1.5,
        10**40,
        "text",
        "é 漢字 🙂",
        [],
        {},
        {"a": [1, {"b": None}]},
        _nested(64),
    ],
)
def test_what_every_backend_can_store_passes(value: Any) -> None:
    assert why_not_storable(value) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (_nested(65), "nested more than 64 deep"),
        ([[[[[[[[[[[[float("nan")]]]]]]]]]]]], "not a JSON number"),
        ({"a": float("inf")}, "not a JSON number"),
        ("a\x00b", "NUL"),
        ({"k\x00": 1}, "NUL"),
        (["\ud800"], "lone surrogate"),
        ({"\udfff": 1}, "lone surrogate"),
    ],
)
def test_what_a_backend_cannot_store_says_why(value: Any, words: str) -> None:
    reason = why_not_storable(value)
    assert reason is not None
    assert words in reason


def test_a_hostile_nesting_does_not_exhaust_the_stack() -> None:
    value: Any = 1
    for _ in range(100_000):
        value = [value]
    assert why_not_storable(value) is not None


@pytest.mark.parametrize("text", ["1", "[1, 2.5, -3e10]", '{"a": "\\u00e9"}', "9" * 4000])
def test_json_reads_as_json(text: str) -> None:
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize(
    "text", ["NaN", "-Infinity", "[1e400]", "9" * 5000, "[" * 100_000 + "]" * 100_000, "{bad"]
)
def test_what_is_not_exactly_json_is_a_decode_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(text)


def test_texts_from_sandboxes_are_made_storable_not_refused() -> None:
    assert storable_text("fine") == "fine"
    assert storable_text("a\x00b") == "a\ufffdb"
    assert storable_text("x\ud800y") == "x?y"
