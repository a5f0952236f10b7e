"""LangGraph graphs without a model (no network), served with
``theazo.integrations.langgraph.serve``."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any

from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict  # pydantic needs it for a schema on Python 3.11

from tests.support.sandboxes import process_tag
from theazo import Context
from theazo.gateway.prices import PriceTable
from theazo.integrations.langgraph import serve
from theazo.sandbox import linux

# A cent an input token, two an output token.
PRICES = PriceTable.parse("[models.fake-model]\ninput = 10000\noutput = 20000\n")


class Question(TypedDict):
    text: str


class State(TypedDict):
    text: str
    words: int
    notes: Annotated[list[str], operator.add]
    answer: AIMessage | None


def count(state: State) -> dict[str, Any]:
    print(f"counting the words of {state['text']!r}")
    return {"words": len(state["text"].split()), "notes": ["counted"]}


def answer(state: State) -> dict[str, Any]:
    """What a chat model node returns: a message with its usage (here made up)."""
    message = AIMessage(
        content=state["text"].upper(),
        usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
        response_metadata={"model_name": "fake-model"},
    )
    return {"answer": message, "notes": ["answered"]}


builder = StateGraph(State, input_schema=Question)
builder.add_node("count", count)
builder.add_node("answer", answer)
builder.add_edge(START, "count")
builder.add_edge("count", "answer")
builder.add_edge("answer", END)
serve(builder.compile(), name="lg_shout", description="Counts and shouts.", prices=PRICES)


async def wait(state: Question, config: RunnableConfig) -> dict[str, Any]:
    # Named after the task, so the test finds the sandbox's process (support/sandboxes.py).
    linux.set_process_name(process_tag(config["configurable"]["task_id"]))
    await asyncio.sleep(3600)
    return {}


def start(state: Question) -> dict[str, Any]:
    return {}


slow = StateGraph(Question)
slow.add_node("start", start)
slow.add_node("wait", wait)
slow.add_edge(START, "start")
slow.add_edge("start", "wait")
slow.add_edge("wait", END)


def _config(ctx: Context) -> RunnableConfig:
    return {"configurable": {"task_id": ctx.task_id}}


serve(slow.compile(), name="lg_slow", config=_config)
