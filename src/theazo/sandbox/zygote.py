"""The zygote: a long-lived process that has imported theazo and the agent modules, and forks one
sandbox per task. Forking a warm interpreter takes about a millisecond; starting a new one takes
fifty.

The server starts it with ``python -m theazo.sandbox.zygote CONTROL_FD`` and an environment
stripped of its secrets, and sends its configuration as the channel's first message. At once it
closes every descriptor but its control channel and makes itself non-dumpable. It imports the
agents, works out the isolation this host allows by building a first sandbox (see isolation.py,
jail.py), and reports the agent catalogue and the tier.

It is single-threaded (forking a threaded process is unsafe) and keeps ``spares`` sandboxes
cloned ahead, each walled in and waiting to run exactly one task: on ``spawn`` it hands the task
to a spare that is ready, and clones a new spare when it is idle again. It reaps its children,
cleans up after them and reports each exit. When the server goes away (end of the control
channel) it kills every sandbox and exits.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import importlib
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theazo.agent import AgentSpec, load_agents, registered_agents
from theazo.command_agents import CommandAgent, register_command_agent, shown_path
from theazo.core import defaults
from theazo.sandbox import child, jail, linux, protocol, syscall_filter, view
from theazo.sandbox.cgroups import Cgroups, SandboxCgroup
from theazo.sandbox.cgroups import Unavailable as CgroupsUnavailable
from theazo.sandbox.isolation import CLONE_FAILED, Features, IsolationSettings
from theazo.sandbox.warm_up import warm_up

_SPARE_SETUP_TIMEOUT_SECONDS = defaults.SANDBOX_PROBE_TIMEOUT_SECONDS


@dataclass(slots=True)
class _Running:
    task_id: str
    workdir: Path | None  # a directory on the host, in the process tier only
    cpu_limit: float = 0.0  # CPU seconds of all its processes together; 0: none
    over_cpu: bool = False  # killed for passing it


@dataclass(slots=True)
class _Spare:
    pid: int
    handoff: socket.socket  # where it says it is ready, and then waits for its task
    workdir: Path | None
    listeners: list[socket.socket] = field(default_factory=list)  # egress sockets, once ready
    ready: bool = False


@dataclass(slots=True)
class _Request:
    message: dict[str, Any]
    fds: list[int] = field(default_factory=list)


class Zygote:
    def __init__(self, control: socket.socket, config: dict[str, Any]) -> None:
        self.control = control
        self.workdir_root = Path(config["workdir_root"])
        self.workdir_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.memory_limit_mb = int(config["memory_limit_mb"])
        self.spare_target = int(config["spares"])
        self.preload = tuple(config.get("preload", defaults.SANDBOX_PRELOAD))
        self.settings = IsolationSettings.from_message(config["isolation"])
        self.agents: dict[str, AgentSpec] = {}
        self.resources: dict[str, Any] = {}  # what each agent's setup built, by agent
        self.features = Features()
        self.plan: jail.Plan | None = None  # None: the process tier, plain forks
        self.in_namespace = False
        self.parent_uid = 0
        self.drop_groups = False
        self.cgroups: Cgroups | None = None
        self.cgroup_of: dict[int, SandboxCgroup] = {}  # by pid: spares' and running ones'
        self.proc = -1  # the host's /proc (a descriptor), inside the namespace
        self.children: dict[int, _Running] = {}
        self.spares: list[_Spare] = []
        self.waiting: collections.deque[_Request] = collections.deque()  # for a ready spare
        self.reported_spares = 0  # what the server was last told of them
        self.next_cpu_watch = 0.0  # monotonic time of the next look at sandboxes' CPU time
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        if fds:
            protocol.send_with_fds(self.control, message, fds)
        else:
            self.control.sendall(protocol.encode(message))

    # --- start ---------------------------------------------------------------------------
    def load(self, modules: list[str], commands: list[CommandAgent]) -> bool:
        try:
            self.agents = load_agents(modules)
        except BaseException as exc:
            summary = traceback.format_exception_only(exc)[-1].strip()
            self.send({"t": "failed", "error": summary, "traceback": traceback.format_exc()})
            return False
        if any(spec.is_async for spec in self.agents.values()):
            import asyncio  # noqa: F401 -- loaded once here rather than in every async sandbox
        # A client reads its proxy, base URL and certificates when it is made, not when it is
        # used: the warm-up and the setups must find the environment the sandboxes will have.
        host_environment = dict(os.environ)
        if self.in_namespace:
            os.environ.update(self._walled_environment())
        _preload(self.preload)
        if not self._set_up_agents():
            return False
        self._prepare_isolation()
        if self.plan is None and os.environ != host_environment:
            os.environ.clear()  # no walls after all: the sandboxes run on the host's network
            os.environ.update(host_environment)
            if not self._set_up_agents():
                return False
        self._register_commands(commands)
        catalogue = [spec.catalogue_entry() for spec in self.agents.values()]
        self.send(
            {
                "t": "ready",
                "pid": os.getpid(),
                "agents": catalogue,
                "isolation": self.features.as_message(),
            }
        )
        gc.freeze()  # keep the imported objects out of every fork's garbage collections
        linux.collapse_into_huge_pages(self.proc if self.proc >= 0 else None)  # see there
        return True

    def _walled_environment(self) -> dict[str, str]:
        """What the spares' environment gains when they are walled in; set once here, where
        every spare inherits it, rather than by each spare."""
        gateway = dict(self.settings.environment)
        return jail.sandbox_environment(self.settings.network.value, gateway, os.environ)

    def _set_up_agents(self) -> bool:
        """Run each agent's setup once, where every sandbox inherits what it built."""
        try:
            self.resources = {
                spec.name: spec.setup() for spec in self.agents.values() if spec.setup is not None
            }
        except BaseException as exc:
            summary = traceback.format_exception_only(exc)[-1].strip()
            error = f"an agent's setup failed: {summary}"
            self.send({"t": "failed", "error": error, "traceback": traceback.format_exc()})
            return False
        return True

    def _register_commands(self, commands: list[CommandAgent]) -> None:
        """Once the tier is known: a sandbox with a filesystem view of its own is shown each
        executable at a place of its own; in the process tier it sees the host's path."""
        for command in commands:
            shown = command.path if self.plan is None else shown_path(command.name, command.path)
            register_command_agent(command, shown)
        self.agents = registered_agents()

    def enter_namespace(self) -> None:
        """Move into a user and mount namespace of our own, where the sandboxes' root can be
        built; before the agents are imported, while this process is surely one thread."""
        root = os.geteuid() == 0
        try:
            self.parent_uid = jail.enter_zygote_namespace(defaults.SANDBOX_ROOT_SERVER_UID)
        except OSError as exc:
            self.features.namespaces_error = f"{CLONE_FAILED}: {exc}"
            return
        self.in_namespace = True
        self.drop_groups = root
        # The host's /proc, kept for writing sandboxes' id maps once we stand in the template.
        self.proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def _prepare_isolation(self) -> None:
        """Find the strongest isolation this host gives by building a first spare with it,
        dropping what fails (Landlock, then seccomp, then the namespaces) until one stands."""
        if not self.in_namespace:
            return
        features = self.features
        try:
            program: bytes | None = syscall_filter.compile_filter()
            features.seccomp = True
        except (syscall_filter.Unavailable, OSError) as exc:
            program, features.seccomp_error = None, str(exc)
        features.landlock_abi = linux.landlock_abi()
        try:
            self.cgroups = Cgroups.detect(server_pid=os.getppid())
            features.cgroup = self.cgroups.version
        except (CgroupsUnavailable, OSError) as exc:
            features.cgroup_error = str(exc)
        try:
            template = str(self.workdir_root / "root")
            user_paths = [os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
            shown = view.compute(user_paths, self.settings.hidden_paths)
            jail.build_template(template, shown, self.settings.mounts)
        except OSError as exc:
            features.namespaces_error = f"building the sandboxes' root failed: {exc}"
            return
        self.plan = jail.Plan(
            template=template,
            writable_mounts=tuple(m.target for m in self.settings.mounts if m.writable),
            network=self.settings.network.value,
            forwarded_ports=self.settings.forwarded_ports,
            disk_limit_mb=self.settings.disk_limit_mb,
            max_processes=self.settings.max_processes,
            max_open_files=self.settings.max_open_files,
            parent_uid=self.parent_uid,
            drop_groups=self.drop_groups,
            landlock_abi=features.landlock_abi,
            seccomp_program=program,
        )
        while self.plan is not None:
            error = self._probe()
            if error is None:
                features.namespaces = True
                jail.enter_template(template)
                return
            if "landlock" in error and self.plan.landlock_abi:
                features.landlock_abi = self.plan.landlock_abi = 0
            elif "seccomp" in error and self.plan.seccomp_program is not None:
                features.seccomp, features.seccomp_error = False, error
                self.plan.seccomp_program = None
            else:
                features.namespaces_error = error
                self.plan = None

    def _probe(self) -> str | None:
        """Build one sandbox as every later one will be, from a copy of this process standing
        in the template (we only move there once that worked: the process tier needs the
        host's files); None once it is ready, or why it broke."""
        assert self.plan is not None
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            error: str | None = None
            try:
                os.close(read_end)
                linux.unshare(linux.CLONE_NEWNS)
                jail.enter_template(self.plan.template)
                error = self._probe_spare()
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
            finally:
                os.write(write_end, (error or "").encode()[:4000])
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer:
            error = answer.read().decode() or None
        os.waitpid(pid, 0)
        return error

    def _probe_spare(self) -> str | None:
        try:
            spare = self._fork_spare()
        except OSError as exc:
            return f"{CLONE_FAILED}: {exc}"
        ready = selectors.DefaultSelector()
        ready.register(spare.handoff, selectors.EVENT_READ)
        found = ready.select(_SPARE_SETUP_TIMEOUT_SECONDS)
        ready.close()
        error = self._on_spare_message(spare) if found else "the first sandbox did not start"
        self.spares.remove(spare)  # this is a copy of the zygote: it tells the server nothing
        self._discard(spare)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(spare.pid, 0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(spare.pid, 0)
        cgroup = self.cgroup_of.pop(spare.pid, None)
        if cgroup is not None:
            cgroup.remove()
        return error

    # --- the loop ------------------------------------------------------------------------
    def serve(self) -> None:
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        # Ctrl-C, or a stop signal sent to the server's whole process group or cgroup, is for
        # the server to handle: it stops its tasks in order, then closes our channel.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "child")
        for spare in self.spares:
            if not spare.ready:
                self.selector.register(spare.handoff, selectors.EVENT_READ, spare)
        while True:
            # Below the target, look for work without waiting, and clone a spare if none came.
            short = len(self.spares) < self.spare_target + len(self.waiting)
            events = self.selector.select(timeout=0 if short else self._watch_timeout())
            for key, _ in events:
                if key.data == "child":
                    self._drain_wakeups()
                    self._reap()
                elif key.data == "control":
                    if not self._on_control():
                        self._shutdown()
                        return
                else:
                    self._on_spare_ready(key.data)
            self._hand_out()
            self._report_spares()
            self._watch_cpu()
            if short and (not events or self.waiting):
                self._add_spare()

    def _watch_timeout(self) -> float | None:
        """How long the loop may sleep: for ever, unless a sandbox's CPU time is watched."""
        watched = any(r.cpu_limit for r in self.children.values())
        return defaults.SANDBOX_CPU_WATCH_SECONDS if watched else None

    def _watch_cpu(self) -> None:
        """Kill the sandboxes whose processes together used up their CPU time: a limit per
        process (RLIMIT_CPU) would let a sandbox of many processes use many times it."""
        now = time.monotonic()
        if now < self.next_cpu_watch:
            return
        self.next_cpu_watch = now + defaults.SANDBOX_CPU_WATCH_SECONDS
        for pid, running in self.children.items():
            cgroup = self.cgroup_of.get(pid)
            if not running.cpu_limit or running.over_cpu or cgroup is None:
                continue
            if cgroup.usage().cpu_seconds >= running.cpu_limit:
                running.over_cpu = True
                _kill_group(pid)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _on_control(self) -> bool:
        """Handle one packet from the server; False when the server has gone."""
        try:
            data, fds = protocol.recv_packet(self.control)
        except ConnectionResetError:
            return False
        if not data:
            return False
        message = json.loads(data)
        if message.get("t") == "spawn" and len(fds) == protocol.SPAWN_FDS:
            self.waiting.append(_Request(message, fds))
            return True
        for fd in fds:
            os.close(fd)
        if message.get("t") == "kill":
            self._kill(message["task_id"], int(message["signal"]))
        elif message.get("t") == "spares":
            self.spare_target = max(0, int(message["target"]))
        return True

    def _kill(self, task_id: str, signum: int) -> None:
        """Signal a task's process group: the server's way when it does not know the pid."""
        for pid, running in self.children.items():
            if running.task_id == task_id:
                _signal_group(pid, signum)
        for request in list(self.waiting):  # not handed out yet: it never starts
            if request.message["task_id"] == task_id:
                self.waiting.remove(request)
                self._refuse(request, "the task was stopped before its sandbox started")

    # --- spares --------------------------------------------------------------------------
    def _add_spare(self) -> None:
        try:
            spare = self._fork_spare()
        except OSError as exc:
            while self.waiting:
                self._refuse(self.waiting.popleft(), f"cannot create a sandbox: {exc}")
            return
        self.selector.register(spare.handoff, selectors.EVENT_READ, spare)

    def _fork_spare(self) -> _Spare:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        plan = self.plan
        pid = self._clone(jail.CLONE_FLAGS) if plan is not None else os.fork()
        if pid == 0:
            ours.close()
            workdir = None if plan is not None else self._workdir_of(os.getpid())
            child.run(
                theirs,
                self.agents,
                resources=self.resources,
                plan=plan,
                workdir=workdir,
                keep_fds={theirs.fileno()},
            )
        theirs.close()
        try:
            os.setpgid(pid, pid)  # the spare does it too; whoever runs first wins the race
        except OSError:
            pass
        spare = _Spare(pid, ours, None if plan is not None else self._workdir_of(pid))
        self.spares.append(spare)
        if plan is not None:
            try:
                jail.map_ids(pid, plan.parent_uid, self.proc)
                self._add_to_cgroup(pid)
                protocol.send_with_fds(ours, {"t": "go"}, [])
            except OSError as exc:
                sys.stderr.write(f"theazo zygote: a sandbox could not be set up: {exc}\n")
                _kill_group(pid)  # reaped with the others; its spawns go to the next spare
        return spare

    def _add_to_cgroup(self, pid: int) -> None:
        """Put a spare in a cgroup of its own before it runs anything."""
        if self.cgroups is None:
            return
        memory = self.memory_limit_mb * 1024 * 1024
        cgroup = self.cgroups.create(f"sbx-{pid}", memory, self.settings.max_processes)
        self.cgroup_of[pid] = cgroup
        cgroup.add(pid)

    @staticmethod
    def _clone(flags: int) -> int:
        """Clone a spare that is dumpable, unlike us: its /proc files are then its user's, so
        we may write its id maps without being root (it stops being dumpable itself)."""
        linux.set_dumpable(True)
        try:
            pid = linux.clone(flags)
        except OSError:
            linux.set_dumpable(False)
            raise
        if pid != 0:
            linux.set_dumpable(False)
        return pid

    def _workdir_of(self, pid: int) -> Path:
        return self.workdir_root / f"sandbox-{pid}"

    def _on_spare_ready(self, spare: _Spare) -> None:
        self.selector.unregister(spare.handoff)
        error = self._on_spare_message(spare)
        if error is not None:
            sys.stderr.write(f"theazo zygote: a sandbox could not be set up: {error}\n")
            _kill_group(spare.pid)  # reaped and forgotten as it exits

    def _on_spare_message(self, spare: _Spare) -> str | None:
        """Read a spare's first message: None when it is ready, else what broke."""
        try:
            data, fds = protocol.recv_packet(spare.handoff)
        except OSError as exc:
            return str(exc)
        if not data:
            return "the sandbox exited while it was being set up"
        message = json.loads(data)
        if message.get("t") != "ready":
            for fd in fds:
                os.close(fd)
            return str(message.get("error") or "the sandbox broke the protocol")
        spare.listeners = [socket.socket(fileno=fd) for fd in fds]
        spare.ready = True
        return None

    def _hand_out(self) -> None:
        """Give waiting tasks to ready spares, oldest first."""
        while self.waiting:
            spare = next((s for s in self.spares if s.ready), None)
            if spare is None:
                return
            self.spares.remove(spare)
            request = self.waiting.popleft()
            try:
                protocol.send_with_fds(spare.handoff, request.message, request.fds)
            except OSError:  # it died waiting: the next spare takes the task
                self.waiting.appendleft(request)
                self._discard(spare)
                continue
            self._close_fds(request)
            spare.handoff.close()
            task_id = request.message["task_id"]
            cpu_limit = float(request.message.get("limits", {}).get("cpu_seconds") or 0)
            self.children[spare.pid] = _Running(task_id, spare.workdir, cpu_limit)
            self.reported_spares = self._ready_spares()
            spawned = {
                "t": "spawned",
                "task_id": task_id,
                "pid": spare.pid,
                "spares": self.reported_spares,
            }
            self.send(spawned, [s.fileno() for s in spare.listeners])
            for listener in spare.listeners:
                listener.close()

    def _ready_spares(self) -> int:
        return sum(1 for s in self.spares if s.ready)

    def _report_spares(self) -> None:
        """Tell the server how many spares are ready (it starts no more tasks than that), when
        it has changed and no answer to a spawn will say it anyway: a Unix datagram queue
        holds few packets, so we send no more than we must."""
        ready = self._ready_spares()
        if ready != self.reported_spares and not self.waiting:
            self.reported_spares = ready
            self.send({"t": "spares", "ready": ready})

    def _refuse(self, request: _Request, error: str) -> None:
        self._close_fds(request)
        self.send({"t": "spawn_failed", "task_id": request.message["task_id"], "error": error})

    @staticmethod
    def _close_fds(request: _Request) -> None:
        for fd in request.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        request.fds = []

    def _discard(self, spare: _Spare) -> None:
        cgroup = self.cgroup_of.get(spare.pid)
        if cgroup is not None:
            cgroup.kill()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(spare.handoff)
        spare.handoff.close()
        for listener in spare.listeners:
            listener.close()
        if spare.workdir is not None:
            _remove(spare.workdir)
        _kill_group(spare.pid)

    # --- exits ---------------------------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                # WNOWAIT leaves the child a zombie, which keeps its process group id reserved
                # until we have killed whatever it left behind in that group.
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            _kill_group(pid)
            _, status, usage = os.wait4(pid, 0)
            self._forget_spare(pid)
            cgroup = self.cgroup_of.pop(pid, None)
            measured = cgroup.usage() if cgroup is not None else None
            if cgroup is not None:
                cgroup.remove()
            running = self.children.pop(pid, None)
            if running is None:
                continue
            if running.workdir is not None:
                _remove(running.workdir)
            cpu_seconds, max_rss_kb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
            if measured is not None:  # all its processes, not only the first
                cpu_seconds = max(cpu_seconds, measured.cpu_seconds)
                max_rss_kb = measured.peak_memory_bytes // 1024
            self.send(
                {
                    "t": "exited",
                    "task_id": running.task_id,
                    "pid": pid,
                    "exit": os.waitstatus_to_exitcode(status),
                    "cpu_seconds": cpu_seconds,
                    "max_rss_kb": max_rss_kb,
                    "oom_killed": measured is not None and measured.oom_kills > 0,
                    "over_cpu": running.over_cpu,
                }
            )

    def _forget_spare(self, pid: int) -> None:
        for spare in [s for s in self.spares if s.pid == pid]:
            self.spares.remove(spare)
            self._discard(spare)

    def _shutdown(self) -> None:
        ending = {pid: running.workdir for pid, running in self.children.items()}
        ending |= {spare.pid: spare.workdir for spare in self.spares}
        for spare in self.spares:
            spare.handoff.close()
        for pid in ending:
            _kill_group(pid)
        for pid, workdir in ending.items():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            if workdir is not None:
                _remove(workdir)
        for cgroup in self.cgroup_of.values():
            cgroup.remove()
        self.cgroup_of.clear()
        self.spares.clear()
        self.children.clear()
        if self.cgroups is not None:
            self.cgroups.close()


def _preload(modules: tuple[str, ...]) -> None:
    """Import what agents commonly import inside their function (an HTTP client, a model
    provider's SDK), where installed: once here rather than in every sandbox, which gets the
    modules as shared pages of memory. httpx alone takes a quarter of a second to import."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
        except Exception:  # a broken optional package is the agent's business, not ours
            continue
    with contextlib.suppress(Exception):
        warm_up(jail.proxy_environment())


def _remove(workdir: Path) -> None:
    """Remove a working directory; most are gone already (an agent that leaves its directory
    empty has it removed by its own process)."""
    try:
        os.rmdir(workdir)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(workdir, ignore_errors=True)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):  # already gone counts as success
        pass


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    control_fd = int(argv[1])
    linux.close_fds_except({control_fd})  # nothing of the server's reaches a sandbox
    control = socket.socket(fileno=control_fd)
    config = json.loads(protocol.recv_packet(control)[0])
    zygote = Zygote(control, config)
    zygote.enter_namespace()  # first: an unprivileged process maps itself only while dumpable
    linux.set_dumpable(False)  # no sandbox may read this process's memory or environment
    try:
        commands = [CommandAgent.from_message(c) for c in config.get("commands", [])]
        if not zygote.load([m for m in config["modules"] if m], commands):
            return 1
        zygote.serve()
    except (BrokenPipeError, ConnectionResetError):
        zygote._shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
