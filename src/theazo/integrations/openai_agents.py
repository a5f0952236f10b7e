"""An OpenAI Agents SDK ``Agent`` served as a Theazo agent (extra ``openai-agents``)::

    from agents import Agent
    from theazo.integrations.openai_agents import serve

    triage = Agent(name="triage", instructions="...", tools=[...], output_type=Ticket)
    serve(triage, description="Sorts a customer's message into a ticket.")

The task's input is the user prompt, as a string or ``{"prompt": "..."}``; the run is
``Runner.run_streamed``, its final output the task's output as JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from agents.items import ModelResponse, ToolCallItem, ToolCallOutputItem
from agents.stream_events import RawResponsesStreamEvent, RunItemStreamEvent, StreamEvent
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import TypeAdapter

from agents import Agent, AgentOutputSchemaBase, RunContextWrapper, RunHooks, Runner
from theazo.agent import AgentDefinitionError
from theazo.core.usage import Tokens
from theazo.gateway.prices import PriceTable
from theazo.integrations import _usage
from theazo.integrations._runs import (
    PromptInput,
    StreamedText,
    cancellable,
    input_schema,
    jsonable,
    log,
    register,
    shorten,
)
from theazo.sandbox.context import Context

ContextFactory = Callable[[Context], Any]


def serve(
    agent: Agent[Any],
    *,
    name: str | None = None,
    description: str | None = None,
    context: ContextFactory | None = None,
    max_turns: int | None = None,
    prices: PriceTable | None = None,
) -> Agent[Any]:
    """Register ``agent`` as the Theazo agent ``name``; returns it unchanged.

    Args:
        agent: the starting agent; its handoffs, tools and guardrails run as they are.
        name: how clients refer to it when they submit; defaults to the agent's ``name``
            (which must then be an identifier).
        description: shown by ``GET /v1/agents``; defaults to its ``handoff_description``.
        context: builds the run's context object from the task's (``ctx.user_id``...).
        max_turns: the run's turn limit; the SDK's default when not given.
        prices: the price table the run's tokens are charged by (without the model gateway);
            the bundled one by default.
    """
    served_name = name or agent.name
    if not served_name.isidentifier():
        raise AgentDefinitionError(
            f"the agent's name {agent.name!r} is not an identifier: pass serve(..., name=...)"
        )
    table = _usage.price_table(prices)
    options: dict[str, Any] = {} if max_turns is None else {"max_turns": max_turns}

    async def run(ctx: Context, task_input: PromptInput) -> Any:
        run_context = context(ctx) if context is not None else None
        work = _run(ctx, agent, task_input.prompt, run_context, table, options)
        return jsonable(await cancellable(ctx, work))

    register(
        served_name,
        run,
        description=description or agent.handoff_description or "",
        input_model=PromptInput,
        input_schema=input_schema(PromptInput),
        output_schema=_output_schema(agent),
        framework="openai_agents",
    )
    return agent


def _output_schema(agent: Agent[Any]) -> dict[str, Any] | None:
    """Its ``output_type``'s schema (text when it has none); None when it has no JSON
    schema."""
    output_type = agent.output_type
    if output_type is None:
        return {"type": "string"}
    if isinstance(output_type, AgentOutputSchemaBase):
        return dict(output_type.json_schema())
    try:
        return TypeAdapter(output_type).json_schema()
    except Exception:  # a type pydantic cannot describe: the agent has no output schema
        return None


class _Reporter(RunHooks[Any]):
    """The run's model calls as progress messages and charges (the SDK's hooks)."""

    def __init__(self, ctx: Context, prices: PriceTable) -> None:
        self._ctx = ctx
        self._prices = prices
        self._steps = 0

    async def on_llm_start(
        self, context: RunContextWrapper[Any], agent: Agent[Any], *args: Any
    ) -> None:
        self._steps += 1
        self._ctx.progress(message=f"calling the model (step {self._steps})")

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        usage = response.usage
        cached = usage.input_tokens_details.cached_tokens or 0
        tokens = Tokens(
            input=usage.input_tokens,
            output=usage.output_tokens,
            cached=min(cached, usage.input_tokens),
        )
        _usage.charge(self._ctx, self._prices, _model_name(agent), tokens)

    async def on_handoff(
        self, context: RunContextWrapper[Any], from_agent: Agent[Any], to_agent: Agent[Any]
    ) -> None:
        self._ctx.progress(message=f"handing off to {to_agent.name}")
        log("handoff", f"{from_agent.name} -> {to_agent.name}")


def _model_name(agent: Agent[Any]) -> str:
    model = agent.model
    if isinstance(model, str):
        return model
    # A Model object: the OpenAI ones keep their model's name as .model.
    named = getattr(model, "model", None)
    return named if isinstance(named, str) else type(model).__name__


async def _run(
    ctx: Context,
    agent: Agent[Any],
    prompt: str,
    run_context: Any,
    prices: PriceTable,
    options: dict[str, Any],
) -> Any:
    result = Runner.run_streamed(
        agent, prompt, context=run_context, hooks=_Reporter(ctx, prices), **options
    )
    text = StreamedText(ctx)
    try:
        async for event in result.stream_events():
            _report(ctx, text, event)
    except asyncio.CancelledError:
        result.cancel()  # its background task too, not only our reading of its events
        raise
    return result.final_output


def _report(ctx: Context, text: StreamedText, event: StreamEvent) -> None:
    if isinstance(event, RawResponsesStreamEvent):
        if isinstance(event.data, ResponseTextDeltaEvent):
            text.add(event.data.delta)
        return
    if not isinstance(event, RunItemStreamEvent):
        return
    item = event.item
    if isinstance(item, ToolCallItem):
        text.end()
        tool = getattr(item.raw_item, "name", None) or "tool"
        arguments = getattr(item.raw_item, "arguments", "")
        ctx.progress(message=f"calling the tool {tool}")
        log("tool", f"{tool}({shorten(arguments)})")
    elif isinstance(item, ToolCallOutputItem):
        log("tool result", shorten(item.output))
    elif event.name == "message_output_created":
        text.end()
        log("text", _message_text(item.raw_item))


def _message_text(message: Any) -> str:
    parts = getattr(message, "content", None) or []
    return "".join(getattr(part, "text", "") for part in parts)
