"""OpenAI Agents SDK agents on a fake model (no network), served with
``theazo.integrations.openai_agents.serve``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from pydantic import BaseModel

from agents import Agent, Model, ModelResponse, Usage, function_tool, set_tracing_disabled
from tests.support.sandboxes import process_tag
from theazo import Context
from theazo.gateway.prices import PriceTable
from theazo.integrations.openai_agents import serve
from theazo.sandbox import linux

set_tracing_disabled(True)  # the SDK would export its traces to OpenAI

# A cent an input token, two an output token.
PRICES = PriceTable.parse("[models.fake-model]\ninput = 10000\noutput = 20000\n")


class Ticket(BaseModel):
    topic: str
    urgent: bool


class FakeModel(Model):
    """Answers from a script: a tool call first (if any), then the final text, streamed in
    two deltas; each response used 10 input and 2 output tokens. ``hang`` waits forever."""

    model = "fake-model"

    def __init__(self, tool: str | None, final: str, hang: bool = False) -> None:
        self.tool, self.final, self.hang = tool, final, hang

    def _output(self, input: Any) -> list[ResponseOutputItem]:
        called = isinstance(input, list) and any(
            (i.get("type") if isinstance(i, dict) else None) == "function_call_output"
            for i in input
        )
        if self.tool and not called:
            return [
                ResponseFunctionToolCall(
                    type="function_call",
                    call_id="call_1",
                    name=self.tool,
                    arguments='{"topic": "billing"}',
                )
            ]
        text = ResponseOutputText(type="output_text", text=self.final, annotations=[])
        return [
            ResponseOutputMessage(
                type="message", id="msg_1", role="assistant", status="completed", content=[text]
            )
        ]

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        usage = Usage(requests=1, input_tokens=10, output_tokens=2, total_tokens=12)
        return ModelResponse(output=self._output(args[1]), usage=usage, response_id="r")

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        output = self._output(args[1])
        if isinstance(output[0], ResponseOutputMessage):
            half = len(self.final) // 2
            deltas = [self.final] if self.hang else [self.final[:half], self.final[half:]]
            for number, delta in enumerate(deltas):
                yield ResponseTextDeltaEvent(
                    type="response.output_text.delta",
                    item_id="msg_1",
                    output_index=0,
                    content_index=0,
                    delta=delta,
                    logprobs=[],
                    sequence_number=number,
                )
                if self.hang:
                    await asyncio.sleep(3600)
        usage = ResponseUsage(
            input_tokens=10,
            output_tokens=2,
            total_tokens=12,
            input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        )
        response = Response(
            id="resp_1",
            created_at=time.time(),
            model=self.model,
            object="response",
            output=output,
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=False,
            usage=usage,
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=9
        )


@function_tool
def open_ticket(topic: str) -> str:
    """Opens a ticket about ``topic``."""
    print(f"opening a ticket about {topic}")
    return f"ticket 7 opened about {topic}"


triage = Agent(
    name="oai_triage",
    handoff_description="Sorts a customer's message into a ticket.",
    model=FakeModel("open_ticket", '{"topic": "billing", "urgent": true}'),
    tools=[open_ticket],
    output_type=Ticket,
)
serve(triage, prices=PRICES)


def _named(ctx: Context) -> Context:
    # Named after the task, so the test finds the sandbox's process (support/sandboxes.py).
    linux.set_process_name(process_tag(ctx.task_id))
    return ctx


slow = Agent(name="slow", model=FakeModel(None, "Thinking about it", hang=True))
serve(slow, name="oai_slow", context=_named)
