"""The walls of a sandbox, built in two steps: once by the zygote, then by each spare.

**The zygote** (``enter_zygote_namespace``, ``build_template``) moves into a user and mount
namespace of its own when it starts, before it imports any agent: there it may mount without
being root on the host. After the imports it assembles the sandboxes' root once, as a
*template* in its private mount namespace: a small tmpfs holding read-only bind mounts of the
view (see view.py), a few devices, and files of /etc written for sandboxes. The host never
sees it.

**Each spare** is cloned by the zygote into new user, PID, mount, network, IPC, UTS and cgroup
namespaces (``linux.clone``); the zygote writes its uid and gid maps from outside (``map_ids``):
inside, the spare is root of namespaces that own nothing of the host's, mapped to the server's
user, or to an unprivileged one when the server is root. The spare then (``enter``):

1. takes that identity, with no supplementary groups;
2. binds the template over itself (the binds inside stay read-only for good: the kernel locks
   them in a namespace of less privilege), adds its private scratch tmpfs as ``/workspace``,
   ``/tmp`` and ``/dev/shm`` (one size limit for all three), and a ``/proc`` of its own PID
   namespace; then ``pivot_root`` into it and the host's tree is detached;
3. sets ``lo`` up; for ``egress``, listens on its own loopback for the server's proxy (the
   sandbox has no route anywhere else);
4. locks itself in: process and file limits, no capabilities, ``no_new_privs``, Landlock, and
   the seccomp filter last.

Because it is process 1 of its PID namespace, everything it starts dies with it.
"""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from theazo.sandbox import landlock, linux
from theazo.sandbox.view import DEVICES, SYNTHESIZED_FILES, WORKSPACE, Mount, View

CLONE_FLAGS = (
    linux.CLONE_NEWUSER
    | linux.CLONE_NEWPID
    | linux.CLONE_NEWNS
    | linux.CLONE_NEWIPC
    | linux.CLONE_NEWUTS
    | linux.CLONE_NEWCGROUP
)
OLD_ROOT = "/.oldroot"
SCRATCH = "/.scratch"
PROXY_HOST = "127.0.0.1"
PROXY_PORT = 3128  # on the sandbox's own loopback: no other process shares it
WRITABLE = (WORKSPACE, "/tmp", "/dev/shm")
_MOUNT_POINTS = ("/proc", "/tmp", WORKSPACE, "/dev/shm", OLD_ROOT, SCRATCH)
_SEALED = linux.MS_NOSUID | linux.MS_NODEV
_DEVICE_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
_SCRATCH_PARTS = (("work", WORKSPACE, 0o700), ("tmp", "/tmp", 0o1777), ("shm", "/dev/shm", 0o1777))


@dataclass(slots=True)
class Plan:
    """Everything a spare needs to build its walls, prepared once by the zygote."""

    template: str  # the assembled root, in the zygote's mount namespace
    extra_mounts: tuple[Mount, ...]  # --sandbox-mount: made by each sandbox, over its scratch
    network: str  # none | egress | host
    forwarded_ports: tuple[int, ...]  # listened on besides the proxy's, for the host's loopback
    disk_limit_mb: int
    max_processes: int
    max_open_files: int
    parent_uid: int  # the zygote-namespace uid a sandbox's root is mapped to
    drop_groups: bool  # the server is root: its supplementary groups must not reach a sandbox
    landlock_abi: int  # 0: no Landlock
    seccomp_program: bytes | None

    @property
    def clone_flags(self) -> int:
        return CLONE_FLAGS | (linux.CLONE_NEWNET if self.network != "host" else 0)


