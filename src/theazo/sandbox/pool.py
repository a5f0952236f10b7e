"""The server's side of the sandboxes: it starts the zygote, asks it for forks, and watches them.

``SandboxPool.spawn`` returns a ``Sandbox``: the task channel (to read the agent's reports),
the process id (its process group id too), and a future that resolves when the zygote has
reaped the process and removed its working directory. ``Sandbox.stop`` terminates the whole
process group: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from theazo.command_agents import CommandAgent
from theazo.core import defaults
from theazo.core.models import AgentInfo
from theazo.observability.logs import task_fields
from theazo.sandbox import protocol
from theazo.sandbox.egress import Attachment, EgressPolicy, EgressProxy, ServiceHandler, Usage
from theazo.sandbox.isolation import IsolationSettings, Network, Tier, missing_for
from theazo.sandbox.limits import ResourceLimits

log = logging.getLogger("theazo.sandbox")


@functools.cache
def _node_wasm_flag() -> str | None:
    """Node's fetch (undici) parses HTTP in WebAssembly, whose memories V8 reserves with
    gigabytes of guard pages: under a sandbox's address-space limit every fetch fails with
    "Cannot allocate Wasm memory". Without the trap handler V8 checks bounds itself and needs
    no reservation. The flag where this host's Node knows it (20.15, 22.2 and later; an older
    Node would refuse to start with it), else None."""
    node = shutil.which("node")
    if node is None:
        return None
    flag = "--disable-wasm-trap-handler"
    try:
        probe = subprocess.run(
            [node, flag, "-e", ""], capture_output=True, timeout=defaults.NODE_PROBE_SECONDS
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return flag if probe.returncode == 0 else None


class SandboxError(Exception):
    """The zygote could not start a sandbox or could not load the agents."""


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    agent_modules: tuple[str, ...]
    command_agents: tuple[CommandAgent, ...] = ()
    limits: ResourceLimits = ResourceLimits(
        memory_mb=defaults.MEMORY_LIMIT_MB, cpu_seconds=defaults.CPU_LIMIT_SECONDS
    )
    kill_grace_seconds: float = defaults.KILL_GRACE_SECONDS
    max_output_bytes: int = defaults.MAX_OUTPUT_BYTES
    workdir_root: Path | None = None  # default: a fresh folder under the system's temp dir
    passthrough_env: tuple[str, ...] = ()  # extra variables the operator lets sandboxes see
    spares: int = defaults.SANDBOX_SPARES  # sandboxes forked ahead, waiting for a task
    python_path: tuple[str, ...] = field(default_factory=lambda: (os.getcwd(),))
    isolation: IsolationSettings = IsolationSettings()
    zygotes: int = 1  # processes cloning sandboxes, each on its own core
    egress: EgressPolicy = EgressPolicy()
    # The server's own services on sandboxes' loopback ports; these ports must also be among
    # isolation.forwarded_ports.
    services: Mapping[int, ServiceHandler] = field(default_factory=dict)
    # Import the commonly used SDKs once in the zygote (defaults.SANDBOX_PRELOAD): worth it
    # for a server's many tasks, not for one local run, which would only wait for it.
    preload: tuple[str, ...] = defaults.SANDBOX_PRELOAD  # imported by each zygote, if installed


@dataclass(frozen=True, slots=True)
class ExitStatus:
    code: int  # the exit code, or minus the signal number that killed the process
    cpu_seconds: float
    max_rss_kb: int
    zygote_lost: bool = False  # the zygote died first: the real status is unknown
    oom_killed: bool = False  # the kernel killed a process of its cgroup for memory
    over_cpu: bool = False  # killed once its processes together used up their CPU time
    start_error: str | None = None  # the zygote could not start the sandbox at all

    @property
    def signal(self) -> int | None:
        return -self.code if self.code < 0 else None


OutputStream = Literal["stdout", "stderr"]


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """Bytes the agent (or a process it started) wrote to its stdout or stderr, as read: not
    split into lines."""

    stream: OutputStream
    data: bytes


class Sandbox:
    """A sandbox process: its task channel, its pid (known once the zygote has handed the task
    over; nothing waits for it but a kill), its output, and its exit."""

    def __init__(
        self,
        pool: SandboxPool,
        task_id: str,
        spawned: asyncio.Future[int],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        exited: asyncio.Future[ExitStatus],
        grace_seconds: float,
        output_fds: dict[OutputStream, int],
    ) -> None:
        self._pool = pool
        self.task_id = task_id
        self.spawned = spawned
        self.reader = reader
        self.writer = writer
        self.exited = exited
        self._grace = grace_seconds
        self._output_fds = output_fds
        self.egress: Attachment | None = None  # its connections out, under egress
        self.network = Usage()

    @property
    def pid(self) -> int | None:
        if self.spawned.done() and self.spawned.exception() is None:
            return self.spawned.result()
        return None

    def signal_group(self, signum: int) -> None:
        if self.exited.done():
            return  # never signal a group id that may have been given to someone else
        pid = self.pid
        if pid is None:  # the zygote has not said which process it is: it signals it itself
            self._pool.signal_task(self.task_id, signum)
            return
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    async def stop(self) -> ExitStatus:
        """Terminate the process group; return once the zygote has reaped it."""
        self.signal_group(signal.SIGTERM)
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), self._grace)
        except TimeoutError:
            self.signal_group(signal.SIGKILL)
        return await self.exited

    async def messages(self, max_frame_bytes: int) -> AsyncIterator[dict[str, Any]]:
        """The agent's reports, in order, until it closes the channel.

        Raises ``protocol.FrameTooLarge`` or ``ValueError`` for a message we will not read.
        """
        while True:
            message = await read_frame(self.reader, max_frame_bytes)
            if message is None:
                return
            yield message

    async def output(self) -> AsyncIterator[OutputChunk]:
        """What the agent writes to stdout and stderr, in order per stream, until both are
        closed (the sandbox and everything it started are gone) or, after its exit, until
        what is left has been read. Read it steadily: an agent whose output is not read is
        held up when its pipe is full, which bounds what the server buffers."""
        fds, self._output_fds = self._output_fds, {}
        pipes = _OutputPipes(fds, self.exited)
        try:
            while True:
                while pipes.chunks:
                    yield pipes.take()
                if not pipes.open:
                    return
                await pipes.arrived()
        finally:
            pipes.close()

    def close_channel(self) -> None:
        self.writer.close()
        for fd in self._output_fds.values():  # never read: output() was not called
            with contextlib.suppress(OSError):
                os.close(fd)
        self._output_fds = {}

    async def close_network(self) -> Usage:
        """End the sandbox's connections out; what it sent and received in all."""
        if self.egress is not None:
            self.network = await self.egress.close()
            self.egress = None
        return self.network


