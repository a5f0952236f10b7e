"""What every adapter does the same way: register, log, end with JSON, stop on a cancel."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import to_jsonable_python

from theazo.agent import AgentSpec, register_spec
from theazo.core import defaults
from theazo.sandbox.context import Context

T = TypeVar("T")
RunFunction = Callable[[Context, Any], Awaitable[Any]]


class PromptInput(BaseModel):
    """A task's input: the prompt, as ``{"prompt": ...}`` or a bare string."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="The user prompt the run starts from.")

    @model_validator(mode="before")
    @classmethod
    def _a_string_is_the_prompt(cls, data: Any) -> Any:
        return {"prompt": data} if isinstance(data, str) else data


def input_schema(model: type[PromptInput]) -> dict[str, Any]:
    """The model's schema; without deps, a bare string is a prompt too."""
    schema = model.model_json_schema()
    if "deps" in model.model_fields:
        return schema
    return {"anyOf": [{"type": "string", "description": "The user prompt."}, schema]}


def register(
    name: str,
    run: RunFunction,
    *,
    description: str,
    input_model: type[BaseModel],
    input_schema: dict[str, Any],
    output_schema: dict[str, Any] | None,
    framework: str,
) -> None:
    """Register ``run`` (an async function of the context and the parsed input) as ``name``."""
    run.__qualname__ = run.__name__ = f"{framework}[{name}]"
    register_spec(
        AgentSpec(
            name=name,
            function=run,
            description=description,
            input_schema=input_schema,
            input_model=input_model,
            output_schema=output_schema,
        )
    )


def log(kind: str, text: str) -> None:
    """One line of the task's log (a sandbox's stdout is its log), sent at once rather than
    when the buffer fills, so the log follows the run."""
    text = text.replace("\n", " ")[: defaults.MAX_MESSAGE_CHARS]
    sys.stdout.write(f"[{kind}] {text}\n")
    sys.stdout.flush()


def shorten(value: Any, limit: int = defaults.INTEGRATION_LOG_VALUE_CHARS) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StreamedText:
    """Text as a model streams it, shown as the task's progress message: the text so far (its
    end, if long), at most every ``STREAMED_TEXT_REPORT_SECONDS`` and once more when it ends,
    so that a client sees the answer being written without an event per token."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._text = ""
        self._reported = ""
        self._reported_at: float | None = None

    def add(self, delta: str) -> None:
        if not delta:
            return
        self._text += delta
        now = time.monotonic()
        if self._reported_at is None or (
            now - self._reported_at >= defaults.STREAMED_TEXT_REPORT_SECONDS
        ):
            self._report(now)

    def end(self) -> None:
        """The text is complete (a model response ended): show all of it, and start anew."""
        self._report(time.monotonic())
        self._text = self._reported = ""

    def _report(self, now: float) -> None:
        if self._text.strip() and self._text != self._reported:
            self._ctx.progress(message=self._text[-defaults.MAX_MESSAGE_CHARS :])
            self._reported, self._reported_at = self._text, now


def jsonable(output: Any) -> Any:
    """The framework's final output as JSON: pydantic models and dataclasses dumped."""
    return to_jsonable_python(output, fallback=str)


async def cancellable(ctx: Context, work: Awaitable[T]) -> T:
    """Await ``work`` so that the task's cancel stops it as asyncio stops anything: a
    ``CancelledError`` at the await the run is in, so the framework closes its streams and
    its tasks end. (The sandbox's own handler would raise inside whatever code runs when the
    signal comes, possibly a task of the framework's that swallows it as a failure.) The
    sandbox is killed after the kill grace anyway; this makes the stop prompt and clean."""
    # Imported here: the sandbox's module is loaded wherever an agent runs, not in the API.
    from theazo.sandbox.child import Stopped

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        ctx.mark_cancelled()
        task.cancel()

    previous = signal.getsignal(signal.SIGTERM)
    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        return await work
    except asyncio.CancelledError:
        if stopped:
            raise Stopped from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if previous is not None:  # None: not set from Python, left as asyncio leaves it
            signal.signal(signal.SIGTERM, previous)
