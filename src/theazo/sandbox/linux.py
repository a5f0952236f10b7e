"""The Linux system calls a sandbox is built with, through ctypes: clone into namespaces,
mounts, pivot_root, capabilities, no_new_privs, Landlock.

Only what the standard library lacks is here; each call raises ``OSError`` with the kernel's
errno, like the ``os`` module's own. Imported by the zygote, so it stays small and imports no
asyncio.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
import struct
from typing import Any

# <linux/sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
)

# <linux/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# Syscalls glibc has no wrapper for. The generic numbers (asm-generic/unistd.h) are shared
# by aarch64 and most newer architectures.
_SYSCALLS = {
    "x86_64": {"clone": 56, "pivot_root": 155, "capset": 126, "close_range": 436},
    "aarch64": {"clone": 220, "pivot_root": 41, "capset": 91, "close_range": 436},
}
_LANDLOCK_CREATE_RULESET = 444
_LANDLOCK_ADD_RULE = 445
_LANDLOCK_RESTRICT_SELF = 446

_libc = ctypes.CDLL(None, use_errno=True)
# For clone: a PyDLL keeps the GIL held across the call, as os.fork does.
_pylibc = ctypes.PyDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_pylibc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes += [ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.prctl.argtypes += [ctypes.c_ulong]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

MADV_COLLAPSE = 25  # Linux 6.1
_HUGE_PAGE = 2 << 20  # a PMD's worth on x86_64 and aarch64 with 4 KiB pages


class Unsupported(Exception):
    """This machine's architecture is not one whose syscall numbers we know."""


def _number(name: str) -> int:
    table = _SYSCALLS.get(platform.machine())
    if table is None:
        raise Unsupported(f"sandboxing is not supported on {platform.machine()}")
    return table[name]


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def _syscall(name: str, *args: Any) -> int:
    return _check(_libc.syscall(ctypes.c_long(_number(name)), *args), name)


# --- processes ------------------------------------------------------------------------------
def clone(flags: int) -> int:
    """Fork into new namespaces: like ``os.fork``, but the child starts in the namespaces that
    ``flags`` name (with CLONE_NEWPID it is process 1 of its own PID namespace, which
    ``unshare`` cannot give a process more than once). Returns the child's pid, 0 in the child.

    The runtime hooks os.fork runs around fork(2) run here too, so that the child's interpreter
    is as sound as after os.fork. What differs: glibc's copy of the thread id in the child
    still holds the parent's (glibc reads the real one where it matters: raise, pthread_kill
    of oneself), as in Chromium's zygote, which forks its sandboxes the same way.
    """
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    zero = ctypes.c_long(0)
    pid = _pylibc.syscall(
        ctypes.c_long(_number("clone")),
        ctypes.c_long(flags | 17),  # 17: SIGCHLD, so the parent reaps the child as usual
        zero,
        zero,
        zero,
        zero,
    )
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    code = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(code, f"clone: {os.strerror(code)}")
    return int(pid)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, 0, 0), "prctl")


def set_dumpable(dumpable: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if dumpable else 0)


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_process_name(name: str) -> None:
    buffer = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, ctypes.addressof(buffer), 0, 0, 0), "prctl")


def close_fds_except(keep: set[int]) -> None:
    """Close every descriptor of this process but ``keep`` (close_range where it exists)."""
    low = 3
    for fd in [*sorted(k for k in keep if k >= 3), None]:
        high = 0xFFFFFFFF if fd is None else fd - 1
        if low <= high:
            try:
                _syscall("close_range", ctypes.c_uint(low), ctypes.c_uint(high), ctypes.c_uint(0))
            except OSError:  # an old kernel: the slow way
                os.closerange(low, min(high + 1, os.sysconf("SC_OPEN_MAX")))
        if fd is not None:
            low = fd + 1


def drop_capabilities() -> None:
    """Empty every capability set of this process, the bounding and ambient sets too, so that
    nothing it runs can regain one."""
    for cap in range(64):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # past the last capability this kernel knows
                break
            raise
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass
    # capset(2) with _LINUX_CAPABILITY_VERSION_3: a header, then two 32-bit halves of data.
    header = struct.pack("=Ii", 0x20080522, 0)
    data = bytes(24)
    _syscall("capset", ctypes.c_char_p(header), ctypes.c_char_p(data))