# --- the zygote's part ----------------------------------------------------------------------
def enter_zygote_namespace(sandbox_uid: int) -> int:
    """Move this process into a user and mount namespace of its own, in which it is root.

    Returns the uid, in that namespace, that sandboxes' root will be mapped to. An
    unprivileged zygote maps only itself (``0`` → its own uid); sandboxes are then that user
    too. A root zygote maps itself and ``sandbox_uid``, which sandboxes become: the kernel lets
    only a privileged process write a map of more than its own uid, so a child still outside
    the namespace writes it.
    """
    uid, gid = os.geteuid(), os.getegid()
    if uid != 0:
        linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
        parent_uid = 0
    else:
        read_end, write_end = os.pipe()
        helper = os.fork()
        if helper == 0:  # stays in the host's namespace, as root
            os.close(write_end)
            code = 1
            try:
                if os.read(read_end, 1):
                    zygote = os.getppid()
                    _write(f"/proc/{zygote}/uid_map", f"0 0 1\n{sandbox_uid} {sandbox_uid} 1")
                    _write(f"/proc/{zygote}/gid_map", f"0 0 1\n{sandbox_uid} {sandbox_uid} 1")
                    code = 0
            finally:
                os._exit(code)
        os.close(read_end)
        try:
            linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS)
            os.write(write_end, b"x")
        finally:
            os.close(write_end)
            _, status = os.waitpid(helper, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise OSError("could not map the zygote's user namespace")
        parent_uid = sandbox_uid
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)  # nothing leaks to the host
    return parent_uid


def build_template(template: str, shown: View, extra: tuple[Mount, ...]) -> None:
    """Assemble the sandboxes' root at ``template`` (an empty directory), with mount points
    for the ``extra`` mounts each sandbox makes, then make its own filesystem read-only.
    Raises ``OSError`` naming what could not be shown."""
    os.makedirs(template, exist_ok=True)
    linux.mount("tmpfs", template, "tmpfs", _SEALED, "mode=0755,size=4m")
    for path, target in shown.symlinks:
        _make_parents(template + path)
        os.symlink(target, template + path)
    for mount in shown.mounts:
        _bind(mount.source, template + mount.target, writable=mount.writable)
    for device in DEVICES:
        _bind(device, template + device, writable=True)
    for name, target in _DEVICE_LINKS.items():
        os.symlink(target, f"{template}/dev/{name}")
    for path, text in SYNTHESIZED_FILES.items():
        _make_parents(template + path)
        with open(template + path, "w") as file:
            file.write(text)
    for path in _MOUNT_POINTS:
        os.makedirs(template + path, exist_ok=True)
    for mount in extra:
        if not any(_beneath(mount.target, path) for path in WRITABLE):  # else: in the scratch
            _make_mount_point(mount.source, template + mount.target)
    linux.mount(None, template, None, linux.MS_REMOUNT | linux.MS_RDONLY | _SEALED)


def _bind(source: str, target: str, *, writable: bool) -> None:
    if not os.path.exists(source):  # gone since the view was computed
        return
    _make_mount_point(source, target)
    linux.mount(source, target, None, linux.MS_BIND)
    flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_NOSUID | linux.mount_flags_at(target)
    linux.mount(None, target, None, flags if writable else flags | linux.MS_RDONLY)


def map_ids(pid: int, parent_uid: int) -> None:
    """Map root of a freshly cloned child's user namespace to ``parent_uid`` of ours (written
    by us, its parent: a process cannot map itself to a user other than its own)."""
    _write(f"/proc/{pid}/uid_map", f"0 {parent_uid} 1")
    _write(f"/proc/{pid}/gid_map", f"0 {parent_uid} 1")


# --- the spare's part -----------------------------------------------------------------------
def enter(plan: Plan) -> list[socket.socket]:
    """Build the sandbox around this process; returns its egress listeners: the proxy's, then
    one per forwarded port (none without egress)."""
    sources = _take_root(plan)
    _become_mapped_root(plan)
    _finish_root(plan, sources)
    listeners = _network(plan)
    _limit(plan)
    _lock(plan)
    return listeners


def _become_mapped_root(plan: Plan) -> None:
    if plan.drop_groups:
        os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    linux.set_dumpable(False)  # cloned dumpable only so that the zygote could map its ids
    socket.sethostname("sandbox")


