"""Reading token usage from providers' answers, whole or streamed.

* OpenAI chat completions: ``usage.prompt_tokens`` (cached ones among them:
  ``prompt_tokens_details.cached_tokens``), ``usage.completion_tokens``; streamed, in the last
  chunk (``choices: []``) when the request asked ``stream_options.include_usage``, which the
  gateway adds when the agent did not (and then drops that chunk, which the agent's client did
  not expect).
* OpenAI responses: ``usage.input_tokens`` (``input_tokens_details.cached_tokens``),
  ``usage.output_tokens``; streamed, in the ``response.completed`` event's response.
* Anthropic messages: ``usage.input_tokens`` counts only the tokens not read from or written
  to the cache, so input is that plus ``cache_read_input_tokens`` plus
  ``cache_creation_input_tokens`` (cached: the reads; written: the writes, priced apart as
  ``cache_write_input``); streamed, ``message_start`` carries the
  input and ``message_delta`` the output so far (cumulative: the last one counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from theazo.core.usage import Tokens


@dataclass(frozen=True, slots=True)
class Metered:
    model: str
    tokens: Tokens


def _count(data: Any, key: str) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def tokens_of(usage: Any) -> Tokens | None:
    """The tokens of a usage object of either provider's API; None when it is none."""
    if not isinstance(usage, dict):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI chat completions
        cached = _count(usage.get("prompt_tokens_details"), "cached_tokens")
        prompt = _count(usage, "prompt_tokens")
        return Tokens(prompt, _count(usage, "completion_tokens"), min(cached, prompt))
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        read = _count(usage, "cache_read_input_tokens")  # Anthropic, with its cache
        written = _count(usage, "cache_creation_input_tokens")
        total = _count(usage, "input_tokens") + read + written
        return Tokens(total, _count(usage, "output_tokens"), read, written)
    if "input_tokens" in usage or "output_tokens" in usage:  # OpenAI responses, Anthropic
        cached = _count(usage.get("input_tokens_details"), "cached_tokens")
        given = _count(usage, "input_tokens")
        return Tokens(given, _count(usage, "output_tokens"), min(cached, given))
    return None


def meter_body(body: bytes, requested_model: str) -> Metered | None:
    """The usage of a whole JSON answer (None: it has none, e.g. an error)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    tokens = tokens_of(data.get("usage"))
    if tokens is None:
        return None
    return Metered(_model(data, requested_model), tokens)


def _model(data: Any, fallback: str) -> str:
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model else fallback


class StreamMeter:
    """Reads a server-sent event stream as it passes, event by event: counts its usage, and
    says which events to drop (the usage chunk the agent's client did not ask for)."""

    def __init__(self, requested_model: str, *, drop_usage_chunk: bool) -> None:
        self.model = requested_model
        self._drop_usage_chunk = drop_usage_chunk
        self._buffer = b""
        self._input: Tokens | None = None  # Anthropic's message_start
        self._output = 0  # Anthropic's last message_delta
        self._found: Tokens | None = None  # OpenAI's: whole in one event

    def feed(self, data: bytes) -> bytes:
        """Take bytes of the stream; return those to pass on now (whole events only: a
        client reads events whole anyway)."""
        self._buffer += data
        out: list[bytes] = []
        while True:
            end, size = _event_end(self._buffer)
            if end < 0:
                break
            event, self._buffer = self._buffer[: end + size], self._buffer[end + size :]
            if self._read_event(event[:end]):
                out.append(event)
        return b"".join(out)

    def rest(self) -> bytes:
        """What is left at the stream's end (an event without its blank line)."""
        rest, self._buffer = self._buffer, b""
        if rest.strip():
            self._read_event(rest)
        return rest

    @property
    def metered(self) -> Metered | None:
        if self._found is not None:
            return Metered(self.model, self._found)
        if self._input is None and not self._output:
            return None
        given = self._input or Tokens()
        return Metered(
            self.model,
            Tokens(given.input, max(given.output, self._output), given.cached, given.written),
        )

    def _read_event(self, event: bytes) -> bool:
        """Count one event's usage; False when it is to be dropped."""
        lines = [line.rstrip(b"\r") for line in event.split(b"\n")]
        data = b"\n".join(
            line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")
        )
        if not data or data == b"[DONE]":
            return True
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            return True
        if not isinstance(message, dict):
            return True
        return self._read_message(message)

    def _read_message(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "message_start":  # Anthropic
            start = message.get("message")
            self.model = _model(start, self.model)
            self._input = tokens_of(start.get("usage") if isinstance(start, dict) else None)
            return True
        if kind == "message_delta":  # Anthropic: cumulative counts
            usage = message.get("usage")
            self._output = max(self._output, _count(usage, "output_tokens"))
            if isinstance(usage, dict) and "input_tokens" in usage:
                later = tokens_of(usage)
                if later is not None and (self._input is None or later.input > self._input.input):
                    self._input = Tokens(later.input, 0, later.cached, later.written)
            return True
        if kind == "response.completed":  # OpenAI responses
            response = message.get("response")
            self.model = _model(response, self.model)
            found = tokens_of(response.get("usage") if isinstance(response, dict) else None)
            self._found = found or self._found
            return True
        usage = tokens_of(message.get("usage"))  # OpenAI chat completions
        if usage is None:
            return True
        self.model = _model(message, self.model)
        self._found = usage
        return not (self._drop_usage_chunk and message.get("choices") == [])


def _event_end(buffer: bytes) -> tuple[int, int]:
    """Where the first event of ``buffer`` ends (its blank line) and that line's size."""
    ends = [(buffer.find(sep), len(sep)) for sep in (b"\n\n", b"\r\n\r\n", b"\r\r")]
    found = [(at, size) for at, size in ends if at >= 0]
    return min(found) if found else (-1, 0)
