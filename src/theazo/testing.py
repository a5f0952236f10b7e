"""Testing agents without a server: ``run_agent`` runs one task in a real sandbox, as
``theazo serve`` would, and returns what the server would have recorded::

    from theazo.testing import run_agent

    def test_echo() -> None:
        run = run_agent("echo", {"text": "hi"})
        assert run.status == "completed"
        assert run.output == {"echo": "hi"}

The engine is ``theazo run``'s (``theazo/local_run.py``): the same sandbox pool and zygote,
the same relaying of the agent's reports, the same input check as a submit and the same
error codes. See docs/agents.md, "Testing agents".
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from theazo.agent import BUNDLED_AGENT_MODULES, registered_agents
from theazo.agents_file import load_agents_file
from theazo.command_agents import CommandAgent, parse_declaration
from theazo.config import NodeConfig, SandboxPolicy
from theazo.core import defaults
from theazo.core.durations import parse_duration
from theazo.local_run import (
    AgentRun,
    Charge,
    LocalRunner,
    LogLine,
    ProgressReport,
    RunEvent,
    RunRefused,
)
from theazo.sandbox.isolation import Network, Tier

__all__ = [
    "AgentRun",
    "Charge",
    "LogLine",
    "ProgressReport",
    "RunEvent",
    "RunRefused",
    "run_agent",
    "run_agent_async",
]

DEFAULT_TIMEOUT = "60s"  # a test that hangs should fail in a minute, not in the server's hour


def run_agent(
    agent: str | Callable[..., Any],
    input: Any = None,
    *,
    agents: str | Sequence[str] | None = None,
    command_agents: Mapping[str, str | os.PathLike[str]] | None = None,
    agents_file: str | os.PathLike[str] | None = None,
    timeout: float | str = DEFAULT_TIMEOUT,
    compute_price: float = defaults.COMPUTE_PRICE_PER_SECOND,
    sandbox_env: Sequence[str] = (),
    isolation: str = defaults.SANDBOX_ISOLATION,
    network: str = defaults.SANDBOX_NETWORK,
) -> AgentRun:
    """Run one task of ``agent`` on ``input`` in a sandbox, without a server, and return how
    it ended with everything it reported (``AgentRun``).

    Args:
        agent: the agent's name, or the ``@agent`` function itself (its module is loaded in
            the sandbox, so it must be importable: defined at a module's top level).
        input: the task's input, any JSON value, checked against the agent's input schema
            as a submit checks it.
        agents: modules whose ``@agent``s may run (as ``theazo serve --agents`` takes them);
            by default the module of ``agent`` when it is a function, else the bundled
            examples.
        command_agents: executables served as agents, ``{name: path}``, as
            ``--command-agent NAME=PATH`` declares them.
        agents_file: an agents.toml declaring command agents with their descriptions and
            input schemas, as ``--agents-file``.
        timeout: the task's wall-clock limit (seconds, or ``"30s"``, ``"5m"``); past it the
            run fails with ``error.code == "timeout"``.
        compute_price: minor units per second of sandbox time, as ``--compute-price``.
        sandbox_env: variables the sandbox may see, as ``--sandbox-env``.
        isolation: the least isolation accepted, as ``--sandbox-isolation``.
        network: ``none``, ``egress`` or ``host``, as ``--sandbox-network``.

    Raises:
        RunRefused: what a server would answer with 422 before queueing (``code`` is
            ``unknown_agent`` or ``invalid_input``), or agents that could not be loaded.
    """
    return asyncio.run(
        run_agent_async(
            agent,
            input,
            agents=agents,
            command_agents=command_agents,
            agents_file=agents_file,
            timeout=timeout,
            compute_price=compute_price,
            sandbox_env=sandbox_env,
            isolation=isolation,
            network=network,
        )
    )


async def run_agent_async(
    agent: str | Callable[..., Any],
    input: Any = None,
    *,
    agents: str | Sequence[str] | None = None,
    command_agents: Mapping[str, str | os.PathLike[str]] | None = None,
    agents_file: str | os.PathLike[str] | None = None,
    timeout: float | str = DEFAULT_TIMEOUT,
    compute_price: float = defaults.COMPUTE_PRICE_PER_SECOND,
    sandbox_env: Sequence[str] = (),
    isolation: str = defaults.SANDBOX_ISOLATION,
    network: str = defaults.SANDBOX_NETWORK,
) -> AgentRun:
    """``run_agent`` for a test that already runs an event loop (same arguments)."""
    name, modules = _agent_and_modules(agent, agents)
    try:
        config = NodeConfig(
            agent_modules=modules,
            command_agents=_commands(command_agents or {}, agents_file),
            compute_price=compute_price,
            sandbox_env=tuple(sandbox_env),
            sandbox=SandboxPolicy(minimum=Tier.parse(isolation), network=Network(network)),
        )
        timeout_seconds = parse_duration(timeout)
    except ValueError as exc:
        raise RunRefused("invalid_setting", str(exc)) from None
    async with LocalRunner(config, python_path=_import_roots(modules)) as runner:
        return await runner.run(name, input, timeout_seconds=timeout_seconds)


def _agent_and_modules(
    agent: str | Callable[..., Any], agents: str | Sequence[str] | None
) -> tuple[str, tuple[str, ...]]:
    modules = (agents,) if isinstance(agents, str) else tuple(agents or ())
    if isinstance(agent, str):
        return agent, BUNDLED_AGENT_MODULES if agents is None else modules
    spec = next((s for s in registered_agents().values() if s.function is agent), None)
    if spec is None:
        raise TypeError(f"{agent!r} is not an agent: decorate it with @agent(NAME)")
    module, qualname = agent.__module__, agent.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        raise TypeError(
            f"agent {spec.name!r} ({qualname}) must be defined at the top level of an "
            "importable module: the sandbox imports it from there"
        )
    return spec.name, tuple(dict.fromkeys((*modules, module)))


def _commands(
    declared: Mapping[str, str | os.PathLike[str]], agents_file: str | os.PathLike[str] | None
) -> tuple[CommandAgent, ...]:
    found = {} if agents_file is None else {a.name: a for a in load_agents_file(agents_file)}
    for name, path in declared.items():
        found[name] = CommandAgent(*parse_declaration(f"{name}={os.fspath(path)}"))
    return tuple(found.values())


def _import_roots(modules: Sequence[str]) -> tuple[str, ...]:
    """Where the sandbox imports each module already loaded here from (a test module under a
    folder that is on this process's path but not the sandbox's, say)."""
    roots: list[str] = []
    for name in modules:
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue  # the zygote says so, with its traceback
        file = getattr(module, "__file__", None)
        if not file:
            continue
        root = Path(file).resolve().parent
        levels = name.count(".") + (Path(file).name == "__init__.py")
        for _ in range(levels):
            root = root.parent
        roots.append(str(root))
    return tuple(dict.fromkeys(roots))
