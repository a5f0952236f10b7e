"""The sandbox process: what a fork of the zygote does, from the fork to ``os._exit``.

The zygote forks sandboxes ahead of need ("spares"), so a fork's cost is not paid while a
task waits. A spare at once puts itself in its own process group and drops what it inherited,
then waits on its hand-off socket for the one task it will ever run: the spawn message and the
task channel. Then it makes its private working directory, applies its resource limits, reads
its task from the channel, runs the agent and sends back one ``result`` or ``error``. It never
returns into the zygote's code: every path ends in ``os._exit``, so nothing of the zygote
(atexit handlers, buffers) runs twice.
"""

from __future__ import annotations

import inspect
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

from theazo.agent import AgentFailed, AgentSpec
from theazo.core.states import ErrorCode
from theazo.sandbox import jail, linux, protocol
from theazo.sandbox import limits as resource_limits
from theazo.sandbox.context import Context, context_kwargs
from theazo.sandbox.view import WORKSPACE


class Stopped(BaseException):
    """Raised inside the agent when the server stops the task (SIGTERM).

    A BaseException, like KeyboardInterrupt, so that an agent's ``except Exception`` does not
    swallow it.
    """


def run(
    handoff: socket.socket,
    agents: dict[str, AgentSpec],
    *,
    resources: dict[str, Any],
    plan: jail.Plan | None,
    workdir: Path | None,
    keep_fds: set[int],
) -> NoReturn:
    """Be a spare, then a sandbox: ``plan`` walls it in (see jail.py); without one it is a
    plain process working in ``workdir`` on the host (the process tier)."""
    exit_code = 0
    try:
        _isolate(keep_fds)
        if plan is not None:
            workdir = _enter(handoff, plan)
        else:
            assert workdir is not None
            # Made now, while no task waits: a directory made on a busy disk can wait for its
            # journal (a database's fsync) for milliseconds.
            workdir.mkdir(mode=0o700)
            _harden_process()
            protocol.send_with_fds(handoff, {"t": "ready"}, [])
        try:
            received = protocol.recv_with_fds(handoff, protocol.SPAWN_FDS)
        except ConnectionResetError:  # the zygote closed our handoff: it is shutting down
            received = None
        handoff.close()
        if received is not None:  # None: the zygote is gone, or retired this spare
            spawn, (channel_fd, stdout_fd, stderr_fd) = received
            _redirect_output(stdout_fd, stderr_fd)
            resource_limits.apply(resource_limits.ResourceLimits.from_message(spawn["limits"]))
            os.chdir(workdir)
            os.environ["HOME"] = str(workdir)
            os.environ["TMPDIR"] = "/tmp" if plan is not None else str(workdir)
            channel = socket.socket(fileno=channel_fd)
            init = protocol.recv_frame(channel)
            if init is not None:
                limit = int(spawn["max_output_bytes"])
                _serve(channel, init, workdir, agents, resources, limit)
            # The end of the channel and of the output tell the server the run is over: now,
            # rather than when the exit has torn down this process's memory and namespaces
            # (the kernel closes files last). The server records the end once both came.
            _end_output()
            channel.close()
            if plan is None:
                _tidy(workdir)
    except Stopped:
        exit_code = 143  # the server asked; it already knows how the task ended
    except BaseException:  # a crash of our own code must still end in _exit
        traceback.print_exc()
        exit_code = 70
    finally:
        _flush_stdio()
        os._exit(exit_code)


def _enter(handoff: socket.socket, plan: jail.Plan) -> Path:
    """Wait for the zygote to map our ids, build the walls, say we are ready."""
    go = protocol.recv_packet(handoff)[0]
    if not go:
        raise Stopped  # the zygote gave up on us before we started
    try:
        listeners = jail.enter(plan)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        protocol.send_with_fds(handoff, {"t": "broken", "error": error}, [])
        raise
    protocol.send_with_fds(handoff, {"t": "ready"}, [s.fileno() for s in listeners])
    for listener in listeners:
        listener.close()  # the server's proxy answers them now
    return Path(WORKSPACE)


def _tidy(workdir: Path) -> None:
    """Remove the working directory if the agent left it empty (the zygote removes it
    otherwise, once this process is gone)."""
    try:
        os.chdir("/")
        os.rmdir(workdir)
    except OSError:
        pass


def _harden_process() -> None:
    """What a process-tier sandbox can still do for itself."""
    try:
        linux.set_no_new_privs()
    except OSError:
        pass


