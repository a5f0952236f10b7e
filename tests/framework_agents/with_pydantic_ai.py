"""Pydantic AI agents on the framework's own test models (no network), served with
``theazo.integrations.pydantic_ai.serve``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pydantic import BaseModel
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from tests.support.sandboxes import process_tag
from theazo import Context
from theazo.gateway.prices import PriceTable
from theazo.integrations.pydantic_ai import serve
from theazo.sandbox import linux

# The test models' prices: a cent an input token, two an output token.
PRICES = PriceTable.parse(
    """
    [models.test]
    input = 10000
    output = 20000
    """
)


class Forecast(BaseModel):
    city: str
    celsius: int


# TestModel calls every tool once, then answers with arguments it makes up from the schema.
weather = Agent(
    TestModel(),
    output_type=Forecast,
    name="pai_weather",
    description="Forecasts a city's weather.",
)


@weather.tool_plain
def lookup(city: str) -> str:
    """The temperature in ``city``."""
    print(f"looking {city} up")
    return f"{city}: 21 degrees"


serve(weather, prices=PRICES)


class Customer(BaseModel):
    name: str
    tier: str = "basic"


def _greeter_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Asks for the customer's name with the tool, then answers with it."""
    if len(messages) == 1:
        return ModelResponse(parts=[ToolCallPart("customer_name", {})])
    returned = messages[-1].parts[0].content  # type: ignore[union-attr]
    return ModelResponse(parts=[TextPart(f"Hello {returned}!")])


greeter = Agent(FunctionModel(_greeter_model, model_name="greeter-model"), deps_type=Customer)


@greeter.tool
def customer_name(run: RunContext[Customer]) -> str:
    return f"{run.deps.name} ({run.deps.tier})"


serve(greeter, name="pai_greeter", description="Greets the customer in the deps.", stream=False)


async def _never_answers(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    """A model that starts to stream, then hangs until the run is cancelled."""
    yield "Thinking about it"
    await asyncio.sleep(3600)
    yield "... done"


def _named(ctx: Context) -> Context:
    # Named after the task, so the test finds the sandbox's process (support/sandboxes.py).
    linux.set_process_name(process_tag(ctx.task_id))
    return ctx


slow = Agent(FunctionModel(stream_function=_never_answers), deps_type=Context)
serve(slow, name="pai_slow", deps=_named)
