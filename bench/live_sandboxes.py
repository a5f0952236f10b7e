"""How many sandboxes one node holds running at once, and what each costs.

    python bench/live_sandboxes.py [--sandboxes 4000] [--seconds 120]

One ``theazo serve`` with ``--concurrency N`` (isolation as by default), N ``sleep`` tasks
submitted in batches; once all N sandboxes run (each names its process after its task, so they
are counted in /proc), reads the PSS of every sandbox process (``smaps_rollup``), the
zygotes' and the server's, and the open files of the server and the zygotes. Then stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…`, when run as a script

from bench.agent_work import children_of, descendants, pss_kb
from bench.peers.processes import theazo_server

BATCH = 1000


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandboxes", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from theazo import AsyncTheazo

    n = args.sandboxes
    with theazo_server(None, n) as (base, key, server):

        async def submit() -> float:
            async with AsyncTheazo(api_key=key, base_url=base, timeout=120) as client:
                session = await client.sessions.for_user("live")
                start = time.perf_counter()
                for i in range(0, n, BATCH):
                    count = min(BATCH, n - i)
                    await session.tasks.submit_batch(
                        [{"agent": "sleep", "input": {"seconds": args.seconds}}] * count
                    )
                return start

        start = asyncio.run(submit())
        running: list[int] = []
        deadline = time.monotonic() + args.seconds - 5
        while time.monotonic() < deadline:
            tree = children_of()
            zygotes = tree.get(server.pid, [])
            every = [p for z in zygotes for p in descendants(z, tree)[1:]]
            running = [p for p in every if comm(p).startswith("a-")]
            if len(running) >= n:
                break
            time.sleep(1)
        took = time.perf_counter() - start
        tree = children_of()
        zygotes = tree.get(server.pid, [])
        every = [p for z in zygotes for p in descendants(z, tree)[1:]]
        sandbox_kb = sum(pss_kb(p) for p in every)
        print(f"running at once: {len(running)} of {n} after {took:.1f} s")
        print(f"sandbox processes: {len(every)} (spares and helpers included)")
        each = sandbox_kb / max(1, len(running))
        print(f"sandboxes' PSS: {sandbox_kb / 1024:.0f} MB, {each:.0f} kB each")
        print(f"zygotes' PSS: {sum(pss_kb(z) for z in zygotes) / 1024:.1f} MB")
        print(f"server PSS: {pss_kb(server.pid) / 1024:.1f} MB")
        print(
            f"open files: server {open_files(server.pid)}, zygotes "
            f"{sum(open_files(z) for z in zygotes)} (limit {hard})"
        )
        load = os.getloadavg()
        print(f"load: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
