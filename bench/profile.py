"""Where a no-op task's time goes, on the default path (SQLite, one `theazo serve`).

    python bench/profile.py [--tasks 3000] [--round-trips 300] [--database URL] [--raw PATH]

Two parts, each against a fresh server started as ``bench/peers.py`` starts it (2 sandboxes
at once, the ``noop`` agent of ``bench/agents.py``):

* **CPU per task**, under the closed-loop load of ``bench/peers.py`` (16 clients, each
  ``session.run`` one task after another). CPU time of each process from /proc over the run,
  divided by the tasks: the server; the zygote itself (forking, reaping, removing working
  directories); the sandboxes (the zygote's reaped children: everything a sandbox does from
  the fork to its exit); and the client (this process). The server's share is split by
  py-spy samples (``py-spy record --nonblocking`` on the server's pid, at ``--rate``): each
  sample goes to the innermost Theazo module on its stack (see ``CATEGORIES``), or to the
  HTTP stack when no Theazo frame is there (request parsing, routing, validation).
* **One task's latency**, from ``--round-trips`` sequential ``session.run`` calls on an idle
  server (one task at a time): the client's clock around each call, and the task's server
  timestamps (``createdAt``, ``startedAt``, ``completedAt``; same machine, same clock),
  split into request in → recorded → started → ended → answer parsed. Server timestamps
  are truncated to the millisecond, so a stage between a client moment and a server
  timestamp is corrected by the truncation's mean, 0.5 ms; means are shown, since single
  samples are whole milliseconds.

py-spy needs the permission to read another process's memory (root, or ptrace_scope 0);
without it the CPU split is skipped and the rest still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `bench.…` modules, when run as `python bench/profile.py`

from bench.common import cpu_seconds  # noqa: E402
from bench.peers.processes import theazo_server  # noqa: E402

RUNNERS = 16  # closed-loop clients, as in bench/peers.py

# The innermost Theazo frame of a sample decides its category. Checked in this order.
CATEGORIES = (
    ("theazo/store/events.py", "waits: held requests and their wake-ups"),
    ("theazo/store/", "store: SQL statements, rows to records"),
    ("theazo/scheduler/", "scheduler: claims, runs, outcomes"),
    ("theazo/sandbox/", "sandbox pool: messages to the zygote and from sandboxes"),
    ("theazo/webhooks/", "webhooks"),
    ("theazo/api/", "API: routes, service, wire JSON"),
)
# Frames that decide nothing: shared domain code (its caller decides), and the frames under
# every sample of the process (the command, the server's start, the event loop's run).
PASS_THROUGH = ("theazo/core/", "theazo/cli/", "theazo/server.py", "theazo/__main__.py")
HTTP_STACK = ("uvicorn/", "starlette/", "fastapi/", "httptools", "h11/", "pydantic")
HTTP = "HTTP stack: uvicorn, Starlette, FastAPI (parsing, routing, validation)"
REST = "event loop: uvloop's native code (socket and pipe I/O), the rest"


@dataclass
class CpuFigures:
    tasks: int
    seconds: float
    server: float
    zygote: float
    sandboxes: float
    client: float


def zygote_of(server_pid: int) -> int:
    for child in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
        if b"theazo.sandbox.zygote" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise RuntimeError("the server has no zygote")


async def closed_loop(base: str, key: str, tasks: int) -> None:
    from theazo import AsyncTheazo

    async with AsyncTheazo(api_key=key, base_url=base) as client:
        session = await client.sessions.for_user("profile")
        left = tasks

        async def runner() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                done = await session.run(agent="noop", input=None)
                assert done.status == "completed", done.error

        await asyncio.gather(*(runner() for _ in range(RUNNERS)))


def measure_cpu(
    base: str, key: str, server_pid: int, tasks: int, rate: int, raw: Path | None
) -> tuple[CpuFigures, Counter[str]]:
    asyncio.run(closed_loop(base, key, 200))  # warm-up
    zygote = zygote_of(server_pid)
    spy = start_py_spy(server_pid, rate, raw) if raw is not None else None
    before = (cpu_seconds(server_pid), cpu_seconds(zygote), reaped(zygote), time.process_time())
    start = time.perf_counter()
    asyncio.run(closed_loop(base, key, tasks))
    seconds = time.perf_counter() - start
    after = (cpu_seconds(server_pid), cpu_seconds(zygote), reaped(zygote), time.process_time())
    samples: Counter[str] = Counter()
    if spy is not None and raw is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
        samples = categorised(raw)
    used = [b - a for a, b in zip(before, after, strict=True)]
    return CpuFigures(tasks, seconds, *used), samples


def reaped(zygote: int) -> float:
    return cpu_seconds(zygote, reaped_children=True) - cpu_seconds(zygote)


def start_py_spy(pid: int, rate: int, raw: Path) -> subprocess.Popen[bytes] | None:
    if shutil.which("py-spy") is None:
        print("py-spy is not installed (pip install -e '.[bench]'): no CPU split")
        return None
    spy = subprocess.Popen(
        [
            *("py-spy", "record", "--nonblocking", "--rate", str(rate), "--format", "raw"),
            *("--output", str(raw), "--pid", str(pid)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # attached
    if spy.poll() is not None:
        assert spy.stderr is not None
        print(f"py-spy could not attach: {spy.stderr.read().decode().strip()[:200]}")
        return None
    return spy


def categorised(raw: Path) -> Counter[str]:
    """Samples per category, from py-spy's raw output: ``frame;frame;… count`` per line,
    outermost frame first, each ``function (path:line)``."""
    counts: Counter[str] = Counter()
    if not raw.exists():
        return counts
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if stack and number.isdigit():
            counts[category(stack.split(";"))] += int(number)
    return counts


def category(frames: list[str]) -> str:
    for frame in reversed(frames):
        if "theazo/" not in frame or any(outer in frame for outer in PASS_THROUGH):
            continue
        for marker, name in CATEGORIES:
            if marker in frame:
                return name
        return REST  # theazo/node.py…
    return HTTP if any(m in frame for frame in frames for m in HTTP_STACK) else REST


def measure_latency(base: str, key: str, count: int) -> dict[str, list[float]]:
    from theazo import Theazo

    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    with Theazo(api_key=key, base_url=base) as client:
        session = client.sessions.for_user("profile-latency")
        for _ in range(20):
            session.run(agent="noop", input=None)  # warm-up
        for _ in range(count):
            sent = time.time()
            task = session.run(agent="noop", input=None)
            parsed = time.time()
            created, started, ended = (
                moment(t) for t in (task.created_at, task.started_at, task.completed_at)
            )
            for name, value in zip(
                STAGES,
                (
                    created + 0.0005 - sent,
                    started - created,
                    ended - started,
                    parsed - ended - 0.0005,
                    parsed - sent,
                ),
                strict=True,
            ):
                stages[name].append(value * 1000)
    return stages


STAGES = (
    "request in: HTTP, auth, validation, up to the insert (sent → createdAt)",
    "dispatch: commit, wake the scheduler, claim (createdAt → startedAt)",
    "run: fork handoff, agent, result, end recorded (startedAt → completedAt)",
    "answer: commit, wake the held request, JSON, HTTP, SDK (completedAt → parsed)",
    "round trip (sent → parsed)",
)


def moment(value: datetime | str | None) -> float:
    if value is None:
        raise RuntimeError("a task without a timestamp")
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


def report(cpu: CpuFigures, samples: Counter[str], stages: dict[str, list[float]]) -> None:
    per_task = 1000 / cpu.tasks
    print(
        f"\nCPU per task: {cpu.tasks} noop tasks in {cpu.seconds:.2f} s "
        f"({cpu.tasks / cpu.seconds:.0f} tasks/s), {RUNNERS} closed-loop clients\n"
    )
    print(f"{'process / part':<76}{'ms/task':>9}")
    print(f"{'server (theazo serve)':<76}{cpu.server * per_task:>9.3f}")
    total = sum(samples.values())
    for name, count in samples.most_common():
        print(f"{'  ' + name:<76}{cpu.server * per_task * count / total:>9.3f}")
    print(
        f"{'zygote (forks, reaps, removes working directories)':<76}{cpu.zygote * per_task:>9.3f}"
    )
    print(
        f"{'sandboxes (fork to exit: set-up, agent, result, exit)':<76}"
        f"{cpu.sandboxes * per_task:>9.3f}"
    )
    print(f"{'client (this process: the SDK)':<76}{cpu.client * per_task:>9.3f}")
    print(f"{'all':<76}{(cpu.server + cpu.zygote + cpu.sandboxes + cpu.client) * per_task:>9.3f}")
    if total:
        print(f"(server split from {total} py-spy samples)")
    count = len(next(iter(stages.values())))
    print(
        f"\nOne task's latency: {count} noop tasks one at a time (session.run), means and "
        "medians in ms\n"
    )
    print(f"{'stage':<82}{'mean':>7}{'p50':>7}")
    for name, values in stages.items():
        print(f"{name:<82}{statistics.fmean(values):>7.2f}{statistics.median(values):>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--database", help="postgresql://… (default: SQLite in a temp dir)")
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    raw = args.raw or workdir / "server.raw"
    try:
        with theazo_server(args.database) as (base, key, process):
            cpu, samples = measure_cpu(base, key, process.pid, args.tasks, args.rate, raw)
        with theazo_server(args.database) as (base, key, _):
            stages = measure_latency(base, key, args.round_trips)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(cpu, samples, stages)


if __name__ == "__main__":
    main()