def _take_root(plan: Plan) -> list[tuple[int, Mount]]:
    """Bind the template over itself and stand in it. A bind made in this namespace is its
    own, which pivot_root accepts; the binds inside come along, locked read-only. Done while
    this process is still the server's user, and every later path is relative to here: the
    sandbox's own user may not be allowed to walk the host's path to the template (a root
    server's is under /tmp/pytest-of-root, say, which is 0700). For the same reason the
    sources of --sandbox-mount are opened now, to be bound once the scratch is in place."""
    sources = []
    for mount in plan.extra_mounts:
        fd = os.open(mount.source, os.O_PATH | os.O_CLOEXEC)
        sources.append((fd, mount))
    os.chdir(plan.template)
    linux.mount(".", ".", None, linux.MS_BIND | linux.MS_REC)
    os.chdir("..")  # and back in: the working directory was the mount underneath
    os.chdir(os.path.basename(plan.template))
    return sources


def _finish_root(plan: Plan, sources: list[tuple[int, Mount]]) -> None:
    scratch = "." + SCRATCH
    options = f"mode=0755,size={plan.disk_limit_mb}m"
    linux.mount("tmpfs", scratch, "tmpfs", _SEALED, options)
    for name, path, mode in _SCRATCH_PARTS:
        os.mkdir(f"{scratch}/{name}")
        os.chmod(f"{scratch}/{name}", mode)
        linux.mount(f"{scratch}/{name}", "." + path, None, linux.MS_BIND)
    linux.umount(scratch, linux.MNT_DETACH)
    for fd, mount in sources:
        _bind_extra(fd, mount)
    linux.mount("proc", "./proc", "proc", _SEALED | linux.MS_NOEXEC)
    linux.pivot_root(".", "." + OLD_ROOT)
    os.chdir("/")
    linux.umount(OLD_ROOT, linux.MNT_DETACH)
    os.chdir(WORKSPACE)


def _bind_extra(fd: int, mount: Mount) -> None:
    """Show a host path the deployment chose: over the scratch if it lies there, since the
    sandbox's own mount points may be made only in its scratch or a place it owns."""
    target = "." + mount.target
    if not os.path.lexists(target):
        _make_mount_point(f"/proc/self/fd/{fd}", target)
    linux.mount(f"/proc/self/fd/{fd}", target, None, linux.MS_BIND)
    flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_NOSUID | linux.mount_flags_at(target)
    linux.mount(None, target, None, flags if mount.writable else flags | linux.MS_RDONLY)
    os.close(fd)


def _network(plan: Plan) -> list[socket.socket]:
    if plan.network == "host":
        return []
    linux.bring_up_loopback()
    if plan.network != "egress":
        return []
    return [_listen(port) for port in (PROXY_PORT, *plan.forwarded_ports)]


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((PROXY_HOST, port))
    listener.listen(64)
    return listener


def _limit(plan: Plan) -> None:
    # Counted per user per user namespace: this sandbox's processes, and no one else's.
    resource.setrlimit(resource.RLIMIT_NPROC, (plan.max_processes, plan.max_processes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (plan.max_open_files, plan.max_open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _lock(plan: Plan) -> None:
    linux.drop_capabilities()
    linux.set_no_new_privs()
    if plan.landlock_abi:
        landlock.restrict(plan.landlock_abi, WRITABLE, DEVICES)
    if plan.seccomp_program is not None:
        linux.load_seccomp_filter(plan.seccomp_program)


def proxy_environment() -> Mapping[str, str]:
    """The variables that send an agent's HTTP clients through the egress proxy."""
    proxy = f"http://{PROXY_HOST}:{PROXY_PORT}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
    local = "localhost,127.0.0.1,::1"
    return {name: proxy for name in names} | {"NO_PROXY": local, "no_proxy": local}


def _make_mount_point(source: str, target: str) -> None:
    """An empty directory or file at ``target`` to mount ``source`` on."""
    _make_parents(target)
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.lexists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


def _beneath(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")


def _make_parents(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
