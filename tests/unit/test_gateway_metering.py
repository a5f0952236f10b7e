"""Reading usage from providers' answers: every usage shape, streams cut anywhere, and the
usage chunk dropped only when the gateway asked for it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from theazo.core.usage import Tokens
from theazo.gateway.metering import StreamMeter, meter_body, tokens_of


def test_each_providers_usage_shape() -> None:
    chat = {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    assert tokens_of(chat) == Tokens(10, 3, 4)
    responses = {
        "input_tokens": 8,
        "output_tokens": 2,
        "input_tokens_details": {"cached_tokens": 5},
    }
    assert tokens_of(responses) == Tokens(8, 2, 5)
    anthropic = {
        "input_tokens": 6,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "output_tokens": 9,
    }
    # Reads and writes of the cache are input tokens; the writes are told apart to be priced.
    assert tokens_of(anthropic) == Tokens(126, 9, 100, written=20)
    assert tokens_of({"input_tokens": 6, "output_tokens": 1}) == Tokens(6, 1, 0)
    assert tokens_of(None) is None and tokens_of({"other": 1}) is None
    # Nonsense counts count as none, never negative.
    assert tokens_of({"prompt_tokens": -5, "completion_tokens": "x"}) == Tokens()


def test_a_whole_answer_is_metered_by_its_own_model_name() -> None:
    body = json.dumps(
        {"model": "gpt-4o-2024-08-06", "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    )
    metered = meter_body(body.encode(), "gpt-4o")
    assert metered is not None and metered.model == "gpt-4o-2024-08-06"
    assert metered.tokens == Tokens(1, 2)
    assert meter_body(b'{"error": {"message": "no"}}', "gpt-4o") is None
    assert meter_body(b"not json", "gpt-4o") is None


def _openai_stream(with_usage: bool) -> bytes:
    chunks: list[dict[str, Any]] = [
        {"model": "m-1", "choices": [{"delta": {"content": w}}]} for w in ("a", "b")
    ]
    if with_usage:
        chunks.append(
            {"model": "m-1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
        )
    return (
        b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
        + b"data: [DONE]\r\n\r\n"
    )


@pytest.mark.parametrize("piece", [1, 7, 64, 10_000])
def test_a_stream_cut_anywhere_is_metered_and_passed_on_whole(piece: int) -> None:
    stream = _openai_stream(with_usage=True)
    meter = StreamMeter("m", drop_usage_chunk=False)
    out = b"".join(meter.feed(stream[i : i + piece]) for i in range(0, len(stream), piece))
    out += meter.rest()
    assert out == stream
    assert meter.metered is not None and meter.metered.tokens == Tokens(5, 2)
    assert meter.metered.model == "m-1"


def test_the_usage_chunk_the_agent_did_not_ask_for_is_dropped() -> None:
    meter = StreamMeter("m", drop_usage_chunk=True)
    out = meter.feed(_openai_stream(with_usage=True)) + meter.rest()
    assert out == _openai_stream(with_usage=False)
    assert meter.metered is not None and meter.metered.tokens == Tokens(5, 2)


def test_an_anthropic_stream_counts_its_last_delta() -> None:
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "model": "claude-x",
                "usage": {
                    "input_tokens": 12,
                    "cache_read_input_tokens": 3,
                    "cache_creation_input_tokens": 5,
                    "output_tokens": 1,
                },
            },
        },
        {"type": "content_block_delta", "delta": {"text": "hi"}},
        {"type": "message_delta", "usage": {"output_tokens": 4}},
        {"type": "message_delta", "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    ]
    stream = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    meter = StreamMeter("claude", drop_usage_chunk=False)
    assert meter.feed(stream) == stream
    assert meter.metered is not None
    assert meter.metered.model == "claude-x"
    assert meter.metered.tokens == Tokens(20, 9, 3, written=5)


def test_a_responses_stream_is_metered_from_its_completed_event() -> None:
    done = {
        "type": "response.completed",
        "response": {"model": "gpt-5", "usage": {"input_tokens": 7, "output_tokens": 3}},
    }
    meter = StreamMeter("gpt", drop_usage_chunk=False)
    meter.feed(b"event: response.completed\ndata: " + json.dumps(done).encode() + b"\n\n")
    assert meter.metered is not None and meter.metered.tokens == Tokens(7, 3)


def test_a_stream_without_usage_is_not_metered() -> None:
    meter = StreamMeter("m", drop_usage_chunk=False)
    meter.feed(_openai_stream(with_usage=False))
    assert meter.metered is None
