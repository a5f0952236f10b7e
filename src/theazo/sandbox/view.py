"""What a sandbox sees of the host's files: the read-only view an agent needs to run, and
nothing else.

The zygote computes the view once, after importing the agents, from what the interpreter
really uses: the system's libraries and tools, the Python installation (its prefixes and every
installed path on ``sys.path``), a few files of ``/etc``, and the agent modules themselves.
The directories a user puts on the import path (the server's working directory, PYTHONPATH)
are never shown whole: only the packages and modules loaded from them, since such a directory
often also holds the database, configuration and logs. A deployment widens the view on
purpose with ``--sandbox-mount``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs read from /etc: TLS roots, the dynamic linker, names, time zones, types.
# Not /etc as a whole: it holds other services' configuration, and often their secrets.
ETC_PATHS = (
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/crypto-policies",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/mime.types",
    "/etc/magic",
    "/etc/magic.mime",
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/fonts",
    "/etc/locale.alias",
)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_PRIVATE = ("/workspace", "/tmp", "/dev/shm", "/proc", "/.scratch", "/.hostproc")


@dataclass(frozen=True, slots=True)
class Mount:
    """A host path shown inside every sandbox."""

    source: str
    target: str
    writable: bool = False

    @classmethod
    def parse(cls, spec: str) -> Mount:
        """``HOST_PATH[:SANDBOX_PATH][:ro|rw]``, as ``--sandbox-mount`` takes it."""
        parts = spec.split(":")
        mode = "ro"
        if len(parts) > 1 and parts[-1] in ("ro", "rw"):
            mode = parts.pop()
        if len(parts) > 2 or not parts[0]:
            raise ValueError(f"{spec!r} is not HOST_PATH[:SANDBOX_PATH][:ro|rw]")
        source = parts[0]
        target = parts[1] if len(parts) == 2 and parts[1] else source
        for path in (source, target):
            if not os.path.isabs(path):
                raise ValueError(f"{path!r} in {spec!r} is not an absolute path")
        target = _normal(target)
        if target in ("/", "/proc", "/dev", "/etc", "/usr") or any(
            target == s or target.startswith(s + "/") for s in _PRIVATE
        ):
            raise ValueError(
                f"{target!r} is not a place for a mount inside a sandbox: choose a path outside "
                "/workspace, /tmp, /dev/shm and /proc (such as /data)"
            )
        return cls(_normal(source), _normal(target), writable=mode == "rw")

    def as_message(self) -> list[object]:
        return [self.source, self.target, self.writable]

    @classmethod
    def from_message(cls, data: list[object]) -> Mount:
        return cls(str(data[0]), str(data[1]), bool(data[2]))


@dataclass(frozen=True, slots=True)
class View:
    mounts: tuple[Mount, ...]  # in mounting order: a parent before what lies inside it
    symlinks: tuple[tuple[str, str], ...]  # (path, what it points to), as on the host
    # Small files and directories copied rather than bound: each mount is work for every
    # sandbox, at its start and at its end, and /etc's are a few kilobytes.
    copies: tuple[str, ...] = ()


def compute(user_paths: Iterable[str], hidden: Iterable[str] = ()) -> View:
    """The view for the agents loaded so far. ``user_paths`` are the import-path entries a
    user chose (the working directory, PYTHONPATH): only what was imported from them is
    shown. ``hidden`` paths (the database) are never shown, whatever mount would hold them."""
    user = {_normal(p) for p in user_paths if p}
    hidden_paths = [_normal(p) for p in hidden]
    symlinks: list[tuple[str, str]] = []
    sources: list[Mount] = []
    copies: list[str] = []
    for path in (*SYSTEM_PATHS, *ETC_PATHS):
        if os.path.islink(path):
            symlinks.append((path, os.readlink(path)))
        elif os.path.exists(path) and path in ETC_PATHS:
            copies.append(path)
        elif os.path.exists(path):
            sources.append(Mount(path, path))
    for path in _python_paths(user):
        sources.append(Mount(path, path))
    for path in _imported_from(user):
        sources.append(Mount(path, path))
    mounts = _without_nested(m for m in sources if not _holds_any(m.source, hidden_paths))
    return View(tuple(mounts), tuple(symlinks), tuple(copies))


def _python_paths(user_paths: set[str]) -> list[str]:
    """The interpreter's installation: its prefixes, the directory of the executable (and of
    what it links to), and every import-path entry that no user chose."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix}
    executable = Path(sys.executable)
    paths.add(str(executable.parent))
    paths.add(str(executable.resolve().parent))
    for entry in sys.path:
        if entry and _normal(entry) not in user_paths and os.path.isdir(entry):
            paths.add(entry)
    return sorted(_normal(p) for p in paths if os.path.exists(p))


def _imported_from(user_paths: set[str]) -> list[str]:
    """The top-level packages and modules loaded so far (the agents and what they import)
    that lie in a user's import-path entry."""
    found: set[str] = set()
    for module in list(sys.modules.values()):
        for location in _locations(module):
            for root in user_paths:
                if location.startswith(root + os.sep):
                    top = location[len(root) + 1 :].split(os.sep, 1)[0]
                    found.add(os.path.join(root, top))
    return sorted(found)


def _locations(module: ModuleType) -> list[str]:
    locations = [getattr(module, "__file__", None)]
    locations += list(getattr(module, "__path__", None) or [])
    return [_normal(str(loc)) for loc in locations if loc]


def _without_nested(mounts: Iterable[Mount]) -> list[Mount]:
    """Drop mounts that an earlier, wider one already shows, keep parents first."""
    ordered = sorted(set(mounts), key=lambda m: (m.target.count("/"), m.target))
    kept: list[Mount] = []
    for mount in ordered:
        if not any(_inside(mount.target, k.target) and not k.writable for k in kept):
            kept.append(mount)
    return kept


def _holds_any(path: str, hidden: list[str]) -> bool:
    return any(h == path or _inside(h, path) for h in hidden)


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _normal(path: str) -> str:
    return os.path.normpath(os.path.abspath(path))


WORKSPACE = "/workspace"  # the sandbox's private working directory, as the agent sees it

# Files of /etc written for every sandbox rather than shown from the host.
SYNTHESIZED_FILES: Mapping[str, str] = {
    "/etc/passwd": f"root:x:0:0:root:{WORKSPACE}:/bin/sh\n",
    "/etc/group": "root:x:0:\n",
    "/etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    "/etc/hostname": "sandbox\n",
}
