"""The walls of a sandbox, built in two steps: once by the zygote, then by each spare.

**The zygote** (``enter_zygote_namespace``, ``build_template``, ``enter_template``) moves into
a user and mount namespace of its own when it starts, before it imports any agent: there it
may mount without being root on the host. After the imports it assembles the sandboxes' root
once, as a *template*: a small tmpfs holding read-only bind mounts of the view (see view.py),
copies of a few files of /etc, devices, and the host's /proc at ``/.hostproc`` (a new /proc
can only be mounted where one is already visible). Once a first sandbox has been built from
it, the zygote pivots into the template itself: its mount namespace then holds nothing else,
and the host never sees any of it.

**Each spare** is cloned by the zygote into a new user and PID namespace (``linux.clone``:
it is process 1 of its own). The zygote writes its uid and gid maps from outside
(``map_ids``): inside, the spare is root of namespaces that own nothing of the host's, mapped
to the server's user, or to an unprivileged one when the server is root; and puts it in its
cgroup. The spare then (``enter``):

1. makes its own mount, network, IPC, UTS and cgroup namespaces; its mount namespace starts as
   a copy of the template, every bind of which the kernel locks read-only (a mount made in a
   namespace of more privilege cannot be unmounted or remounted from one of less); and takes
   its identity, with no supplementary groups;
2. mounts its private scratch tmpfs and binds it as ``/workspace``, ``/tmp`` and ``/dev/shm``
   (one size limit for all three), mounts a ``/proc`` of its own PID namespace, and covers
   ``/.hostproc``;
3. sets ``lo`` up; for ``egress``, listens on its own loopback for the server's proxy (the
   sandbox has no route anywhere else);
4. locks itself in: process and file limits, no capabilities, ``no_new_privs``, Landlock, and
   the seccomp filter last.

Because it is process 1 of its PID namespace, everything it starts dies with it.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from theazo.sandbox import landlock, linux
from theazo.sandbox.view import DEVICES, SYNTHESIZED_FILES, WORKSPACE, Mount, View

# Only what must be made by the clone itself (a first process of a PID namespace, and the user
# namespace that owns it) is: the zygote clones one spare after another, and each namespace
# made there is time no other spare gets made. The spare makes the rest itself, in parallel.
CLONE_FLAGS = linux.CLONE_NEWUSER | linux.CLONE_NEWPID
_UNSHARED = linux.CLONE_NEWNS | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS | linux.CLONE_NEWCGROUP
OLD_ROOT = "/.oldroot"
SCRATCH = "/.scratch"
HOST_PROC = "/.hostproc"
PROXY_HOST = "127.0.0.1"
PROXY_PORT = 3128  # on the sandbox's own loopback: no other process shares it
_CERTIFICATES = "/etc/ssl/certs"
_HASHED = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")  # what c_rehash names a certificate
WRITABLE = (WORKSPACE, "/tmp", "/dev/shm")
_MOUNT_POINTS = ("/proc", "/tmp", WORKSPACE, "/dev/shm", OLD_ROOT, SCRATCH, HOST_PROC)
_SEALED = linux.MS_NOSUID | linux.MS_NODEV
_TEMPLATE_MB = 16  # mount points, and the copied files of /etc (TLS roots: about 1 MB)
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
    writable_mounts: tuple[str, ...]  # --sandbox-mount …:rw targets, which Landlock lets it write
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
    def unshare_flags(self) -> int:
        return _UNSHARED | (linux.CLONE_NEWNET if self.network != "host" else 0)


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
    linux.mount("tmpfs", template, "tmpfs", _SEALED, f"mode=0755,size={_TEMPLATE_MB}m")
    for path in shown.copies:
        _copy_public(path, template + path)
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
        _bind(mount.source, template + mount.target, writable=mount.writable)
    # Recursive: the kernel lets only a whole /proc be the one that a new one may be
    # mounted beside. Every sandbox covers it before it runs anything.
    linux.mount("/proc", template + HOST_PROC, None, linux.MS_BIND | linux.MS_REC)
    linux.mount(None, template, None, linux.MS_REMOUNT | linux.MS_RDONLY | _SEALED)


def enter_template(template: str) -> None:
    """Make the template this process's root, and let go of the host's tree."""
    linux.pivot_root(template, template + OLD_ROOT)
    os.chdir("/")
    linux.umount(OLD_ROOT, linux.MNT_DETACH)


def _copy_public(source: str, target: str) -> None:
    """Copy a file or a tree, but only what any user of the host may read: /etc/ssl/private,
    say, stays out, whoever the server runs as."""
    _make_parents(target)
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    mode = os.stat(source).st_mode
    if os.path.isdir(source):
        if mode & 0o005 != 0o005:
            return
        os.mkdir(target, 0o755)
        for name in sorted(os.listdir(source)):
            _copy_public(os.path.join(source, name), os.path.join(target, name))
    elif stat.S_ISREG(mode) and mode & 0o004:
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)


def _bind(source: str, target: str, *, writable: bool) -> None:
    if not os.path.exists(source):  # gone since the view was computed
        return
    _make_mount_point(source, target)
    linux.mount(source, target, None, linux.MS_BIND)
    flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_NOSUID | linux.mount_flags_at(target)
    linux.mount(None, target, None, flags if writable else flags | linux.MS_RDONLY)


def map_ids(pid: int, parent_uid: int, proc: int) -> None:
    """Map root of a freshly cloned child's user namespace to ``parent_uid`` of ours (written
    by us, its parent: a process cannot map itself to a user other than its own). ``proc``
    is a descriptor of the host's /proc."""
    _write(f"{pid}/uid_map", f"0 {parent_uid} 1", proc)
    _write(f"{pid}/gid_map", f"0 {parent_uid} 1", proc)


