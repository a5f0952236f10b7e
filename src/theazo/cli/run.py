"""``theazo run``: one task, locally, in a real sandbox, without a server or a database.

What the agent reports is shown as it comes, on stderr (a live bar on a terminal, a line per
event otherwise); the end (its status, error and output) on stdout, or with ``--json`` the
whole run as one JSON object. The exit status is 0 when the task completed, 1 when it failed,
130 when it was cancelled (Ctrl-C), and 2 when it could not start (a wrong option, input or
agent), as ``theazo serve`` would have refused it with a 4xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from theazo.cli.options import megabytes, positive_seconds, size_bytes, whole_seconds
from theazo.cli.serve import (
    Agents,
    AgentsFile,
    CommandAgentOption,
    ComputePrice,
    CpuLimit,
    KillGrace,
    LogLimit,
    MemoryLimit,
    SandboxAllowHost,
    SandboxDisk,
    SandboxEnv,
    SandboxIsolation,
    SandboxMount,
    SandboxNetwork,
    SandboxProcesses,
    command_agents_of,
    modules_of,
    sandbox_policy,
)
from theazo.config import NodeConfig
from theazo.core import defaults
from theazo.core.models import Task
from theazo.core.states import TaskStatus

if TYPE_CHECKING:  # the engine (the sandbox pool, jsonschema) is imported when a run starts
    from theazo.local_run import AgentRun, RunEvent

out = Console()
err = Console(stderr=True)

EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_CANCELLED = 130  # as a shell reports a command stopped by Ctrl-C


def run(
    agent: Annotated[str, typer.Argument(help="The agent to run.")],
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="The input, as JSON; @FILE reads it from a file, - from stdin."
        ),
    ] = "null",
    agents: Agents = None,
    command_agent: CommandAgentOption = None,
    agents_file: AgentsFile = None,
    timeout: Annotated[
        str, typer.Option(help="The task's wall-clock limit; past it the task fails.")
    ] = f"{defaults.DEFAULT_TASK_TIMEOUT_SECONDS:g}",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole run as one JSON object.")
    ] = False,
    compute_price: ComputePrice = defaults.COMPUTE_PRICE_PER_SECOND,
    memory_limit: MemoryLimit = f"{defaults.MEMORY_LIMIT_MB}M",
    cpu_limit: CpuLimit = str(defaults.CPU_LIMIT_SECONDS),
    log_limit: LogLimit = f"{defaults.LOG_LIMIT_BYTES // 2**20}M",
    kill_grace: KillGrace = f"{defaults.KILL_GRACE_SECONDS:g}",
    sandbox_env: SandboxEnv = None,
    sandbox_isolation: SandboxIsolation = defaults.SANDBOX_ISOLATION,
    sandbox_network: SandboxNetwork = defaults.SANDBOX_NETWORK,
    sandbox_allow_host: SandboxAllowHost = None,
    sandbox_mount: SandboxMount = None,
    sandbox_disk_limit: SandboxDisk = f"{defaults.SANDBOX_DISK_LIMIT_MB}M",
    sandbox_max_processes: SandboxProcesses = defaults.SANDBOX_MAX_PROCESSES,
) -> None:
    """Run one task locally in a sandbox, without a server, showing its progress, log,
    charges and output as a server would record them."""
    task_input = _input(input)
    config = NodeConfig(
        agent_modules=modules_of(agents),
        command_agents=command_agents_of(command_agent, agents_file),
        compute_price=compute_price,
        memory_limit_mb=megabytes(memory_limit),
        cpu_limit_seconds=whole_seconds(cpu_limit),
        log_limit_bytes=size_bytes(log_limit),
        kill_grace_seconds=positive_seconds(kill_grace),
        task_timeout_seconds=positive_seconds(timeout),
        sandbox_env=tuple(sandbox_env or ()),
        sandbox=sandbox_policy(
            sandbox_isolation,
            sandbox_network,
            sandbox_allow_host,
            sandbox_mount,
            sandbox_disk_limit,
            sandbox_max_processes,
        ),
    )
    from theazo.local_run import RunRefused

    logging.basicConfig(level=logging.WARNING, format="theazo: %(message)s")
    view = _LiveView(err, quiet=False)
    try:
        result = asyncio.run(_run(config, agent, task_input, view))
    except RunRefused as exc:
        view.close()
        err.print(f"theazo run: {exc.message}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED) from None
    view.close()
    if result is None:
        err.print("theazo run: cancelled before the task started", highlight=False)
        raise typer.Exit(EXIT_CANCELLED)
    _show(result, as_json)
    if result.status is TaskStatus.CANCELLED:
        raise typer.Exit(EXIT_CANCELLED)
    if result.status is not TaskStatus.COMPLETED:
        raise typer.Exit(EXIT_FAILED)


def _input(text: str) -> Any:
    """The ``--input`` value: JSON, ``@FILE`` or ``-`` (stdin); a mistake is one line."""
    where = "--input"
    if text == "-":
        text, where = sys.stdin.read(), "the input on stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text, where = path.read_text(), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            _refuse(f"cannot read the input from {path}: {exc}")
    try:
        return json.loads(text)
    except ValueError as exc:
        _refuse(f"{where} is not JSON: {exc}")


def _refuse(message: str) -> None:
    err.print(f"theazo run: {message}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_REFUSED)


async def _run(config: NodeConfig, agent: str, task_input: Any, view: _LiveView) -> AgentRun | None:
    """Start the sandboxes, run the task; Ctrl-C (or SIGTERM) cancels it, as a server's
    cancel would. None when it was cancelled before it started."""
    from theazo.local_run import LocalRunner

    loop = asyncio.get_running_loop()
    cancel = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, cancel.set)
    async with LocalRunner(config) as runner:
        runner.check(agent, task_input)  # before anything is shown: a refusal is one line
        if cancel.is_set():
            return None
        return await runner.run(
            agent,
            task_input,
            on_event=view.event,
            on_start=lambda task: view.start(task, runner.tier),
            cancel=cancel,
        )


class _LiveView:
    """What the run reports, as it comes: on a terminal a live bar of its progress and
    message with log and charge lines printed above it; elsewhere one plain line each."""

    def __init__(self, console: Console, *, quiet: bool) -> None:
        self.console = console
        self.live = console.is_terminal and not quiet
        self.quiet = quiet
        self.bar: Progress | None = None
        self.line: TaskID | None = None

    def start(self, task: Task, tier: str) -> None:
        self._say(f"theazo run: {task.agent} as {task.task_id} in a sandbox ({tier} tier)")
        if self.live:
            self.bar = Progress(
                TextColumn("[bold]running[/bold]"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self.console,
                transient=True,
            )
            self.bar.start()
            self.line = self.bar.add_task("", total=1.0)

    def event(self, event: RunEvent) -> None:
        from theazo.local_run import Charge, LogLine

        if isinstance(event, LogLine):
            style = "yellow" if event.stream == "stderr" else ""
            prefix = "" if self.live else f"{event.stream}: "
            self._print(Text(prefix + event.text, style=style))
        elif isinstance(event, Charge):
            about = f" ({event.description})" if event.description else ""
            self._print(Text(f"charge {event.amount}{about}, cost {event.cost}", style="cyan"))
        elif self.bar is not None and self.line is not None:
            if event.progress is not None:
                self.bar.update(self.line, completed=event.progress)
            if event.message is not None:
                self.bar.update(self.line, description=event.message)
        else:
            share = "" if event.progress is None else f" {event.progress:.0%}"
            self._print(Text(f"progress{share}{' ' + event.message if event.message else ''}"))

    def _print(self, text: Text) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def _say(self, text: str) -> None:
        self._print(Text(text, style="dim"))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _show(result: AgentRun, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(run_as_json(result), ensure_ascii=False))
        return
    cost = f"cost {result.cost.amount} ({result.cost.currency} minor units)"
    summary = f"{result.status.value} in {result.duration_seconds:.2f}s, {cost}"
    if result.error is not None:
        err.print(
            f"theazo run: {summary}: {result.error.code}: {result.error.message}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    err.print(f"theazo run: {summary}", highlight=False, markup=False, style="dim")
    if result.status is not TaskStatus.COMPLETED:
        return
    output = json.dumps(result.output, ensure_ascii=False)
    if out.is_terminal:
        out.print_json(output)
    else:  # exactly the JSON, for a pipe
        print(output)


def run_as_json(result: AgentRun) -> dict[str, Any]:
    """The run as ``--json`` prints it: the task's fields as the API names them, and its
    events (progress reports, charges, log lines) in order."""
    return {
        "taskId": result.task_id,
        "agent": result.agent,
        "status": result.status.value,
        "input": result.input,
        "output": result.output,
        "error": None if result.error is None else result.error.as_dict(),
        "progress": result.progress,
        "message": result.message,
        "cost": {"amount": result.cost.amount, "currency": result.cost.currency},
        "costExact": str(result.cost_exact),
        "reports": [
            {"progress": r.progress, "message": r.message, "at": r.at.isoformat()}
            for r in result.reports
        ],
        "charges": [
            {
                "amount": str(c.amount),
                "description": c.description,
                "cost": str(c.cost),
                "at": c.at.isoformat(),
            }
            for c in result.charges
        ],
        "logs": [
            {"stream": line.stream, "text": line.text, "at": line.at.isoformat()}
            for line in result.logs
        ],
        "startedAt": result.started_at.isoformat(),
        "completedAt": result.finished_at.isoformat(),
    }