class _OutputPipes:
    """The read ends of a sandbox's stdout and stderr, watched by the event loop directly
    (most agents print nothing: a pipe costs the server one reader until its end)."""

    def __init__(self, fds: dict[OutputStream, int], exited: asyncio.Future[ExitStatus]) -> None:
        self._loop = asyncio.get_running_loop()
        self.open = dict(fds)
        self.chunks: collections.deque[OutputChunk] = collections.deque()
        self._arrived = asyncio.Event()
        self._paused = False
        for stream, fd in fds.items():
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._readable, stream)
        exited.add_done_callback(self._after_exit)

    def _readable(self, stream: OutputStream) -> None:
        fd = self.open.get(stream)
        if fd is None:
            return
        try:
            data = os.read(fd, defaults.OUTPUT_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end(stream)
        else:
            self.chunks.append(OutputChunk(stream, data))
            if len(self.chunks) >= defaults.OUTPUT_QUEUE_CHUNKS:
                self._pause()
        self._arrived.set()

    def _pause(self) -> None:
        self._paused = True
        for fd in self.open.values():
            self._loop.remove_reader(fd)

    def take(self) -> OutputChunk:
        chunk = self.chunks.popleft()
        if self._paused and len(self.chunks) < defaults.OUTPUT_QUEUE_CHUNKS // 2:
            self._paused = False
            for stream, fd in self.open.items():
                self._loop.add_reader(fd, self._readable, stream)
        return chunk

    async def arrived(self) -> None:
        self._arrived.clear()
        await self._arrived.wait()

    def _end(self, stream: OutputStream) -> None:
        fd = self.open.pop(stream)
        self._loop.remove_reader(fd)
        os.close(fd)

    def _after_exit(self, _: object) -> None:
        """The sandbox is gone; its pipes end at once, unless something that escaped its kill
        holds them: then what they hold by then is all there is."""
        if self.open:
            self._loop.call_later(defaults.OUTPUT_DRAIN_SECONDS, self._drain)

    def _drain(self) -> None:
        for stream in list(self.open):
            while stream in self.open and not self._paused:
                before = len(self.chunks)
                self._readable(stream)
                if len(self.chunks) == before:  # nothing more came
                    break
            if stream in self.open:
                self._end(stream)
        self._arrived.set()

    def close(self) -> None:
        for stream in list(self.open):
            self._end(stream)


async def read_frame(reader: asyncio.StreamReader, limit: int) -> dict[str, Any] | None:
    """The next message of a task channel, or None at its end. A frame over ``limit`` raises
    ``protocol.FrameTooLarge``."""
    try:
        header = await reader.readexactly(protocol.FRAME_HEADER_BYTES)
    except asyncio.IncompleteReadError:
        return None
    size = protocol.decode_frame_header(header)
    if size > limit:
        raise protocol.FrameTooLarge(size, limit)
    try:
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    try:
        message = json.loads(body)
    except RecursionError as exc:  # a hostile nesting: as unreadable as any other
        raise ValueError("a sandbox message nests arrays or objects too deeply") from exc
    if not isinstance(message, dict):
        raise ValueError("a sandbox message must be a JSON object")
    return message


class _Zygote:
    """One zygote process and what the server knows of it: the tasks it was asked to start
    (until it says which process runs each) and the sandboxes it runs (until it reaps them)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.control: socket.socket | None = None
        self.ready: asyncio.Future[None] | None = None
        self.spawning: dict[str, asyncio.Future[int]] = {}
        self.running: dict[str, asyncio.Future[ExitStatus]] = {}
        self.pids: dict[str, int] = {}
        self.sandboxes: dict[str, Sandbox] = {}  # those it has not said "spawned" for yet
        self.spares_ready = 0  # as it last said
        self.started_once = False  # a zygote that never started is not restarted
        # Unix datagram queues hold few packets (net.unix.max_dgram_qlen, often 10), and a
        # writer blocked on a full one is not reliably woken by epoll; never fill it.
        self.in_flight = asyncio.Semaphore(defaults.ZYGOTE_SPAWNS_IN_FLIGHT)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def load(self) -> int:
        return len(self.spawning) + len(self.running)


def _is_up(zygote: _Zygote) -> bool:
    ready = zygote.ready
    return ready is not None and ready.done() and ready.exception() is None


class SandboxPool:
    """The node's zygotes: several, since one clones spares on one core only."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.catalogue: dict[str, AgentInfo] = {}
        self.isolation: dict[str, Any] = {}  # what the zygotes found (isolation.Features)
        self._egress = EgressProxy(settings.egress, settings.services)
        self._workdir_root = settings.workdir_root or Path(
            tempfile.mkdtemp(prefix="theazo-sandboxes-")
        )
        self._owns_workdir_root = settings.workdir_root is None
        self._zygotes = [_Zygote(i) for i in range(max(1, settings.zygotes))]
        self._owner: dict[str, _Zygote] = {}  # task id → the zygote asked to start it
        self._closing = False
        self._spares_listeners: list[Callable[[], None]] = []

    @property
    def workdir_root(self) -> Path:
        return self._workdir_root

    @property
    def zygote_pid(self) -> int | None:
        return self._zygotes[0].pid

    @property
    def zygote_pids(self) -> list[int]:
        return [z.pid for z in self._zygotes if z.pid is not None]

    @property
    def spares_ready(self) -> int:
        """Sandboxes walled in and waiting for a task, in all zygotes, as they last said."""
        return sum(z.spares_ready for z in self._zygotes if z.control is not None)

    def on_spares_changed(self, listener: Callable[[], None]) -> None:
        self._spares_listeners.append(listener)

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._workdir_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            await asyncio.gather(*(self._start_zygote(z) for z in self._zygotes))
        except BaseException:
            await self.close()
            raise

    async def _start_zygote(self, zygote: _Zygote) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, protocol.CONTROL_PACKET_BYTES)
        ours.setblocking(False)
        zygote.ready = loop.create_future()
        zygote.control = ours
        loop.add_reader(ours.fileno(), self._on_control_readable, zygote)
        config = {
            "workdir_root": str(self._workdir_root / f"zygote-{zygote.index}"),
            "memory_limit_mb": self.settings.limits.memory_mb,
            "spares": self._spares_each(),
            "modules": list(self.settings.agent_modules),
            "commands": [c.as_message() for c in self.settings.command_agents],
            "isolation": self.settings.isolation.as_message(),
            "preload": list(self.settings.preload),
        }
        zygote.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "theazo.sandbox.zygote",
            str(theirs.fileno()),
            pass_fds=[theirs.fileno()],
            env=self._zygote_env(),
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=False,
        )
        theirs.close()
        # On the channel, not the command line: every sandbox is a copy of the zygote, and
        # would read the paths in it (the database's among them) in its own /proc/1/cmdline.
        ours.send(protocol.encode({"t": "config", **config}))
        await zygote.ready
        zygote.started_once = True

    def _spares_each(self) -> int:
        return -(-self.settings.spares // len(self._zygotes))  # rounded up

    @property
    def tier(self) -> Tier:
        return Tier.parse(self.isolation.get("tier", "process"))

    def _check_isolation(self) -> str | None:
        """Why the isolation found is not enough for this deployment, if it is not."""
        wanted = self.settings.isolation
        if self.tier < wanted.minimum:
            needs = "; ".join(missing_for(wanted.minimum, self.isolation))
            return (
                f"sandboxes here are isolated at tier '{self.tier.label}', below the "
                f"'{wanted.minimum.label}' that --sandbox-isolation asks for. Missing: {needs}. "
                "(--sandbox-isolation process accepts what there is, without that protection.)"
            )
        if wanted.network is not Network.HOST and not self.isolation.get("namespaces"):
            return (
                f"--sandbox-network {wanted.network.value} needs network namespaces, which this "
                "host does not give: "
                + "; ".join(missing_for(Tier.NAMESPACES, self.isolation))
                + " (or choose --sandbox-network host, where sandboxes share the host's network)"
            )
        return None

    def _zygote_env(self) -> dict[str, str]:
        allowed = set(defaults.SANDBOX_ENV_ALLOWLIST) | set(self.settings.passthrough_env)
        env = {name: value for name, value in os.environ.items() if name in allowed}
        paths = [*self.settings.python_path, *env.get("PYTHONPATH", "").split(os.pathsep)]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env["PYTHONUNBUFFERED"] = "1"
        if self.settings.limits.memory_mb > 0:
            flag = _node_wasm_flag()
            if flag and flag not in env.get("NODE_OPTIONS", ""):
                env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} {flag}".strip()
        return env

    async def close(self) -> None:
        self._closing = True
        for zygote in self._zygotes:
            for pid in list(zygote.pids.values()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            self._drop_control(zygote)
        for zygote in self._zygotes:
            if zygote.process is not None and zygote.process.returncode is None:
                try:
                    await asyncio.wait_for(zygote.process.wait(), 5)
                except TimeoutError:
                    zygote.process.kill()
                    await zygote.process.wait()
        if self._owns_workdir_root:
            shutil.rmtree(self._workdir_root, ignore_errors=True)

    def _drop_control(self, zygote: _Zygote) -> None:
        if zygote.control is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(zygote.control.fileno())
            zygote.control.close()
            zygote.control = None

    # --- spawning --------------------------------------------------------------------------
    def _choose(self) -> _Zygote | None:
        """The zygote to start the next task: one that is up (not restarting) if any, with
        the most spares ready, then the least busy."""
        live = [z for z in self._zygotes if z.control is not None]
        if not live:
            return None
        return max(live, key=lambda z: (_is_up(z), z.spares_ready, -z.load))

    async def spawn(self, init: dict[str, Any]) -> Sandbox:
        """Have a zygote hand ``init["task_id"]`` to a sandbox. Returns at once: the agent's
        reports come on the sandbox's channel, its pid and exit when the zygote says."""
        zygote = self._choose()
        if zygote is None or zygote.control is None:
            raise SandboxError("the sandbox zygote is not running")
        loop = asyncio.get_running_loop()
        task_id: str = init["task_id"]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        reader, writer = await asyncio.open_unix_connection(
            sock=ours, limit=self.settings.max_output_bytes + defaults.FRAME_OVERHEAD_BYTES
        )
        writer.write(protocol.frame({"t": "init", **init}))
        spawned: asyncio.Future[int] = loop.create_future()
        exited: asyncio.Future[ExitStatus] = loop.create_future()
        request = {
            "t": "spawn",
            "task_id": task_id,
            "limits": self.settings.limits.as_message(),
            "max_output_bytes": self.settings.max_output_bytes,
        }
        sandbox = Sandbox(
            self,
            task_id,
            spawned,
            reader,
            writer,
            exited,
            self.settings.kill_grace_seconds,
            {"stdout": stdout_r, "stderr": stderr_r},
        )
        try:
            await zygote.in_flight.acquire()  # released when the zygote answers
            control = zygote.control
            if control is None:
                zygote.in_flight.release()
                raise SandboxError("the sandbox zygote stopped")
            zygote.spawning[task_id] = spawned
            zygote.running[task_id] = exited
            zygote.sandboxes[task_id] = sandbox
            self._owner[task_id] = zygote
            zygote.spares_ready = max(0, zygote.spares_ready - 1)  # until it says
            passed = [theirs.fileno(), stdout_w, stderr_w]
            await self._send_with_fds(control, protocol.encode(request), passed)
        except BaseException:
            if zygote.spawning.pop(task_id, None) is not None:
                zygote.in_flight.release()
            zygote.running.pop(task_id, None)
            zygote.sandboxes.pop(task_id, None)
            self._owner.pop(task_id, None)
            writer.close()
            os.close(stdout_r)
            os.close(stderr_r)
            raise
        finally:
            theirs.close()
            os.close(stdout_w)
            os.close(stderr_w)
        return sandbox

    def signal_task(self, task_id: str, signum: int) -> None:
        """Ask the zygote to signal the sandbox of ``task_id`` (whose pid we may not know)."""
        zygote = self._owner.get(task_id)
        control = None if zygote is None else zygote.control
        if control is None:
            return
        try:
            control.send(protocol.encode({"t": "kill", "task_id": task_id, "signal": signum}))
        except OSError:  # a full queue (rare: see _Zygote.in_flight) or a gone zygote
            log.warning(
                "could not ask the zygote to signal the sandbox of %s",
                task_id,
                extra=task_fields(task_id=task_id),
            )

    def set_spares(self, total: int) -> None:
        """How many sandboxes the zygotes should keep walled in and waiting, in all."""
        each = -(-max(0, total) // len(self._zygotes))
        for zygote in self._zygotes:
            if zygote.control is not None:
                with contextlib.suppress(OSError):
                    zygote.control.send(protocol.encode({"t": "spares", "target": each}))

    async def _send_with_fds(self, control: socket.socket, data: bytes, fds: list[int]) -> None:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, protocol.fd_bytes(fds))]
        loop = asyncio.get_running_loop()
        while True:
            try:
                control.sendmsg([data], ancillary)
                return
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(control.fileno(), writable.set_result, None)
                try:  # see _Zygote.in_flight: a wake-up may not come, so look again soon
                    await asyncio.wait_for(writable, defaults.ZYGOTE_SEND_RETRY_SECONDS)
                except TimeoutError:
                    pass
                finally:
                    loop.remove_writer(control.fileno())

    # --- the control channels --------------------------------------------------------------
    def _on_control_readable(self, zygote: _Zygote) -> None:
        while zygote.control is not None:
            try:
                data, fds = protocol.recv_packet(zygote.control)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                self._on_zygote_gone(zygote)
                return
            self._on_control_message(zygote, json.loads(data), fds)

    def _on_control_message(
        self, zygote: _Zygote, message: Mapping[str, Any], fds: list[int]
    ) -> None:
        kind = message.get("t")
        task_id = message.get("task_id", "")
        if kind == "spawned":
            sandbox = zygote.sandboxes.pop(task_id, None)
            listeners = [socket.socket(fileno=fd) for fd in fds]
            if listeners and sandbox is not None:
                asyncio.get_running_loop().create_task(self._serve_egress(sandbox, listeners))
            else:
                for listener in listeners:
                    listener.close()
            future = zygote.spawning.pop(task_id, None)
            if future is not None:
                zygote.in_flight.release()
                zygote.pids[task_id] = int(message["pid"])
                if not future.done():
                    future.set_result(int(message["pid"]))
            self._on_spares(zygote, int(message["spares"]))
            return
        for fd in fds:
            os.close(fd)
        if kind == "spares":
            self._on_spares(zygote, int(message["ready"]))
        elif kind == "spawn_failed":
            zygote.sandboxes.pop(task_id, None)
            self._owner.pop(task_id, None)
            error = str(message.get("error"))
            future = zygote.spawning.pop(task_id, None)
            if future is not None:
                zygote.in_flight.release()
                if not future.done():
                    future.set_exception(SandboxError(error))
                    future.exception()  # retrieved: nothing else may await it
            exited = zygote.running.pop(task_id, None)
            if exited is not None and not exited.done():
                exited.set_result(ExitStatus(0, 0.0, 0, start_error=error))
        elif kind == "exited":
            zygote.pids.pop(task_id, None)
            self._owner.pop(task_id, None)
            exited = zygote.running.pop(task_id, None)
            if exited is not None and not exited.done():
                exited.set_result(
                    ExitStatus(
                        code=int(message["exit"]),
                        cpu_seconds=float(message["cpu_seconds"]),
                        max_rss_kb=int(message["max_rss_kb"]),
                        oom_killed=bool(message.get("oom_killed")),
                        over_cpu=bool(message.get("over_cpu")),
                    )
                )
        elif kind == "ready":
            self._on_ready(zygote, message)
        elif kind == "failed" and zygote.ready is not None and not zygote.ready.done():
            log.debug("loading the agent modules failed:\n%s", message.get("traceback"))
            zygote.ready.set_exception(
                SandboxError(
                    f"the agent modules could not be loaded: {message.get('error')} "
                    "(--log-level debug shows the traceback)"
                )
            )

    def _on_spares(self, zygote: _Zygote, ready: int) -> None:
        zygote.spares_ready = ready
        for notify in self._spares_listeners:
            notify()

    def _on_ready(self, zygote: _Zygote, message: Mapping[str, Any]) -> None:
        self.isolation = dict(message.get("isolation") or {})
        self.catalogue = {
            entry["name"]: AgentInfo(
                entry["name"],
                entry.get("description") or "",
                entry.get("inputSchema"),
                entry.get("outputSchema"),
            )
            for entry in message.get("agents", [])
        }
        if zygote.ready is not None and not zygote.ready.done():
            refusal = self._check_isolation()
            if refusal is None:
                zygote.ready.set_result(None)
            else:
                zygote.ready.set_exception(SandboxError(refusal))

    async def _serve_egress(self, sandbox: Sandbox, listeners: list[socket.socket]) -> None:
        """Answer a sandbox's listeners: its proxy's first, then its forwarded ports'."""
        proxy, *forwards = listeners
        ports = self.settings.isolation.forwarded_ports
        try:
            sandbox.egress = await self._egress.attach(
                sandbox.task_id, proxy, dict(zip(ports, forwards, strict=True))
            )
        except (OSError, ValueError):
            log.exception(
                "cannot serve the egress proxy of %s",
                sandbox.task_id,
                extra=task_fields(task_id=sandbox.task_id),
            )
            for listener in listeners:
                listener.close()
            return
        if sandbox.exited.done():  # ended before we got here
            await sandbox.close_network()

    def _on_zygote_gone(self, zygote: _Zygote) -> None:
        """A zygote died. Its sandboxes' fates are unknown: kill them, report them lost."""
        self._drop_control(zygote)
        zygote.spares_ready = 0
        for pid in list(zygote.pids.values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for exited in zygote.running.values():
            if not exited.done():
                exited.set_result(ExitStatus(-signal.SIGKILL, 0.0, 0, zygote_lost=True))
        for spawned in zygote.spawning.values():
            zygote.in_flight.release()
            if not spawned.done():
                spawned.set_exception(SandboxError("the sandbox zygote stopped"))
                spawned.exception()
        for task_id in [*zygote.running, *zygote.spawning]:
            self._owner.pop(task_id, None)
        zygote.running.clear()
        zygote.pids.clear()
        zygote.spawning.clear()
        zygote.sandboxes.clear()
        if zygote.ready is not None and not zygote.ready.done():
            zygote.ready.set_exception(SandboxError("the sandbox zygote stopped while starting"))
        if not self._closing and zygote.started_once:
            log.error("a sandbox zygote stopped unexpectedly; starting a new one")
            asyncio.get_running_loop().create_task(self._restart(zygote))

    async def _restart(self, zygote: _Zygote) -> None:
        if zygote.process is not None:
            await zygote.process.wait()
        try:
            await self._start_zygote(zygote)
        except Exception:
            log.exception("the sandbox zygote could not be restarted")
