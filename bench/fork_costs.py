"""What a fork of an interpreter loaded like a zygote costs the child before its first line.

    python bench/fork_costs.py [--forks 300] [--modules httpx,openai,theazo.sandbox.zygote]

Imports the modules, freezes the garbage collector's objects (as the zygote does), then forks
``--forks`` children three ways, interleaved: ``fork(2)`` alone (no interpreter hooks: only
safe for a child that does nothing), ``fork(2)`` then ``PyOS_AfterFork_Child`` (what
``os.fork`` and ``theazo.sandbox.linux.clone`` run: the interpreter's re-initialisation and
every module's at-fork hook), and ``os.fork``. Each child reads its own CPU time and page
faults and exits. Medians. The difference between the first two is what the interpreter's
after-fork work costs every sandbox, mostly the faults it takes mapping pages again.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import os
import statistics
import time
from collections.abc import Callable

DEFAULT_MODULES = "httpx,openai,anthropic,theazo.sandbox.zygote"
_FORK = 57  # x86-64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forks", type=int, default=300)
    parser.add_argument("--modules", default=DEFAULT_MODULES)
    args = parser.parse_args()
    for name in filter(None, args.modules.split(",")):
        importlib.import_module(name)
    gc.collect()
    gc.freeze()
    libc = ctypes.CDLL(None, use_errno=True)
    api = ctypes.pythonapi
    read_end, write_end = os.pipe()

    def report_and_exit() -> None:
        cpu_us = time.process_time_ns() // 1000
        with open("/proc/self/stat") as stat:
            faults = stat.read().split()[9]  # minflt
        os.write(write_end, f"{cpu_us} {faults}\n".encode())
        os._exit(0)

    def raw() -> int:
        return int(libc.syscall(_FORK))

    def with_hooks() -> int:
        api.PyOS_BeforeFork()
        pid = int(libc.syscall(_FORK))
        if pid == 0:
            api.PyOS_AfterFork_Child()
        else:
            api.PyOS_AfterFork_Parent()
        return pid

    ways: dict[str, Callable[[], int]] = {
        "fork(2) alone": raw,
        "fork(2) + PyOS_AfterFork_Child": with_hooks,
        "os.fork()": os.fork,
    }
    samples: dict[str, list[tuple[int, int]]] = {name: [] for name in ways}
    for _ in range(args.forks):
        for name, fork in ways.items():
            pid = fork()
            if pid == 0:
                report_and_exit()
            os.waitpid(pid, 0)
            cpu_us, fault_count = os.read(read_end, 100).split()
            samples[name].append((int(cpu_us), int(fault_count)))
    print(f"modules: {args.modules or '(none)'}; {args.forks} forks each; medians")
    for name, values in samples.items():
        cpu = statistics.median(v[0] for v in values)
        faults = statistics.median(v[1] for v in values)
        print(f"  {name:32} child CPU {cpu:7.0f} us  page faults {faults:5.0f}")


if __name__ == "__main__":
    main()
