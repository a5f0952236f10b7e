"""The seccomp filter every sandbox runs under: the system calls an agent has no use for and an
attacker has, refused with EPERM.

libseccomp (through pyseccomp) compiles the rules for this machine's architecture once, in the
zygote; each sandbox then loads the compiled program, which costs microseconds. The list
follows Docker's default profile and the sandboxes of Codex and Chromium: tracing and reading
other processes, the kernel's mount and namespace machinery, keyrings, BPF, perf, io_uring
(which would run system calls past the filter), module loading, clocks, and socket families
that are not namespaced (vsock reaches the hypervisor) or are rarely used attack surface.
"""

from __future__ import annotations

import errno
import os
import socket

from theazo.sandbox import linux

DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "fanotify_init",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "iopl",
    "ioperm",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "acct",
    "quotactl",
    "quotactl_fd",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "syslog",
    "vhangup",
    "uselib",
    "nfsservctl",
)

# Families a sandbox may open sockets of; every other one up to AF_MAX is refused.
ALLOWED_SOCKET_FAMILIES = {socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK}
_LAST_SOCKET_FAMILY = 46  # AF_MAX in Linux 6.x
_TIOCSTI = 0x5412  # pushes input into a terminal: an escape to whoever owns that terminal


class Unavailable(Exception):
    """libseccomp is not installed, or this kernel has no seccomp filters."""


def compile_filter() -> bytes:
    """The filter, as a BPF program ready for ``linux.load_seccomp_filter``."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError, AttributeError) as exc:  # no libseccomp.so on this machine
        raise Unavailable(f"libseccomp is not available: {exc}") from exc
    deny = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)  # e.g. x32 calls on x86_64
    for name in DENIED:
        _add(rules, deny, name)
    # New namespaces from clone(2); clone3(2) passes its flags in memory a filter cannot read,
    # so it answers ENOSYS and the C library falls back to clone(2).
    for flag in _bits(linux.NAMESPACE_FLAGS):
        _add(rules, deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    _add(rules, seccomp.ERRNO(errno.ENOSYS), "clone3")
    for family in range(_LAST_SOCKET_FAMILY):
        if family not in ALLOWED_SOCKET_FAMILIES:
            refuse = seccomp.ERRNO(errno.EAFNOSUPPORT)
            _add(rules, refuse, "socket", seccomp.Arg(0, seccomp.EQ, family))
    _add(rules, deny, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    with os.fdopen(os.memfd_create("theazo-seccomp"), "w+b") as program:
        rules.export_bpf(program)
        program.seek(0)
        return program.read()


def _add(rules: object, action: int, name: str, *args: object) -> None:
    """Add a rule; a system call this architecture does not have needs none."""
    try:
        rules.add_rule(action, name, *args)  # type: ignore[attr-defined]
    except OSError as exc:
        if exc.errno not in (errno.EFAULT, errno.EINVAL, errno.EOPNOTSUPP, errno.EDOM):
            raise


def _bits(mask: int) -> list[int]:
    """The flags of a mask, one by one: a rule compares one masked value, so "any namespace
    flag set" is one rule per flag."""
    return [1 << bit for bit in range(mask.bit_length()) if mask & (1 << bit)]
