"""An agent's output as log lines: cut at newlines per stream, whole characters, long lines
in pieces, a line without its newline sent after a while, and the cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from theazo.core import defaults
from theazo.scheduler.logs import LogLines

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _lines(limit: int = 1 << 20, already: int = 0) -> LogLines:
    return LogLines(limit, already, lambda: NOW)


def _texts(events: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(e.data["stream"], e.data["text"]) for e in events]


def test_chunks_become_lines_of_their_own_stream() -> None:
    log = _lines()
    assert _texts(log.feed("stdout", b"one\ntw", 0.0)) == [("stdout", "one")]
    assert _texts(log.feed("stderr", b"oops\r\n", 0.0)) == [("stderr", "oops")]
    assert _texts(log.feed("stdout", b"o\n\nthree", 0.1)) == [("stdout", "two"), ("stdout", "")]
    assert _texts(log.close()) == [("stdout", "three")]


def test_a_character_split_across_chunks_is_whole_and_garbage_is_replaced() -> None:
    log = _lines()
    euro = "€".encode()
    log.feed("stdout", euro[:1], 0.0)
    assert _texts(log.feed("stdout", euro[1:] + b"\xff\x00\n", 0.0)) == [
        ("stdout", "€\ufffd\ufffd")
    ]


def test_text_without_a_newline_waits_a_little_then_goes_alone() -> None:
    log = _lines()
    log.feed("stdout", b"Loading...", 1.0)
    assert log.waiting_since() == 1.0
    assert log.overdue(1.0 + defaults.LOG_PARTIAL_LINE_SECONDS / 2) == []
    late = log.overdue(1.0 + defaults.LOG_PARTIAL_LINE_SECONDS)
    assert _texts(late) == [("stdout", "Loading...")]
    assert log.waiting_since() is None


def test_a_long_line_is_cut_into_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "LOG_MAX_LINE_CHARS", 4)
    log = _lines()
    assert _texts(log.feed("stdout", b"abcdefghij", 0.0)) == [
        ("stdout", "abcd"),
        ("stdout", "efgh"),
    ]
    assert _texts(log.close()) == [("stdout", "ij")]


def test_past_the_cap_lines_are_dropped_counted_and_said() -> None:
    log = _lines(limit=10, already=4)
    kept = log.feed("stdout", b"12345\n" + b"x" * 20 + b"\n" + b"y\n", 0.0)
    assert _texts(kept)[0] == ("stdout", "12345")
    assert kept[1].data["stream"] == "stderr" and "reached its limit of 10" in kept[1].data["text"]
    assert len(kept) == 2  # the note once, not per line
    assert log.kept_bytes == 10 and log.dropped_bytes == 23
    (note,) = log.close()
    assert note.data["text"] == (
        "[theazo] 23 bytes of output were dropped: the log holds 10 bytes at most"
    )
