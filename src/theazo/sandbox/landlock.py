"""Landlock: the kernel's own sandbox for unprivileged processes, applied on top of the
namespaces as a second wall.

Inside its mount namespace a sandbox already sees only its view; Landlock then makes every
path read-only but its own scratch directories, whatever a mount might later reveal, and from
ABI 6 it scopes signals and abstract Unix sockets to the sandbox: it can neither signal nor
connect to anything outside, even a process it could name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from theazo.sandbox import linux

# <linux/landlock.h>, by the ABI version that introduced them.
_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
_REMOVE_DIR = 1 << 4
_REMOVE_FILE = 1 << 5
_MAKE_CHAR = 1 << 6
_MAKE_DIR = 1 << 7
_MAKE_REG = 1 << 8
_MAKE_SOCK = 1 << 9
_MAKE_FIFO = 1 << 10
_MAKE_BLOCK = 1 << 11
_MAKE_SYM = 1 << 12
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_IOCTL_DEV = 1 << 15  # ABI 5
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

READ = _EXECUTE | _READ_FILE | _READ_DIR
_WRITE_ABI_1 = (
    _WRITE_FILE
    | _REMOVE_DIR
    | _REMOVE_FILE
    | _MAKE_DIR
    | _MAKE_REG
    | _MAKE_SOCK
    | _MAKE_FIFO
    | _MAKE_SYM
)


def handled_access(abi: int) -> int:
    """Every filesystem right this ABI can restrict: what is not granted is denied."""
    rights = READ | _WRITE_ABI_1 | _MAKE_CHAR | _MAKE_BLOCK
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def restrict(abi: int, writable: Iterable[str], devices: Iterable[str]) -> None:
    """Allow reading everything this process sees, writing only beneath ``writable``, and
    reading and writing ``devices`` and files of /proc (a sandbox's own processes: programs
    set their oom_score_adj or thread names there); nothing else, for this process and all
    it starts."""
    handled = handled_access(abi)
    write = (_WRITE_ABI_1 | _REFER | _TRUNCATE) & handled
    device = (_READ_FILE | _WRITE_FILE | _TRUNCATE | _IOCTL_DEV) & handled
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    ruleset = linux.landlock_create_ruleset(handled, 0, scoped, abi)
    try:
        _allow(ruleset, "/", READ)
        for path in writable:
            _allow(ruleset, path, READ | write)
        for path in (*devices, "/proc"):
            _allow(ruleset, path, device)
        linux.landlock_restrict_self(ruleset)
    finally:
        os.close(ruleset)


def _allow(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            access &= _READ_FILE | _WRITE_FILE | _EXECUTE | _TRUNCATE | _IOCTL_DEV
        linux.landlock_allow_beneath(ruleset, fd, access)
    finally:
        os.close(fd)
