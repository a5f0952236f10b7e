"""Fake model providers for tests: an OpenAI-compatible and an Anthropic-compatible HTTP
server on 127.0.0.1 (outside the project, so a fake is right), each answering whole or
streamed, with usage figures a test can compute from the request, and recording what it was
sent (to show the real key arrived and the agent's did not).

Answers: the text is ``"echo: " + the last message's text``. Usage: ``input`` is 1,000 plus
the number of messages, of which 200 are cached; ``output`` is 7 tokens a word of the answer.
The Anthropic fake reports 300 of the input written to the prompt cache
(``cache_creation_input_tokens``) when the request marks a block with ``cache_control``.
A model whose name begins with ``slow`` waits ``SLOW_SECONDS`` before answering; one
beginning with ``leaky`` answers with the key it was sent in its text.
"""

from __future__ import annotations

import http.server
import json
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SLOW_SECONDS = 30.0
CACHED = 200
WRITTEN = 300  # Anthropic's cache writes, for a request with a cache_control block
PRICES_TOML = """
as_of = "2026-12-01"
source = "tests/support/fake_models.py"
# Dear, so that one call costs whole cents: 0.2 cents an input token, 0.05 a cached one,
# 0.8 an output token (fake-gpt).
[models."fake-gpt"]
input = "2000"
cached_input = "500"
output = "8000"
[models."fake-claude"]
input = "3000"
cached_input = "300"
cache_write_input = "3750"
output = "15000"
[models."slow-gpt"]
input = "1"
output = "1"
[models."leaky-gpt"]
input = "1"
output = "1"
"""


# The code of an ``attacker`` task that makes one call with the official openai SDK through
# the gateway: its answer is "echo: hello world" (expected_usage(1, ...)).
ONE_OPENAI_CALL = """
import openai
answer = openai.OpenAI(max_retries=0).chat.completions.create(
    model="fake-gpt", messages=[{"role": "user", "content": "hello world"}])
result = answer.choices[0].message.content
"""


def gateway_options(provider: FakeProvider, folder: Path) -> tuple[list[str], dict[str, str]]:
    """The options and environment of a ``theazo serve`` whose model gateway forwards to
    ``provider`` as the provider ``fake``, priced by PRICES_TOML (written into ``folder``)."""
    prices = folder / "prices.toml"
    prices.write_text(PRICES_TOML)
    key_env = "THEAZO_TEST_PROVIDER_KEY"
    args = [
        "--llm-provider", f"fake={provider.kind},{provider.base_url},{key_env}",
        "--llm-prices", str(prices),
    ]  # fmt: skip
    return args, {key_env: f"sk-real-{secrets.token_hex(16)}"}


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeProvider:
    kind: str  # openai | anthropic
    port: int = 0
    received: list[Received] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/v1" if self.kind == "openai" else "")


def expected_usage(messages: int, answer: str) -> tuple[int, int, int]:
    """(input, output, cached) the fakes report for a request of ``messages`` messages."""
    return 1000 + messages, 7 * len(answer.split()), CACHED


def _text_of(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{"content": ""}]
    content = messages[-1].get("content", "")
    if isinstance(content, list):  # content blocks
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _tool_step(body: dict[str, Any]) -> dict[str, Any] | None:
    """With tools offered, the fake calls each once, in order (the search with the user's
    question, an ``expression`` with ``6 * 7``), then answers with what they returned."""
    tools = body.get("tools") or []
    messages = body.get("messages") or []
    results = [m["content"] for m in messages if m.get("role") == "tool"]
    if not tools:
        return None
    if len(results) >= len(tools):
        return {
            "role": "assistant",
            "content": "answer from tools: " + " | ".join(r[:80] for r in results),
        }
    function = tools[len(results)]["function"]
    (parameter,) = function["parameters"]["required"]
    question = next(m["content"] for m in messages if m.get("role") == "user")
    value = "6 * 7" if parameter == "expression" else question
    call = {
        "id": f"call_{len(results)}",
        "type": "function",
        "function": {"name": function["name"], "arguments": json.dumps({parameter: value})},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Its head and body are separate writes: with Nagle's algorithm the body would wait for
    # the client's delayed acknowledgement of the head (40 ms), which no provider makes one wait.
    disable_nagle_algorithm = True
    provider: FakeProvider

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.provider.received.append(Received(self.path, headers, body))
        model = str(body.get("model", ""))
        if model.startswith("slow"):
            time.sleep(SLOW_SECONDS)
        answer = "echo: " + _text_of(body)
        if model.startswith("leaky"):
            answer = "your key is " + headers.get("authorization", headers.get("x-api-key", ""))
        if self.provider.kind == "openai":
            self._openai(body, model, answer)
        else:
            self._anthropic(body, model, answer)

    def _openai(self, body: dict[str, Any], model: str, answer: str) -> None:
        step = _tool_step(body)
        if step is not None:  # the output is the tool call, or the answer from the tools
            answer = step.get("content") or step["tool_calls"][0]["function"]["arguments"]
        given, output, cached = expected_usage(len(body.get("messages") or []), answer)
        usage = {
            "prompt_tokens": given,
            "completion_tokens": output,
            "total_tokens": given + output,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        base = {"id": "chatcmpl-1", "created": 1, "model": f"{model}-2026-01-01"}
        if not body.get("stream"):
            message = step or {"role": "assistant", "content": answer}
            self._json(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                }
            )
            return
        include = (body.get("stream_options") or {}).get("include_usage") is True
        chunk = {**base, "object": "chat.completion.chunk"}
        events = []
        for word in answer.split(" "):
            delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
            events.append({**chunk, "choices": [delta], **({"usage": None} if include else {})})
        if include:
            events.append({**chunk, "choices": [], "usage": usage})
        self._sse([f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"])

    def _anthropic(self, body: dict[str, Any], model: str, answer: str) -> None:
        given, output, cached = expected_usage(len(body.get("messages") or []), answer)
        # Anthropic counts cache reads and writes apart from input_tokens.
        written = WRITTEN if "cache_control" in json.dumps(body) else 0
        usage = {
            "input_tokens": given - cached - written,
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": written,
            "output_tokens": output,
        }
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": answer}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            self._json(message)
            return
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        for word in answer.split(" "):
            delta = {"type": "text_delta", "text": word + " "}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": output},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse([f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events])

    def _json(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _sse(self, events: list[str]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            data = event.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a task stopped mid-call) is no error of the fake's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def fake_provider(kind: str) -> Iterator[FakeProvider]:
    provider = FakeProvider(kind)
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = _Server(("127.0.0.1", 0), handler)
    provider.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
