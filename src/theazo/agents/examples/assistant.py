"""``assistant``: answers a question with a model, in a few tool-using steps.

It shows an agent that really calls a model, written with the official ``openai`` SDK (the
``assistant`` extra: ``pip install 'theazo[assistant]'``) and nothing of Theazo's but
``ctx.progress``:

* the client is built as anywhere (``openai.OpenAI()``): inside a sandbox of a deployment
  with a model gateway (``theazo serve --llm-provider …``), ``OPENAI_BASE_URL`` points at the
  gateway and ``OPENAI_API_KEY`` is a dummy; the gateway adds the real key, meters the tokens
  and charges them to the task, so the agent never holds the key and never charges by hand;
* the model is offered two tools, ``search_notes`` (BM25 over the bundled corpus, as
  ``researcher``) and ``calculate`` (arithmetic), and the loop runs them until it answers, at
  most ``MAX_STEPS`` model calls, reporting each step as progress;
* with no provider configured it fails at once with ``error.code = "no_model_provider"`` and
  a message saying what the operator must do.

Input::

    {"question": "How do workers claim jobs, and what is 6 * 7?", "model": "gpt-4o-mini"}

Output::

    {"answer": "...", "model": "gpt-4o-mini", "steps": 3,
     "tools": [{"name": "search_notes", "arguments": {"query": "..."}}, ...]}
"""

from __future__ import annotations

import ast
import json
import operator
import os
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from theazo import Context, agent
from theazo.agent import AgentFailed
from theazo.agents.examples.researcher import Bm25, document_files, split_passages, tokenize
from theazo.core.usage import Tokens
from theazo.gateway.prices import PriceTable

MAX_STEPS = 6  # model calls per task: a question needs two or three
SEARCH_RESULTS = 3  # passages one search returns to the model
DEFAULT_MODEL = "gpt-4o-mini"
SYSTEM = (
    "You answer questions about building task systems. Use search_notes to find facts in the "
    "notes and calculate for arithmetic; then answer in a few sentences, citing the notes."
)
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "search_notes",
            "description": "Search the engineering notes; returns the best passages.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Evaluate an arithmetic expression (+ - * / ** and parentheses).",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        },
    },
]
NO_PROVIDER = (
    "no model provider is configured for this deployment: start the server with "
    "--llm-provider NAME=openai,BASE_URL,KEY_ENV (e.g. "
    "openai=openai,https://api.openai.com/v1,OPENAI_API_KEY) so that sandboxes reach a model "
    "through the gateway; see docs/agents.md, 'Model calls'"
)


class AssistantInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=4000)
    model: str = Field(default=DEFAULT_MODEL, min_length=1, max_length=200)


@agent("assistant", description="Answers a question with a model, using tools (openai SDK).")
def assistant(ctx: Context, input: AssistantInput) -> dict[str, Any]:
    """Answer ``input.question`` with ``input.model``, calling tools until it answers.

    Raises:
        AgentFailed: no model provider is configured (``no_model_provider``), the ``openai``
            package is missing (``missing_dependency``), or the model did not answer within
            ``MAX_STEPS`` calls (``no_answer``).
    """
    client = _client()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": input.question},
    ]
    used: list[dict[str, Any]] = []
    for step in range(1, MAX_STEPS + 1):
        ctx.progress((step - 1) / MAX_STEPS, f"Step {step}: asking {input.model}...")
        reply = client.chat.completions.create(model=input.model, messages=messages, tools=TOOLS)
        _charge_unless_metered(ctx, reply)
        message = reply.choices[0].message
        calls = message.tool_calls or []
        if not calls:
            ctx.progress(1.0, f"Answered in {step} steps")
            return {
                "answer": message.content or "",
                "model": reply.model,
                "steps": step,
                "tools": used,
            }
        messages.append(message.model_dump(exclude_none=True))
        for call in calls:
            name, arguments = call.function.name, _arguments(call.function.arguments)
            used.append({"name": name, "arguments": arguments})
            ctx.progress(step / MAX_STEPS, f"Step {step}: {name}({_short(arguments)})")
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": _run(name, arguments)}
            )
    raise AgentFailed("no_answer", f"the model did not answer within {MAX_STEPS} calls")


def _client() -> Any:
    gateway = os.environ.get("THEAZO_MODEL_GATEWAY") == "1"
    if gateway and not os.environ.get("OPENAI_BASE_URL"):
        raise AgentFailed(
            "no_model_provider",
            "the deployment's model gateway has no OpenAI-compatible provider; "
            + NO_PROVIDER.split(": ", 1)[1],
        )
    if not gateway and not os.environ.get("OPENAI_API_KEY"):
        raise AgentFailed("no_model_provider", NO_PROVIDER)
    try:
        import openai
    except ImportError:
        raise AgentFailed(
            "missing_dependency",
            "the assistant agent needs the openai package: pip install 'theazo[assistant]'",
        ) from None
    return openai.OpenAI(max_retries=1)


def _charge_unless_metered(ctx: Context, reply: Any) -> None:
    """Through the gateway the tokens are charged already; a deployment that hands agents a
    key of their own (no gateway) has the agent charge them, from the same price table."""
    if os.environ.get("THEAZO_MODEL_GATEWAY") == "1" or reply.usage is None:
        return
    usage = reply.usage
    details = getattr(usage, "prompt_tokens_details", None)
    cached = min(getattr(details, "cached_tokens", 0) or 0, usage.prompt_tokens)
    tokens = Tokens(usage.prompt_tokens, usage.completion_tokens, cached)
    prices = PriceTable.bundled()
    if prices.knows(reply.model):
        ctx.charge(str(prices.cost(reply.model, tokens)), description=f"model {reply.model}")


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _short(arguments: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return text if len(text) <= 60 else text[:57] + "..."


def _run(name: str, arguments: dict[str, Any]) -> str:
    """A tool's result, as text for the model; a mistake is told to it, not raised."""
    try:
        if name == "search_notes":
            return search_notes(str(arguments.get("query", "")))
        if name == "calculate":
            return str(calculate(str(arguments.get("expression", ""))))
    except (ValueError, ZeroDivisionError, OverflowError) as exc:
        return f"error: {exc}"
    return f"error: there is no tool {name!r}"


def search_notes(query: str) -> str:
    terms = set(tokenize(query))
    if not terms:
        raise ValueError("the query has no word to search for")
    passages = [
        passage
        for file in document_files(None)
        for passage in split_passages(file.name, file.read_bytes().decode("utf-8", "replace"))
    ]
    index = Bm25([passage.terms for passage in passages])
    scored = sorted(((index.score(terms, p.terms), p) for p in passages), key=lambda item: -item[0])
    best = [f"[{p.source}] {p.text}" for score, p in scored[:SEARCH_RESULTS] if score > 0]
    return "\n\n".join(best) or "no passage matches"


_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculate(expression: str) -> float | int:
    """Arithmetic only: numbers, + - * / **, parentheses (never ``eval``)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ValueError(f"{expression!r} is not arithmetic") from None
    value: float | int = _evaluate(tree.body)
    return value


def _evaluate(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError("only numbers, + - * / ** and parentheses")
