"""The zygote's memory in transparent huge pages (linux.collapse_into_huge_pages): made where
the kernel allows, and what a fork's child then writes stays its own."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

PROBE = textwrap.dedent(
    """
    import json, os
    from theazo.sandbox import linux

    def huge_kb():
        with open("/proc/self/smaps") as smaps:
            return sum(int(l.split()[1]) for l in smaps if l.startswith("AnonHugePages"))

    heap = [str(i) * 8 for i in range(400_000)]  # some 40 MB of objects, as after imports
    before = huge_kb()
    made = linux.collapse_into_huge_pages()
    after = huge_kb()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        heap[123] = "the child's"  # a write to a shared huge page: copied for the child only
        os.write(write, heap[123].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    seen_by_child = os.read(read, 100).decode()
    print(json.dumps({"made": made, "before": before, "after": after,
                      "child": seen_by_child, "parent": heap[123]}))
    """
)


def kernel_collapses() -> bool:
    """MADV_COLLAPSE came with Linux 6.1; THP set to "never" refuses it."""
    major, minor = (int(part) for part in platform.release().split(".")[:2])
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    enabled = thp.read_text() if thp.exists() else "[never]"
    return (major, minor) >= (6, 1) and "[never]" not in enabled


def test_private_memory_is_collapsed_where_the_kernel_can() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["child"] == "the child's" and answer["parent"] == "123" * 8
    if kernel_collapses():
        assert answer["made"] > 0
        assert answer["after"] >= answer["before"] + 2048 * answer["made"] // 2
    else:
        assert answer["made"] == 0
