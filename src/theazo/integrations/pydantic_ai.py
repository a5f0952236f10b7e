"""A Pydantic AI ``Agent`` served as a Theazo agent (extra ``pydantic-ai``)::

    from pydantic_ai import Agent
    from theazo.integrations.pydantic_ai import serve

    support = Agent("openai:gpt-5.2", output_type=Reply, instructions="...")
    serve(support, name="support", description="Answers a customer's question.")

The task's input is the user prompt, as a string or ``{"prompt": "..."}``; when the agent's
``deps_type`` is a type with a JSON schema (a pydantic model, a dataclass, a TypedDict) and
no ``deps=`` builds them, the deps come in the input too: ``{"prompt": "...", "deps": {...}}``.
The output is the run's output as JSON, and the agent's input and output schemas are derived
from ``deps_type`` and ``output_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, create_model
from pydantic.errors import PydanticUserError
from pydantic_ai import Agent
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
)
from pydantic_ai.usage import RequestUsage

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

DepsFactory = Callable[[Context], Any]


def serve(
    agent: Agent[Any, Any],
    *,
    name: str | None = None,
    description: str | None = None,
    deps: DepsFactory | None = None,
    stream: bool = True,
    prices: PriceTable | None = None,
) -> Agent[Any, Any]:
    """Register ``agent`` as the Theazo agent ``name``; returns it unchanged.

    Args:
        agent: the Pydantic AI agent; its model, tools and instructions are used as they are.
        name: how clients refer to it when they submit; defaults to the agent's own ``name``.
        description: shown by ``GET /v1/agents``; defaults to the agent's ``description``.
        deps: builds the run's deps from the task's context (a client, a per-user handle from
            ``ctx.user_id``); without it, deps of a JSON type are read from the input's
            ``deps``, and an agent without a ``deps_type`` runs with none.
        stream: ask the model to stream its responses, so that the task's progress message
            shows the text as it is written; ``False`` for a model that cannot stream (a
            ``FunctionModel`` without a ``stream_function``).
        prices: the price table the run's tokens are charged by (without the model gateway);
            the bundled one by default.
    """
    served_name = name or agent.name
    if not served_name:
        raise AgentDefinitionError("serve(agent) needs a name=: the Pydantic AI agent has none")
    table = _usage.price_table(prices)
    input_model = _input_model(served_name, agent, deps_from_input=deps is None)

    async def run(ctx: Context, task_input: PromptInput) -> Any:
        run_deps = deps(ctx) if deps is not None else getattr(task_input, "deps", None)
        return jsonable(
            await cancellable(
                ctx, _run(ctx, agent, task_input.prompt, run_deps, stream=stream, prices=table)
            )
        )

    register(
        served_name,
        run,
        description=description or str(agent.description or ""),
        input_model=input_model,
        input_schema=input_schema(input_model),
        output_schema=dict(agent.output_json_schema()),
        framework="pydantic_ai",
    )
    return agent


def _input_model(name: str, agent: Agent[Any, Any], *, deps_from_input: bool) -> type[PromptInput]:
    deps_type = agent.deps_type
    if not deps_from_input or deps_type in (object, None, type(None)):
        return PromptInput
    try:
        model = create_model(
            f"{name}_input",
            __base__=PromptInput,
            deps=(deps_type, Field(description="The run's deps (the agent's deps_type).")),
        )
        model.model_json_schema()
    except (PydanticUserError, TypeError) as exc:
        raise AgentDefinitionError(
            f"agent {name!r}: its deps_type {deps_type!r} is not a JSON type, so the input "
            f"cannot carry it; pass serve(..., deps=...) to build the deps ({exc})"
        ) from exc
    return model


async def _run(
    ctx: Context,
    agent: Agent[Any, Any],
    prompt: str,
    deps: Any,
    *,
    stream: bool,
    prices: PriceTable,
) -> Any:
    """Run the agent a node at a time: each model request and tool call is reported as it
    happens, and each model response logged and charged once it is complete."""
    steps = 0
    text = StreamedText(ctx)
    async with agent.iter(prompt, deps=deps) as agent_run:
        async for node in agent_run:
            if Agent.is_model_request_node(node):
                steps += 1
                ctx.progress(message=f"calling the model (step {steps})")
                if stream:
                    async with node.stream(agent_run.ctx) as response_events:
                        async for event in response_events:
                            text.add(_streamed_text(event))
                    text.end()
            elif Agent.is_call_tools_node(node):
                _record(ctx, node.model_response, prices)
                async with node.stream(agent_run.ctx) as tool_events:
                    async for event in tool_events:
                        _report_tool(ctx, event)
    assert agent_run.result is not None  # the loop ended at the End node
    return agent_run.result.output


def _streamed_text(event: AgentStreamEvent) -> str:
    """The text an event of a streamed response adds (a part's start may carry some)."""
    if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
        return event.part.content
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return ""


def _record(ctx: Context, response: ModelResponse, prices: PriceTable) -> None:
    """A complete model response: its text and thinking in the log, its tokens charged."""
    for part in response.parts:
        if isinstance(part, TextPart) and part.content:
            log("text", part.content)
        elif isinstance(part, ThinkingPart) and part.content:
            log("thinking", part.content)
    _charge(ctx, response, prices)


def _report_tool(ctx: Context, event: AgentStreamEvent) -> None:
    """A tool call as a progress message and a log line; its result in the log."""
    if isinstance(event, FunctionToolCallEvent):
        call = event.part
        ctx.progress(message=f"calling the tool {call.tool_name}")
        log("tool", f"{call.tool_name}({shorten(call.args_as_json_str())})")
    elif isinstance(event, FunctionToolResultEvent):
        log("tool result", f"{event.part.tool_name}: {shorten(event.part.content)}")


def _charge(ctx: Context, response: ModelResponse, prices: PriceTable) -> None:
    _usage.charge(ctx, prices, response.model_name or "unknown", tokens_of(response.usage))


def tokens_of(usage: RequestUsage) -> Tokens:
    """One response's tokens: Pydantic AI counts the cache's reads and writes in its input,
    as we do; the writes are priced apart (Anthropic bills them higher)."""
    cached = min(usage.cache_read_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    return Tokens(usage.input_tokens, usage.output_tokens, cached, written)
