"""The zygote: a long-lived process that has imported theazo and the agent modules, and forks
one sandbox per task. Forking a warm interpreter takes about a millisecond; starting a new
one takes fifty.

The server starts it with ``python -m theazo.sandbox.zygote CONTROL_FD WORKDIR_ROOT MODULE…``
and an environment stripped of its secrets, so neither the zygote nor its forks can read them.
The zygote is single-threaded (forking a threaded process is unsafe) and serves one control
channel: it forks on ``spawn``, and reaps its children, cleans up after them and reports each
exit. When the server goes away (end of the control channel) it kills every sandbox and exits.
"""

from __future__ import annotations

import array
import gc
import json
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
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


class Zygote:
    def __init__(self, control: socket.socket, workdir_root: Path) -> None:
        self.control = control
        self.workdir_root = workdir_root
        self.agents: dict[str, AgentSpec] = {}
        self.children: dict[int, _Running] = {}
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
            for key, _ in self.selector.select():
                if key.data == "child":
                    self._drain_wakeups()
                    self._reap()
                elif not self._on_control():
                    self._shutdown()
                    return

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _on_control(self) -> bool:
        fds = array.array("i")
        data, ancdata, _, _ = self.control.recvmsg(
            protocol.CONTROL_PACKET_BYTES, socket.CMSG_SPACE(fds.itemsize)
        )
        if not data:
            return False
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
        message = json.loads(data)
        if message.get("t") == "spawn" and len(fds) == 1:
            self._spawn(message, fds[0])
        else:
            for fd in fds:
                os.close(fd)
        return True

    def _spawn(self, message: dict[str, Any], channel_fd: int) -> None:
        task_id = message["task_id"]
        try:
            workdir = Path(tempfile.mkdtemp(prefix=f"{task_id}-", dir=self.workdir_root))
            pid = os.fork()
        except OSError as exc:
            os.close(channel_fd)
            self.send({"t": "spawn_failed", "task_id": task_id, "error": str(exc)})
            return
        if pid == 0:
            self.selector.close()
            child.run(
                channel_fd,
                message,
                workdir,
                self.agents,
                close_fds=[self.control.fileno(), self.wake_r, self.wake_w],
            )
        try:
            os.setpgid(pid, pid)
        except OSError:  # the child got there first, or is already gone
            pass
        os.close(channel_fd)
        self.children[pid] = _Running(task_id, workdir)
        self.send({"t": "spawned", "task_id": task_id, "pid": pid})

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
            running = self.children.pop(pid, None)
            if running is None:
                continue
            shutil.rmtree(running.workdir, ignore_errors=True)
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

    def _shutdown(self) -> None:
        for pid in list(self.children):
            _kill_group(pid)
        for pid, running in list(self.children.items()):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            shutil.rmtree(running.workdir, ignore_errors=True)
        self.children.clear()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # already gone counts as success
        pass


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    workdir_root = Path(argv[2])
    modules = [m for m in argv[3:] if m]
    zygote = Zygote(control, workdir_root)
    try:
        if not zygote.load(modules):
            return 1
        zygote.serve()
    except (BrokenPipeError, ConnectionResetError):
        zygote._shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