# --- the spare's part -----------------------------------------------------------------------
def enter(plan: Plan) -> list[socket.socket]:
    """Build the sandbox around this process; returns its egress listeners: the proxy's, then
    one per forwarded port (none without egress)."""
    _become_mapped_root(plan)
    _make_scratch(plan)
    listeners = _network(plan)
    _limit(plan)
    _lock(plan)
    return listeners


def _become_mapped_root(plan: Plan) -> None:
    # Made while this process's cgroup is already its own: its cgroup namespace starts there.
    linux.unshare(plan.unshare_flags)
    if plan.drop_groups:
        os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    linux.set_dumpable(False)  # cloned dumpable only so that the zygote could map its ids
    socket.sethostname("sandbox")


def _make_scratch(plan: Plan) -> None:
    options = f"mode=0755,size={plan.disk_limit_mb}m"
    linux.mount("tmpfs", SCRATCH, "tmpfs", _SEALED, options)
    for name, path, mode in _SCRATCH_PARTS:
        os.mkdir(f"{SCRATCH}/{name}")
        os.chmod(f"{SCRATCH}/{name}", mode)
        linux.mount(f"{SCRATCH}/{name}", path, None, linux.MS_BIND)
    # The scratch stays mounted at /.scratch too (the same three directories): unmounting
    # it would cost every sandbox a wait for the kernel's RCU grace period.
    linux.mount("proc", "/proc", "proc", _SEALED | linux.MS_NOEXEC)
    # Covered, not unmounted (it is locked): with no capability left, nothing can uncover it.
    linux.mount(
        "tmpfs", HOST_PROC, "tmpfs", _SEALED | linux.MS_RDONLY | linux.MS_NOEXEC, "size=4k,mode=000"
    )
    os.chdir(WORKSPACE)


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
        landlock.restrict(plan.landlock_abi, (*WRITABLE, *plan.writable_mounts), DEVICES)
    if plan.seccomp_program is not None:
        linux.load_seccomp_filter(plan.seccomp_program)


def sandbox_environment(
    network: str, gateway: Mapping[str, str], current: Mapping[str, str]
) -> dict[str, str]:
    """What a walled-in sandbox's environment gains over ``current`` (the deployment's): where
    TLS clients find certificates, unless the deployment said; with egress, the proxy and then
    the ``gateway``'s variables (the model gateway's), which win over the deployment's."""
    added = {k: v for k, v in tls_environment().items() if k not in current}
    if network == "egress":
        added |= proxy_environment()
        added |= gateway
    return added


def proxy_environment() -> Mapping[str, str]:
    """The variables that send an agent's HTTP clients through the egress proxy. Not
    ALL_PROXY: httpx builds one more transport, and a TLS context, for each proxy variable."""
    proxy = f"http://{PROXY_HOST}:{PROXY_PORT}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    local = "localhost,127.0.0.1,::1"
    return {name: proxy for name in names} | {"NO_PROXY": local, "no_proxy": local}


def tls_environment() -> Mapping[str, str]:
    """Where TLS clients find the trusted certificates: the system's hashed directory when
    there is one, which OpenSSL reads a certificate at a time when it needs one. httpx (and
    so the openai and anthropic clients) and requests otherwise parse certifi's whole bundle
    for every client they make: 17 ms, and httpx makes a context per proxy variable."""
    if not _has_hashed_certificates(_CERTIFICATES):
        return {}
    return {"SSL_CERT_DIR": _CERTIFICATES, "REQUESTS_CA_BUNDLE": _CERTIFICATES}


def _has_hashed_certificates(directory: str) -> bool:
    try:
        return any(_HASHED.match(name) for name in os.listdir(directory))
    except OSError:
        return False


def _make_mount_point(source: str, target: str) -> None:
    """An empty directory or file at ``target`` to mount ``source`` on."""
    _make_parents(target)
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.lexists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


def _make_parents(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)


def _write(path: str, text: str, directory: int | None = None) -> None:
    fd = os.open(path, os.O_WRONLY, dir_fd=directory)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
