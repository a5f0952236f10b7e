"""The zygote: a long-lived process that has imported theazo and the agent modules, and forks
one sandbox per task. Forking a warm interpreter takes about a millisecond; starting a new
one takes fifty.

The server starts it with ``python -m theazo.sandbox.zygote CONTROL_FD WORKDIR_ROOT SPARES
MODULE…`` and an environment stripped of its secrets, so neither the zygote nor its forks can
read them. The zygote is single-threaded (forking a threaded process is unsafe) and serves one
control channel. It keeps ``SPARES`` sandboxes forked ahead and waiting, each to run exactly one
task, so that a task does not wait for a fork: on ``spawn`` it hands the task channel to a
spare, then forks a new spare when it is idle again. It reaps its children, cleans up after
them and reports each exit. When the server goes away (end of the control channel) it kills
every sandbox and exits.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theazo.agent import AgentSpec, load_agents
from theazo.sandbox import child, protocol


@dataclass(slots=True)
class _Running:
    task_id: str
    workdir: Path


@dataclass(slots=True)
class _Spare:
    pid: int
    handoff: socket.socket  # where it waits for its task
    workdir: Path  # made by the spare itself while it waits


class Zygote:
    def __init__(self, control: socket.socket, workdir_root: Path, spares: int) -> None:
        self.control = control
        self.workdir_root = workdir_root
        self.spare_target = spares
        self.agents: dict[str, AgentSpec] = {}
        self.children: dict[int, _Running] = {}
        self.spares: list[_Spare] = []
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()

    def send(self, message: dict[str, Any]) -> None:
        self.control.sendall(protocol.encode(message))

    def load(self, modules: list[str]) -> bool:
        try:
            self.agents = load_agents(modules)
        except BaseException as exc:
            summary = traceback.format_exception_only(exc)[-1].strip()
            self.send({"t": "failed", "error": summary, "traceback": traceback.format_exc()})
            return False
        if any(spec.is_async for spec in self.agents.values()):
            import asyncio  # noqa: F401 -- loaded once here rather than in every async sandbox
        catalogue = [spec.catalogue_entry() for spec in self.agents.values()]
        self.send({"t": "ready", "pid": os.getpid(), "agents": catalogue})
        gc.freeze()  # keep the imported objects out of every fork's garbage collections
        return True

    def serve(self) -> None:
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server to handle
        self.selector.register(self.control, selectors.EVENT_READ, "control")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "child")
        while True:
            # Below the target, look for work without waiting, and fork a spare if none came.
            short = len(self.spares) < self.spare_target
            events = self.selector.select(timeout=0 if short else None)
            for key, _ in events:
                if key.data == "child":
                    self._drain_wakeups()
                    self._reap()
                elif not self._on_control():
                    self._shutdown()
                    return
            if short and not events:
                self._fork_spare()

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
        if message.get("t") == "spawn" and len(fds) == 1:
            self._spawn(message, fds[0])
            return True
        for fd in fds:
            os.close(fd)
        if message.get("t") == "kill":
            self._kill(message["task_id"], int(message["signal"]))
        return True

    def _kill(self, task_id: str, signum: int) -> None:
        """Signal a task's process group: the server's way when it does not know the pid."""
        for pid, running in self.children.items():
            if running.task_id == task_id:
                try:
                    os.killpg(pid, signum)
                except (ProcessLookupError, PermissionError):
                    pass

    def _fork_spare(self) -> _Spare:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            self.selector.close()
            inherited = [self.control.fileno(), self.wake_r, self.wake_w]
            inherited += [spare.handoff.fileno() for spare in self.spares]
            child.run(theirs, self._workdir_of(os.getpid()), self.agents, close_fds=inherited)
        theirs.close()
        try:
            os.setpgid(pid, pid)  # the spare does it too; whoever runs first wins the race
        except OSError:
            pass
        spare = _Spare(pid, ours, self._workdir_of(pid))
        self.spares.append(spare)
        return spare

    def _workdir_of(self, pid: int) -> Path:
        return self.workdir_root / f"sandbox-{pid}"

    def _spawn(self, message: dict[str, Any], channel_fd: int) -> None:
        task_id = message["task_id"]
        try:
            spare = self._take_spare()
            protocol.send_with_fd(spare.handoff, message, channel_fd)
        except OSError as exc:
            self.send({"t": "spawn_failed", "task_id": task_id, "error": str(exc)})
            return
        finally:
            os.close(channel_fd)
        spare.handoff.close()
        self.children[spare.pid] = _Running(task_id, spare.workdir)
        self.send({"t": "spawned", "task_id": task_id, "pid": spare.pid})

    def _take_spare(self) -> _Spare:
        while self.spares:
            spare = self.spares.pop(0)
            if _alive(spare.pid):
                return spare
            spare.handoff.close()  # it died waiting (and _alive reaped it)
            _remove(spare.workdir)
        self._fork_spare()
        return self.spares.pop()

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
            running = self.children.pop(pid, None)
            if running is None:
                continue
            _remove(running.workdir)
            self.send(
                {
                    "t": "exited",
                    "task_id": running.task_id,
                    "pid": pid,
                    "exit": os.waitstatus_to_exitcode(status),
                    "cpu_seconds": usage.ru_utime + usage.ru_stime,
                    "max_rss_kb": usage.ru_maxrss,
                }
            )

    def _forget_spare(self, pid: int) -> None:
        for spare in [s for s in self.spares if s.pid == pid]:
            spare.handoff.close()
            _remove(spare.workdir)
            self.spares.remove(spare)

    def _shutdown(self) -> None:
        ending = {pid: running.workdir for pid, running in self.children.items()}
        ending |= {spare.pid: spare.workdir for spare in self.spares}
        for spare in self.spares:
            spare.handoff.close()
        for pid in ending:
            _kill_group(pid)
        for pid, workdir in ending.items():
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            _remove(workdir)
        self.spares.clear()
        self.children.clear()


def _alive(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return False


def _remove(workdir: Path) -> None:
    """Remove a working directory; most are gone already (an agent that leaves its directory
    empty has it removed by its own process)."""
    try:
        os.rmdir(workdir)
    except FileNotFoundError:
        pass
    except OSError:
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # already gone counts as success
        pass


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    workdir_root = Path(argv[2])
    spares = int(argv[3])
    modules = [m for m in argv[4:] if m]
    zygote = Zygote(control, workdir_root, spares)
    try:
        if not zygote.load(modules):
            return 1
        zygote.serve()
    except (BrokenPipeError, ConnectionResetError):
        zygote._shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
