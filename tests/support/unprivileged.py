"""Running a Theazo node as an unprivileged user, from a test that runs as root.

The node must still reach its interpreter, which on the development machines and CI lies under
/root (mode 0700). So the node starts in a mount namespace of its own, where /root is a
world-traversable tmpfs holding only the directories it needs, bound back in place; then
``setpriv`` drops to the user, with no capabilities and no supplementary groups. Nothing of
the host changes.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

USER = 65534  # nobody
_HIDDEN_HOME = Path("/root")


def unavailable() -> str | None:
    """Why a node cannot be run as another user here, or None."""
    if os.geteuid() != 0:
        return "the tests run as an unprivileged user already; dropping to another needs root"
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def wrap(command: list[str]) -> list[str]:
    """``command``, run as ``USER`` in its own mount namespace (see the module docstring)."""
    needed = sorted({str(p) for p in _interpreter_paths() if _HIDDEN_HOME in p.parents}, key=len)
    stage = f"/tmp/theazo-unprivileged-{os.getpid()}"
    lines = ["set -e", "mount --make-rprivate /", f"mkdir -p {stage}"]
    for index, path in enumerate(needed):
        lines += [f"mkdir -p {stage}/{index}", f"mount --bind {shlex.quote(path)} {stage}/{index}"]
    if needed:
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {_HIDDEN_HOME}")
        for index, path in enumerate(needed):
            lines += [
                f"mkdir -p {shlex.quote(path)}",
                f"mount --move {stage}/{index} {shlex.quote(path)}",
            ]
    lines.append(
        f"exec setpriv --reuid={USER} --regid={USER} --clear-groups --inh-caps=-all "
        + " ".join(shlex.quote(part) for part in command)
    )
    return ["unshare", "--mount", "sh", "-c", "\n".join(lines)]


def _interpreter_paths() -> list[Path]:
    return [Path(p).resolve() for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)]


def give(path: Path) -> None:
    """Make a directory the user's, for the node's database and sandboxes."""
    os.chown(path, USER, USER)
    path.chmod(0o755)
