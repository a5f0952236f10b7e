"""A cgroup per sandbox: memory (its tmpfs pages included), processes and CPU of all its
processes together, measured and limited by the kernel.

Two kinds of host give one:

* **cgroup v2, delegated**: the server runs in a cgroup it may write (systemd's
  ``Delegate=yes``), with the memory and pids controllers available there. The zygote moves
  the server's own processes into a leaf (``node``), enables the controllers for the
  cgroup's children, and makes one child per sandbox: ``memory.max``, ``memory.swap.max``,
  ``pids.max``, and ``cgroup.kill`` at the end.
* **cgroup v1, as root**: the memory, pids and cpuacct hierarchies, one directory per
  sandbox in each, under the server's own cgroup.

Elsewhere there is none, and the sandbox's limits are those of its namespaces and resource
limits (isolation.py says what they bound). The zygote makes the cgroup between cloning a
spare and letting it start, so nothing the sandbox runs is ever outside it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

_V2_REQUIRED = ("memory", "pids")
_V1_CONTROLLERS = ("memory", "pids", "cpuacct")


class Unavailable(Exception):
    """This host gives no cgroup to each sandbox; the message says why."""


@dataclass(frozen=True, slots=True)
class Usage:
    peak_memory_bytes: int
    cpu_seconds: float
    oom_kills: int


@dataclass(frozen=True, slots=True)
class SandboxCgroup:
    """One sandbox's cgroup: a directory per hierarchy (one on v2), named ``name`` beneath
    each of the zygote's roots (directory descriptors: the zygote stands in the sandboxes'
    template, where /sys is not)."""

    version: str
    roots: tuple[int, ...]
    name: str

    def add(self, pid: int) -> None:
        for root in self.roots:
            _write(root, f"{self.name}/cgroup.procs", str(pid))

    def usage(self) -> Usage:
        if self.version == "v2":
            (root,) = self.roots
            events = _keyed(root, f"{self.name}/memory.events")
            cpu = _keyed(root, f"{self.name}/cpu.stat").get("usage_usec", 0) / 1e6
            peak = _int(root, f"{self.name}/memory.peak")
            return Usage(peak, cpu, events.get("oom_kill", 0))
        memory, _, cpuacct = self.roots
        return Usage(
            _int(memory, f"{self.name}/memory.max_usage_in_bytes"),
            _int(cpuacct, f"{self.name}/cpuacct.usage") / 1e9,
            _keyed(memory, f"{self.name}/memory.oom_control").get("oom_kill", 0),
        )

    def kill(self) -> None:
        if self.version == "v2":
            with contextlib.suppress(OSError):
                _write(self.roots[0], f"{self.name}/cgroup.kill", "1")

    def remove(self) -> None:
        for root in self.roots:
            with contextlib.suppress(OSError):
                os.rmdir(self.name, dir_fd=root)


class Cgroups:
    """Where this zygote makes its sandboxes' cgroups."""

    def __init__(self, version: str, roots: tuple[Path, ...]) -> None:
        self.version = version
        self.paths = roots
        self.roots = tuple(os.open(r, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for r in roots)

    @classmethod
    def detect(cls, server_pid: int) -> Cgroups:
        """The cgroups this host gives, set up for use; raises ``Unavailable`` saying why
        not."""
        memberships = _memberships()
        if "" in memberships:
            try:
                return cls._delegated_v2(memberships[""], server_pid)
            except (Unavailable, OSError) as exc:
                v2_error = str(exc)
        else:
            v2_error = "no cgroup v2 hierarchy"
        if os.geteuid() == 0:
            try:
                return cls._v1(memberships)
            except (Unavailable, OSError) as exc:
                raise Unavailable(f"{v2_error}; cgroup v1: {exc}") from exc
        raise Unavailable(v2_error)

    @classmethod
    def _delegated_v2(cls, relative: str, server_pid: int) -> Cgroups:
        mount = _mount_point("cgroup2")
        if mount is None:
            raise Unavailable("no cgroup v2 hierarchy is mounted")
        here = mount / relative.lstrip("/")
        available = (here / "cgroup.controllers").read_text().split()
        missing = [c for c in _V2_REQUIRED if c not in available]
        if missing:
            raise Unavailable(f"the cgroup {relative} lacks the {', '.join(missing)} controller(s)")
        if not os.access(here / "cgroup.subtree_control", os.W_OK):
            raise Unavailable(f"the cgroup {relative} is not delegated to this user")
        ours = {server_pid, os.getpid()}
        others = {int(p) for p in (here / "cgroup.procs").read_text().split()} - ours
        enabled = (here / "cgroup.subtree_control").read_text().split()
        if not all(c in enabled for c in _V2_REQUIRED):
            if others:
                raise Unavailable(f"the cgroup {relative} holds processes other than the server's")
            # Processes may not live in a cgroup whose children have controllers: the server's
            # move to a leaf of their own first.
            leaf = here / "node"
            leaf.mkdir(exist_ok=True)
            for pid in sorted(ours):
                (leaf / "cgroup.procs").write_text(str(pid))
            wanted = [c for c in (*_V2_REQUIRED, "cpu") if c in available]
            (here / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        return cls("v2", (here,))

    @classmethod
    def _v1(cls, memberships: dict[str, str]) -> Cgroups:
        roots = []
        for controller in _V1_CONTROLLERS:
            relative = next(
                (p for names, p in memberships.items() if controller in names.split(",")), None
            )
            mount = _mount_point("cgroup", controller)
            if relative is None or mount is None:
                raise Unavailable(f"no {controller} hierarchy")
            root = mount / relative.lstrip("/") / f"theazo-{os.getpid()}"
            root.mkdir(exist_ok=True)
            roots.append(root)
        return cls("v1", tuple(roots))

    def create(self, name: str, memory_bytes: int, max_processes: int) -> SandboxCgroup:
        """A new cgroup for one sandbox, with its limits (``memory_bytes`` 0: no limit)."""
        for root in self.roots:
            os.mkdir(name, dir_fd=root)
        cgroup = SandboxCgroup(self.version, self.roots, name)
        try:
            if self.version == "v2":
                (root,) = self.roots
                if memory_bytes:
                    _write(root, f"{name}/memory.max", str(memory_bytes))
                    with contextlib.suppress(OSError):  # no swap accounting on this host
                        _write(root, f"{name}/memory.swap.max", "0")
                _write(root, f"{name}/pids.max", str(max_processes))
            else:
                memory, pids, _ = self.roots
                if memory_bytes:
                    _write(memory, f"{name}/memory.limit_in_bytes", str(memory_bytes))
                    with contextlib.suppress(OSError):
                        _write(memory, f"{name}/memory.memsw.limit_in_bytes", str(memory_bytes))
                _write(pids, f"{name}/pids.max", str(max_processes))
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def close(self) -> None:
        """Remove what this zygote made (its sandboxes' cgroups are gone by now)."""
        if self.version == "v1":
            for path in self.paths:
                with contextlib.suppress(OSError):
                    path.rmdir()
        for root in self.roots:
            os.close(root)


def _memberships() -> dict[str, str]:
    """This process's cgroups: controllers (comma-separated; "" for v2) → path."""
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        found[controllers] = path
    return found


def _mount_point(fstype: str, controller: str | None = None) -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if tail[0] != fstype:
            continue
        if controller is None or controller in tail[2].split(","):
            return Path(fields[4])
    return None


def _write(directory: int, path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC, dir_fd=directory)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read(directory: int, path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _keyed(directory: int, path: str) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in _read(directory, path).splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    return values


def _int(directory: int, path: str) -> int:
    try:
        return int(_read(directory, path).strip())
    except (OSError, ValueError):
        return 0