def _end_output() -> None:
    """Close our ends of the log's pipes (what the agent started may still hold them)."""
    _flush_stdio()
    devnull = os.open(os.devnull, os.O_WRONLY)
    for target in (1, 2):
        os.dup2(devnull, target)
    os.close(devnull)


def _redirect_output(stdout_fd: int, stderr_fd: int) -> None:
    """Send what the agent (and whatever it starts) writes to the server, which keeps it as
    the task's log: pipes of their own, so no print can reach the task channel."""
    _flush_stdio()
    for fd, target in ((stdout_fd, 1), (stderr_fd, 2)):
        os.dup2(fd, target)
        os.close(fd)


def _isolate(keep_fds: set[int]) -> None:
    try:
        os.setpgid(0, 0)  # the zygote also sets it; whoever runs first wins the race
    except PermissionError:
        pass
    signal.set_wakeup_fd(-1)
    # The zygote's control channel, its selector, other spares' sockets and listeners: none
    # of them is this sandbox's business.
    linux.close_fds_except(keep_fds)
    for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _serve(
    channel: socket.socket,
    init: dict[str, Any],
    workdir: Path,
    agents: dict[str, AgentSpec],
    resources: dict[str, Any],
    max_output_bytes: int,
) -> None:
    spec = agents.get(init["agent"])
    kwargs = context_kwargs(init, workdir)
    ctx = Context(channel, **kwargs, resources=resources.get(init["agent"]))
    _stop_on_sigterm(ctx)
    if spec is None:
        _send_error(channel, ErrorCode.UNKNOWN_AGENT, f"no agent named {ctx.agent!r} is loaded")
        return
    try:
        agent_input = _parse_input(spec, init["input"])
    except ValueError as exc:
        _send_error(channel, ErrorCode.INVALID_INPUT, str(exc))
        return
    try:
        output = _call(spec, ctx, agent_input)
    except Stopped:
        raise
    except AgentFailed as exc:  # the agent chose its error's code
        _send_error(channel, exc.code, exc.message)
        return
    except MemoryError:
        _send_error(channel, ErrorCode.MEMORY_LIMIT, "the agent ran out of its memory limit")
        return
    except BaseException as exc:
        _log_exception(ctx, exc)
        _send_error(channel, ErrorCode.AGENT_ERROR, _describe(exc))
        return
    _send_output(channel, output, max_output_bytes)


def _stop_on_sigterm(ctx: Context) -> None:
    def stop(signum: int, frame: object) -> None:
        ctx.mark_cancelled()
        raise Stopped

    signal.signal(signal.SIGTERM, stop)


def _parse_input(spec: AgentSpec, raw: Any) -> Any:
    if spec.input_model is None:
        return raw
    try:
        return spec.input_model.model_validate(raw)
    except Exception as exc:  # pydantic's ValidationError; its text names the fields
        raise ValueError(str(exc)) from exc


def _call(spec: AgentSpec, ctx: Context, agent_input: Any) -> Any:
    if spec.is_async:
        function: Callable[..., Coroutine[Any, Any, Any]] = spec.function
        return _run_coroutine(function(ctx, agent_input))
    result = spec.function(ctx, agent_input)
    if inspect.iscoroutine(result):  # a sync wrapper around an async function
        return _run_coroutine(result)
    return result


def _run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    # Imported here, not at the top: a zygote without asyncio forks twice as fast, and it
    # imports asyncio itself when it serves async agents (see zygote.py).
    import asyncio

    return asyncio.run(coroutine)


def _send_output(channel: socket.socket, output: Any, max_output_bytes: int) -> None:
    if hasattr(output, "model_dump"):
        output = output.model_dump(mode="json")
    try:
        body = protocol.encode({"t": "result", "output": output})
    except (TypeError, ValueError, RecursionError) as exc:  # the server checks the rest
        _send_error(channel, ErrorCode.INVALID_OUTPUT, f"the agent's output is not JSON: {exc}")
        return
    if len(body) > max_output_bytes:
        _send_error(
            channel,
            ErrorCode.OUTPUT_TOO_LARGE,
            f"the agent's output is {len(body)} bytes; the limit is {max_output_bytes}",
        )
        return
    protocol.send_encoded(channel, body)


def _send_error(channel: socket.socket, code: str, message: str) -> None:
    protocol.send_frame(channel, {"t": "error", "code": code, "message": message})


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"the agent called sys.exit({exc.code!r}) instead of returning"
    text = str(exc)
    return text if text else type(exc).__name__


def _log_exception(ctx: Context, exc: BaseException) -> None:
    lines = traceback.format_exception(exc)
    sys.stderr.write(f"task {ctx.task_id} agent {ctx.agent} raised:\n{''.join(lines)}")


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
