"""Command agents: an executable in any language, run as a task (``--command-agent NAME=PATH``).

Each is served by a small Python agent that, inside the task's sandbox, starts the executable
and speaks the protocol of docs/agents.md ("Agents in any language") with it: the input on
its stdin as one JSON object, then JSON lines back on descriptor 3 (``progress``, ``charge``,
and finally ``output`` or ``error``). Its stdout and stderr are the sandbox's, so they are the
task's log. It is a child of the sandbox, so it has the sandbox's view, limits and fate: a
cancel kills it with the rest of the sandbox's processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import IO, Any

from theazo.agent import AgentFailed, agent
from theazo.core import defaults
from theazo.sandbox.context import Context

CHANNEL_FD = 3
# One line on descriptor 3 holds at most the largest output plus its wrapper; past that the
# agent is misbehaving and the line is not read whole.
_MAX_LINE_BYTES = 2 * defaults.MAX_OUTPUT_BYTES


@dataclass(frozen=True, slots=True)
class CommandAgent:
    """A command agent as the deployment declares it (``--command-agent``, an agents file):
    its name, its executable's real path on the host, and what ``GET /v1/agents`` shows."""

    name: str
    path: str
    description: str | None = None  # None: "Runs FILENAME."
    input_schema: dict[str, Any] | None = None  # None: any JSON input
    files: tuple[str, ...] = ()  # real paths of files shown next to it (its modules, data)

    def as_message(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "description": self.description,
            "inputSchema": self.input_schema,
            "files": list(self.files),
        }

    def shown_files(self) -> list[tuple[str, str]]:
        """Each file to show a sandbox and where: the executable's and its companions',
        side by side in a folder of their own."""
        return [(p, shown_path(self.name, p)) for p in (self.path, *self.files)]

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> CommandAgent:
        schema = message.get("inputSchema")
        description = message.get("description")
        return cls(
            name=str(message["name"]),
            path=str(message["path"]),
            description=None if description is None else str(description),
            input_schema=schema if isinstance(schema, dict) else None,
            files=tuple(str(f) for f in message.get("files") or ()),
        )


