"""A compiled LangGraph graph served as a Theazo agent (extra ``langgraph``)::

    from langgraph.graph import StateGraph
    from theazo.integrations.langgraph import serve

    builder = StateGraph(State, input_schema=Question)
    ...
    serve(builder.compile(), name="researcher", description="...")

The task's input is the graph's input state (checked at submit against the graph's input
JSON schema), each node's update is a progress message and a log line, and the final state
is the task's output as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel

from theazo.agent import AgentSpec, register_spec
from theazo.core.usage import Tokens
from theazo.gateway.prices import PriceTable
from theazo.integrations import _usage
from theazo.integrations._runs import StreamedText, cancellable, jsonable, log, shorten
from theazo.sandbox.context import Context

ConfigFactory = Callable[[Context], RunnableConfig]


def serve(
    graph: Pregel[Any, Any, Any, Any],
    *,
    name: str | None = None,
    description: str = "",
    config: ConfigFactory | None = None,
    prices: PriceTable | None = None,
) -> Pregel[Any, Any, Any, Any]:
    """Register the compiled ``graph`` as the Theazo agent ``name``; returns it unchanged.

    Args:
        graph: a compiled graph (``StateGraph(...).compile()``).
        name: how clients refer to it when they submit; defaults to the graph's ``name``
            (``LangGraph`` unless set, so give one).
        description: shown by ``GET /v1/agents``.
        config: builds the run's ``RunnableConfig`` from the task's context (a
            ``thread_id`` for a checkpointer, ``configurable`` values).
        prices: the price table the tokens of chat models' messages are charged by (without
            the model gateway); the bundled one by default.
    """
    served_name = name or graph.name
    table = _usage.price_table(prices)

    async def run(ctx: Context, task_input: Any) -> Any:
        run_config = config(ctx) if config is not None else None
        return jsonable(await cancellable(ctx, _run(ctx, graph, task_input, run_config, table)))

    run.__qualname__ = run.__name__ = f"langgraph[{served_name}]"
    register_spec(
        AgentSpec(
            name=served_name,
            function=run,
            description=description,
            input_schema=_schema(graph.get_input_jsonschema),
            input_model=None,  # the graph validates its state itself
            output_schema=_schema(graph.get_output_jsonschema),
        )
    )
    return graph


def _schema(get: Callable[[], Mapping[str, Any]]) -> dict[str, Any] | None:
    """The graph's input or output schema; None (any input) when pydantic cannot make one,
    as for a ``typing.TypedDict`` state on Python 3.11 (``typing_extensions.TypedDict``
    works)."""
    try:
        return dict(get())
    except Exception:
        return None


async def _run(
    ctx: Context,
    graph: Pregel[Any, Any, Any, Any],
    task_input: Any,
    run_config: RunnableConfig | None,
    prices: PriceTable,
) -> Any:
    """Stream the run: each node's update reported, chat models' streamed text shown and
    their messages' tokens charged; the last full state is the output."""
    state: Any = None
    steps = 0
    text = StreamedText(ctx)
    async for mode, chunk in graph.astream(
        task_input, run_config, stream_mode=["updates", "values", "messages"]
    ):
        if mode == "values":
            state = chunk
        elif mode == "messages" and isinstance(chunk, tuple):
            message = chunk[0]  # (message, metadata)
            if isinstance(message, AIMessageChunk) and isinstance(message.content, str):
                text.add(message.content)
        elif mode == "updates" and isinstance(chunk, Mapping):
            text.end()
            for node, update in chunk.items():
                steps += 1
                ctx.progress(message=f"step {steps}: {node}")
                log("step", f"{node}: {shorten(jsonable(update))}")
                for message in _messages(update):
                    _charge(ctx, prices, message)
    return state


def _messages(update: Any) -> Iterator[BaseMessage]:
    """The messages a node's update carries (in any of its keys, one or a list)."""
    values = update.values() if isinstance(update, Mapping) else [update]
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, BaseMessage):
                yield item


def _charge(ctx: Context, prices: PriceTable, message: BaseMessage) -> None:
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return
    model = message.response_metadata.get("model_name") or message.response_metadata.get(
        "model", "unknown"
    )
    _usage.charge(ctx, prices, str(model), tokens_of(usage))


def tokens_of(usage: Mapping[str, Any]) -> Tokens:
    """One message's tokens, from LangChain's ``usage_metadata``: its input counts the cache's
    reads and writes, as we do; the writes are priced apart (Anthropic bills them higher)."""
    input_tokens = int(usage.get("input_tokens", 0))
    details = usage.get("input_token_details") or {}
    cached = min(int(details.get("cache_read", 0)), input_tokens)
    written = min(int(details.get("cache_creation", 0)), input_tokens - cached)
    return Tokens(input_tokens, int(usage.get("output_tokens", 0)), cached, written)
