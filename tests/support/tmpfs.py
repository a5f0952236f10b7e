"""Small file systems for fault tests: a tmpfs of a few megabytes fills up at once, and can
be remounted read-only. Mounting needs root (CI runs as root); elsewhere the tests that need
one are skipped with the reason, and with ``THEAZO_REQUIRE_TMPFS=1`` (set by CI) they fail.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def tmpfs_required() -> bool:
    return os.environ.get("THEAZO_REQUIRE_TMPFS", "") not in ("", "0")


def _unavailable(reason: str) -> None:
    if tmpfs_required():
        pytest.fail(f"THEAZO_REQUIRE_TMPFS is set, but {reason}")
    pytest.skip(reason)


@contextmanager
def mounted_tmpfs(where: Path, size: str = "8M") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted at ``where`` (made if missing), unmounted after."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        _unavailable(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def remount(where: Path, option: str) -> None:
    """Remount a tmpfs of ours with ``option`` (``ro``, ``rw``, ``size=…``)."""
    subprocess.run(
        ["mount", "-o", f"remount,{option}", str(where)], capture_output=True, check=True
    )


def fill(where: Path) -> Path:
    """Fill the file system holding ``where`` to the last byte; returns the filler file."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = 1 << 20
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)
    return filler
