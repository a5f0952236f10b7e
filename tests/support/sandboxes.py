"""Finding a sandbox's processes from the host, as tests need to (kill one, see it gone).

Inside its PID namespace a sandbox is process 1 and cannot learn its host pid, as it should
not. So the test agents name their processes (``prctl(PR_SET_NAME)``) after their task, and
tests look the name up in the host's /proc.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def process_tag(task_id: str, role: str = "a") -> str:
    """The name (at most 15 characters) a test agent gives its process; ``role`` tells apart
    the processes of one task (``a`` the agent, ``g`` a grandchild it forks)."""
    return f"{role}-{hashlib.sha256(task_id.encode()).hexdigest()[:12]}"


def host_pids(tag: str) -> list[int]:
    """The host pids of live processes named ``tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == tag and not _zombie(entry):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def host_pid(task_id: str, role: str = "a") -> int | None:
    pids = host_pids(process_tag(task_id, role))
    return pids[0] if len(pids) == 1 else None


def _zombie(entry: Path) -> bool:
    return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


def zygotes_of(server_pid: int) -> list[int]:
    """The host pids of a node's zygotes (its children running ``theazo.sandbox.zygote``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:"))
        if int(parent) == server_pid and b"theazo.sandbox.zygote" in cmdline:
            found.append(int(entry.name))
    return sorted(found)
