"""How fast sandboxes start, and how that holds as live ones pile up (issue 18).

In-process with ``SandboxPool`` (no server, no HTTP): for each count of live sandboxes (0,
1,000, 5,000 by default: ``--live``), start that many that sleep, then a burst of
``START_BURST`` no-op tasks asked for at once. A start is counted when the zygote has handed
the task to a walled-in sandbox (the ``spawned`` answer: the sandbox has the task); the rate
is the burst over the time until the last of them started. The zygotes build spares as fast as
they can while the burst waits, so this is their rate of making sandboxes, with every wall of
the default isolation in force.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Sequence

from bench.common import AGENTS_MODULE, REPO, Bench, Figure, Result, Target, percentile
from theazo.config import default_zygotes
from theazo.sandbox.pool import Sandbox, SandboxPool, SandboxSettings

LIVE_COUNTS = (0, 1_000, 2_000, 5_000)
START_BURST = 400
START_TARGET = Target(400, ">= 400/s with 2,000 live", at_least=True)
LIVE_SECONDS = 3_600  # the live sandboxes sleep until the measurement stops them


def _init(number: int, agent: str, seconds: float | None = None) -> dict[str, object]:
    return {
        "task_id": f"task_start{number}",
        "session_id": "sess_bench",
        "user_id": "bench",
        "agent": agent,
        "attempt": 1,
        "metadata": {},
        "input": None if seconds is None else {"seconds": seconds},
    }


async def _drain(sandbox: Sandbox) -> None:
    """Read what a sandbox says, so its channel never fills."""
    async for _ in sandbox.messages(1 << 20):
        pass


async def _starts(live: int) -> tuple[float, list[float], float]:
    """(starts per second, each start's latency in seconds, seconds to start the live ones)."""
    settings = SandboxSettings(
        agent_modules=(AGENTS_MODULE,), python_path=(str(REPO),), zygotes=default_zygotes()
    )
    pool = SandboxPool(settings)
    await pool.start()
    readers: list[asyncio.Task[None]] = []
    try:
        began = time.perf_counter()
        # In batches: until a sandbox has started, the pool also holds the ends of the pipes
        # it hands over, so asking for thousands at once would need twice the descriptors.
        for first in range(0, live, START_BURST):
            batch = range(first, min(first + START_BURST, live))
            sleepers = [await pool.spawn(_init(n, "sleep", LIVE_SECONDS)) for n in batch]
            readers += [asyncio.ensure_future(_drain(s)) for s in sleepers]
            await asyncio.gather(*(s.spawned for s in sleepers))
        filled = time.perf_counter() - began

        asked = time.perf_counter()
        burst = [await pool.spawn(_init(live + n, "noop")) for n in range(START_BURST)]
        readers += [asyncio.ensure_future(_drain(s)) for s in burst]
        latencies: list[float] = []

        async def started(sandbox: Sandbox) -> None:
            await sandbox.spawned
            latencies.append(time.perf_counter() - asked)

        await asyncio.gather(*(started(s) for s in burst))
        rate = START_BURST / (time.perf_counter() - asked)
        await asyncio.gather(*(s.exited for s in burst))
        return rate, latencies, filled
    finally:
        for reader in readers:
            reader.cancel()
        await pool.close()


FILES_PER_SANDBOX = 6  # what the pool holds per live sandbox here (channel, output pipes, egress)


def _most_live() -> int:
    """How many live sandboxes this process's open-files limit leaves room for (raised to
    its hard limit first: where that is 20,000, as on the development machines, about 4,900)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return (hard - 512) // FILES_PER_SANDBOX - 2 * START_BURST  # a starting one holds 6


def measure_start_rate(bench: Bench, live_counts: Sequence[int] = LIVE_COUNTS) -> Result:
    """Sandbox starts per second with 0, 1,000 and 5,000 live sandboxes."""
    result = Result("start_rate")
    room = _most_live()
    for wanted in live_counts:
        live = min(wanted, room)
        if live < wanted:
            result.notes.append(
                f"{wanted:,} live asked, {live:,} started: the open-files limit "
                f"({resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,}) holds "
                f"{FILES_PER_SANDBOX} descriptors per sandbox here"
            )
        rate, latencies, filled = asyncio.run(_starts(live))
        target = START_TARGET if live == 2_000 else None
        result.figures.append(Figure(f"starts/s with {live:,} live", rate, "/s", target))
        result.figures.append(
            Figure(f"start p50 with {live:,} live", percentile(latencies, 50) * 1000, "ms")
        )
        if live:
            result.notes.append(f"{live:,} live sandboxes took {filled:.1f} s to start")
    result.notes.append(
        f"a burst of {START_BURST} no-op tasks after the live ones, on {default_zygotes()} zygotes"
    )
    return result
