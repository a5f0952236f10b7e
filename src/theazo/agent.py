"""Registering agents: the ``@agent`` decorator and the registry the sandbox reads.

An agent is a function (sync or async) of a context and the task's input::

    from theazo import Context, agent

    @agent("researcher", description="Ranks passages of a corpus for a query.")
    def researcher(ctx: Context, input: dict) -> dict:
        ctx.progress(0.5, "Ranking passages...")
        ctx.charge(12, description="llm tokens")
        return {"summary": "..."}

Its return value, which must be JSON, becomes the task's output; an exception fails the task
with ``error.code = "agent_error"``. If the input parameter is annotated with a pydantic model,
the input is validated against it (at submit, through the model's JSON schema, and again in
the sandbox) and the agent receives the model instance.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from theazo.core import defaults

AgentFunction = Callable[..., Any]
F = TypeVar("F", bound=AgentFunction)

BUNDLED_AGENT_MODULES = ("theazo.agents.examples",)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    function: AgentFunction
    description: str
    input_schema: dict[str, Any] | None
    input_model: type[Any] | None  # a pydantic model the input is parsed into
    setup: Callable[[], Any] | None = None  # run once per zygote; its result is ctx.resources
    output_schema: dict[str, Any] | None = None  # what its output is, where it declares it

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    def catalogue_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
        }


_REGISTRY: dict[str, AgentSpec] = {}


class AgentDefinitionError(ValueError):
    pass


class AgentFailed(Exception):
    """Raised by an agent to fail its task with an ``error.code`` of its own choosing (a
    command agent's ``{"error": …}`` line), rather than ``agent_error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def agent(
    name: str,
    *,
    description: str | None = None,
    input_schema: dict[str, Any] | None = None,
    setup: Callable[[], Any] | None = None,
) -> Callable[[F], F]:
    """Register ``function`` as the agent ``name``.

    Args:
        name: how clients refer to the agent when they submit a task.
        description: shown by ``GET /v1/agents``; defaults to the docstring's first line.
        input_schema: a JSON Schema the input must satisfy at submit; derived from a pydantic
            model annotation on the input parameter when not given.
        setup: builds what every run would otherwise build again (an HTTP or model client,
            a model loaded into memory), once, before any task: the server calls it when it
            loads the agents, and each task finds its result as ``ctx.resources``. Each
            sandbox gets its own copy (its memory is a copy of the loader's), so no task can
            change what another sees. It runs with the sandboxes' environment set (the
            egress proxy, the model gateway's base URL), so the clients it builds find it.
            Build clients that connect lazily: a connection opened in ``setup`` is closed in
            every sandbox (none of the loader's descriptors reach one), so a client's first
            request opens its own.
    """
    if callable(name):  # a bare @agent: the function came as the name
        raise AgentDefinitionError(
            f"@agent needs the name clients submit under: @agent({getattr(name, '__name__', '')!r})"
        )
    check_name(name)

    def register(function: F) -> F:
        parameters = list(inspect.signature(function).parameters.values())
        if len(parameters) != 2:
            raise AgentDefinitionError(
                f"agent {name!r} must take two parameters, (ctx, input); "
                f"{function.__qualname__} takes {len(parameters)}"
            )
        model = _input_model(function, parameters[1].name)
        schema = input_schema
        if schema is None and model is not None:
            schema = model.model_json_schema()
        register_spec(
            AgentSpec(
                name=name,
                function=function,
                description=description or _first_line(function.__doc__),
                input_schema=schema,
                input_model=model,
                setup=setup,
            )
        )
        return function

    return register


def check_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or len(name) > defaults.MAX_AGENT_NAME_CHARS
        or not name.isidentifier()
    ):
        raise AgentDefinitionError(
            f"agent name {name!r} must be an identifier of at most "
            f"{defaults.MAX_AGENT_NAME_CHARS} characters"
        )


def register_spec(spec: AgentSpec) -> None:
    """Register an agent built by other means than ``@agent`` (a framework's adapter in
    ``theazo.integrations``); its name must be new, unless it is the same function again."""
    check_name(spec.name)
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing.function is not spec.function:
        raise AgentDefinitionError(
            f"two agents are named {spec.name!r}: {existing.function.__module__}."
            f"{existing.function.__qualname__} and {spec.function.__module__}."
            f"{spec.function.__qualname__}"
        )
    _REGISTRY[spec.name] = spec


def _input_model(function: AgentFunction, parameter: str) -> type[Any] | None:
    try:
        hints = get_type_hints(function)
    except Exception:  # an annotation that cannot be resolved is just not a model
        return None
    annotation = hints.get(parameter)
    if inspect.isclass(annotation) and hasattr(annotation, "model_validate"):
        return annotation
    return None


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else ""


def load_agents(modules: Iterable[str]) -> dict[str, AgentSpec]:
    """Import the modules (registering their agents) and return the whole registry."""
    for module in modules:
        importlib.import_module(module)
    return registered_agents()


def registered_agents() -> dict[str, AgentSpec]:
    return dict(_REGISTRY)