def parse_declaration(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` as ``--command-agent`` takes it: the name and the executable's real,
    absolute path. Raises ``ValueError`` saying what is wrong."""
    name, equals, path = spec.partition("=")
    name = name.strip()
    if not equals or not name or not path:
        raise ValueError(f"{spec!r} is not NAME=PATH")
    return check_name(name), executable(path, name)


def check_name(name: str) -> str:
    if not name.isidentifier() or len(name) > defaults.MAX_AGENT_NAME_CHARS:
        raise ValueError(
            f"{name!r} is not an agent name (an identifier of at most "
            f"{defaults.MAX_AGENT_NAME_CHARS} characters)"
        )
    return name


def executable(path: str, name: str) -> str:
    """The real, absolute path of the executable file ``path`` of the agent ``name``."""
    real = os.path.realpath(path)
    if not os.path.isfile(real):
        raise ValueError(f"{path!r} (for the agent {name!r}) is not a file")
    if not os.access(real, os.X_OK):
        raise ValueError(f"{path!r} (for the agent {name!r}) is not executable (chmod +x)")
    if ":" in real:
        raise ValueError(f"{real!r}: a command agent's path may not contain ':'")
    return real


# Where a sandbox is shown each command agent's executable: a place of its own, so that an
# executable may live anywhere on the host (under /tmp, say, which a sandbox has as scratch).
SHOWN_COMMANDS = "/theazo-commands"


def shown_path(name: str, path: str) -> str:
    """Where a sandbox with a filesystem view of its own finds the executable of ``name``
    (its file name kept: Node tells an ES module by its ``.mjs``)."""
    return f"{SHOWN_COMMANDS}/{name}/{os.path.basename(path)}"


def register_command_agent(declared: CommandAgent, path: str) -> None:
    """Register ``declared`` as an agent whose executable a sandbox finds at ``path``; its
    input is any JSON unless it declares a schema."""

    def run(ctx: Context, input: Any) -> Any:
        return run_command(path, ctx, input)

    run.__qualname__ = run.__name__ = f"command_agent[{declared.name}]"
    description = declared.description or f"Runs {os.path.basename(declared.path)}."
    schema = {} if declared.input_schema is None else declared.input_schema
    agent(declared.name, description=description, input_schema=schema)(run)


def run_command(path: str, ctx: Context, task_input: Any) -> Any:
    """Run the executable for one task; its ``output`` line is the result."""
    read_end, write_end = _channel_pipe()
    env = os.environ | {"THEAZO_CHANNEL_FD": str(CHANNEL_FD), "THEAZO_TASK_ID": ctx.task_id}
    try:
        # Its own process group is not wanted: the sandbox ends its whole group on cancel.
        process = subprocess.Popen(
            [path],
            stdin=subprocess.PIPE,
            cwd=ctx.workdir,
            env=env,
            pass_fds=(CHANNEL_FD,),
            preexec_fn=lambda: _become_channel(write_end),  # one thread yet: safe
        )
    finally:
        os.close(write_end)
    assert process.stdin is not None
    feeder = threading.Thread(target=_feed, args=(process.stdin, task_input), daemon=True)
    feeder.start()
    try:
        with os.fdopen(read_end, "rb") as lines:
            ending = _follow(ctx, lines)
        status = process.wait()
    finally:
        if process.poll() is None:  # stopped (cancel) or a bad line: it goes with us
            process.kill()
            process.wait()
    return _outcome(ending, status)


def _channel_pipe() -> tuple[int, int]:
    """A pipe whose ends are both above descriptor 3: the child's 3 is made from the write
    end just before it runs the executable, so neither end may already be 3. A placeholder
    holds 3 while the pipe is made when nothing else does."""
    placeholder = None
    try:
        os.fstat(CHANNEL_FD)
    except OSError:
        placeholder = os.open(os.devnull, os.O_RDONLY)
    try:
        read_end, write_end = os.pipe()
    finally:
        if placeholder is not None:
            os.close(placeholder)
    return read_end, write_end


def _become_channel(write_end: int) -> None:
    os.dup2(write_end, CHANNEL_FD)  # inheritable: it survives the exec
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the sandbox's handler is Python's


def _feed(stdin: IO[bytes], task_input: Any) -> None:
    """Write the input and close stdin (its EOF ends the input). On a thread: a large input
    must not block us from reading what the agent writes on descriptor 3 meanwhile."""
    try:
        stdin.write(json.dumps(task_input).encode() + b"\n")
        stdin.close()
    except (BrokenPipeError, OSError):  # it exited or closed stdin without reading: its right
        pass


def _follow(ctx: Context, lines: IO[bytes]) -> dict[str, Any] | None:
    """Act on each line until the descriptor closes; the ``output`` or ``error`` line, if
    any, is returned (the first one: the task's end cannot change)."""
    ending: dict[str, Any] | None = None
    for number, raw in enumerate(iter(lambda: lines.readline(_MAX_LINE_BYTES), b""), 1):
        if not raw.strip() or ending is not None:
            continue
        try:
            message = json.loads(raw)
        except ValueError:
            raise ValueError(f"line {number} on descriptor 3 is not JSON: {raw[:200]!r}") from None
        if not isinstance(message, dict):
            raise ValueError(f"line {number} on descriptor 3 is not a JSON object")
        if "output" in message or "error" in message:
            ending = message
        elif "progress" in message:
            _progress(ctx, message["progress"])
        elif "charge" in message:
            ctx.charge(message["charge"], description=_text(message.get("description")))
        else:
            raise ValueError(
                f"line {number} on descriptor 3 has none of progress, charge, output, error"
            )
    return ending


def _progress(ctx: Context, report: Any) -> None:
    if not isinstance(report, dict):
        raise ValueError('"progress" must be an object: {"current": N, "total": M, "message": …}')
    current, total = report.get("current"), report.get("total")
    fraction = None
    if current is not None or total is not None:
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in (current, total)
        ):
            raise ValueError('"progress" needs numbers "current" and "total"')
        assert isinstance(current, int | float) and isinstance(total, int | float)
        if total <= 0 or not 0 <= current <= total:
            raise ValueError(f"progress {current} of {total} is not between 0 and the total")
        fraction = current / total
    ctx.progress(fraction, _text(report.get("message")))


def _outcome(ending: dict[str, Any] | None, status: int) -> Any:
    if ending is not None and "error" in ending:
        error = ending["error"]
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = error.get("code")
        message = _text(error.get("message")) or "the agent reported an error"
        # The server keeps the code if it is an agent's to give (scheduler/outcome.py).
        raise AgentFailed(code if isinstance(code, str) else "agent_error", message)
    if status != 0:
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        raise RuntimeError(f"the command {how}")
    if ending is None:
        raise RuntimeError(
            'the command exited without writing an {"output": …} line on descriptor 3'
        )
    return ending["output"]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