# --- mounts ---------------------------------------------------------------------------------
def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    result = _libc.mount(
        source.encode() if source is not None else None,
        target.encode(),
        fstype.encode() if fstype is not None else None,
        flags,
        ctypes.c_char_p(data.encode()) if data is not None else None,
    )
    _check(result, f"mount {source or fstype} on {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _syscall("pivot_root", ctypes.c_char_p(new_root.encode()), ctypes.c_char_p(put_old.encode()))


def mount_flags_at(path: str) -> int:
    """The MS_ flags a remount of the mount at ``path`` must keep: a mount made in a
    namespace of more privilege is locked, and a remount may not clear its flags."""
    flags = os.statvfs(path).f_flag
    kept = 0
    for st_flag, ms_flag in (
        (os.ST_RDONLY, MS_RDONLY),
        (os.ST_NOSUID, MS_NOSUID),
        (os.ST_NODEV, MS_NODEV),
        (os.ST_NOEXEC, MS_NOEXEC),
        (os.ST_NOATIME, MS_NOATIME),
        (os.ST_NODIRATIME, MS_NODIRATIME),
        (os.ST_RELATIME, MS_RELATIME),
    ):
        if flags & st_flag:
            kept |= ms_flag
    return kept


# --- network --------------------------------------------------------------------------------
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_up_loopback() -> None:
    """Set ``lo`` up: a new network namespace starts with it down."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | _IFF_UP))


# --- Landlock -------------------------------------------------------------------------------
LANDLOCK_RULE_PATH_BENEATH = 1


def landlock_abi() -> int:
    """The Landlock ABI version this kernel offers; 0 when it has none (or it is disabled)."""
    result = _libc.syscall(
        ctypes.c_long(_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0), ctypes.c_uint32(1)
    )
    return max(0, int(result))


def landlock_create_ruleset(handled_fs: int, handled_net: int, scoped: int, abi: int) -> int:
    # struct landlock_ruleset_attr grew with the ABI: fs (1), net (4), scoped (6).
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("=Q", handled_fs)
    result = _libc.syscall(
        ctypes.c_long(_LANDLOCK_CREATE_RULESET),
        ctypes.c_char_p(attr),
        ctypes.c_size_t(len(attr)),
        ctypes.c_uint32(0),
    )
    return _check(int(result), "landlock_create_ruleset")


def landlock_allow_beneath(ruleset_fd: int, path_fd: int, access: int) -> None:
    attr = struct.pack("=Qi", access, path_fd)  # packed: __u64 allowed_access; __s32 parent_fd
    result = _libc.syscall(
        ctypes.c_long(_LANDLOCK_ADD_RULE),
        ctypes.c_int(ruleset_fd),
        ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
        ctypes.c_char_p(attr),
        ctypes.c_uint32(0),
    )
    _check(int(result), "landlock_add_rule")


def landlock_restrict_self(ruleset_fd: int) -> None:
    result = _libc.syscall(
        ctypes.c_long(_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)
    )
    _check(int(result), "landlock_restrict_self")


# --- seccomp --------------------------------------------------------------------------------
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def load_seccomp_filter(program: bytes) -> None:
    """Install a classic BPF program (as libseccomp exports it: 8 bytes per instruction)."""
    prog = _SockFprog(len(program) // 8, program)
    result = _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0)
    _check(result, "seccomp")


# --- memory ---------------------------------------------------------------------------------
def collapse_into_huge_pages(proc: int | None = None) -> int:
    """Back this process's private anonymous memory (the interpreter's heap: objects, code,
    the imported modules) with transparent huge pages where the kernel can, whatever the host's
    THP setting short of ``never`` (MADV_COLLAPSE); returns how many 2 MiB pages were made.

    For the zygote: a fork copies one page-table entry per 2 MiB huge page rather than 512,
    and an exit has as few to tear down, so a sandbox's start and end cost less the larger
    the zygote (a child's first write to a huge page splits it in the child only, and copies
    4 KiB as before). 0 where the kernel has no MADV_COLLAPSE or no huge page to give.
    ``proc``: a descriptor of /proc, for a process that stands where /proc is not."""
    made = 0
    path = "self/maps" if proc is not None else "/proc/self/maps"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
    except OSError:
        return 0
    with open(fd) as maps:
        regions = [line.split() for line in maps]
    for fields in regions:
        mapped = fields[5] if len(fields) > 5 else ""
        if fields[1] != "rw-p" or mapped not in ("", "[heap]"):
            continue
        low, high = (int(bound, 16) for bound in fields[0].split("-"))
        start = -(-low // _HUGE_PAGE) * _HUGE_PAGE
        end = high // _HUGE_PAGE * _HUGE_PAGE
        if end > start and _libc.madvise(start, end - start, MADV_COLLAPSE) == 0:
            made += (end - start) // _HUGE_PAGE
    return made
