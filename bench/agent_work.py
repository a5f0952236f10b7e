"""Theazo beside Celery and Huey on the work agents do: wait on a model, report progress.

    python bench/agent_work.py [--tasks 2000] [--sessions 100] [--runs 3] [--only theazo]

Each task makes four sequential ``httpx`` calls to a fake model server on 127.0.0.1 that
answers after 250 ms (``bench/peers/model_server.py``), reporting progress after each; the
agent makes its client inside the function (``bench/peers/work.py``). Each system is set up
as its docs advise for I/O-bound work: Huey with thread and greenlet workers, Celery with the
threads and gevent pools (both on a Redis of their own that this script starts), Theazo with
``--concurrency`` 200, 500 and 1,000, its sandboxes walled in as by default (namespaces,
egress through the server's proxy, which forwards the model server's port:
``--sandbox-allow-host 127.0.0.1:PORT``).

For every run: the makespan (first submit → last result in the client); queue wait (the
submit → the task's first progress, the agent's wall clock); CPU by process (utime + stime
over the run, reaped children included: for Theazo the server, the zygotes and the
sandboxes; for the peers the worker and its Redis); peak PSS summed over those processes
(``/proc/PID/smaps_rollup``, sampled every second); and the share of the allowed concurrency
running while tasks still wait to start (the model server's count of tasks between their first
call and their last answer, every 10 ms). The model server checks that every call arrived.
Runs are interleaved (every system once, then again), and the table shows medians.
Then the same agent in one reused process, 50 threads: its CPU per task is the baseline.

Each peer runs twice: as installed, and with ``SSL_CERT_DIR=/etc/ssl/certs``, where Theazo's
sandboxes find certificates (httpx otherwise parses certifi's whole bundle for each client it
makes, 17 ms of CPU here); the baseline is measured both ways too.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…`, when run as a script

from bench.peers.processes import REPO, env, free_port, stop, theazo_server
from bench.peers.work import STEPS

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PSS_SAMPLE_SECONDS = 1.0
RESULT_TIMEOUT_SECONDS = 600.0
SANDBOX_CERTIFICATES = "/etc/ssl/certs"  # where a sandbox's TLS finds them (theazo.sandbox.jail)


# --- /proc ------------------------------------------------------------------------------------
def proc_times(pid: int) -> tuple[float, float]:
    """(its own utime + stime, its reaped children's), in seconds; (0, 0) once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    own = int(fields[11]) + int(fields[12])
    children = int(fields[13]) + int(fields[14])
    return own / CLOCK_TICKS, children / CLOCK_TICKS


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(root: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    tree = children_of() if tree is None else tree
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(tree.get(pid, ()))
    return found


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PssPeak:
    """The peak of the PSS summed over a system's processes, sampled in a thread."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids, self.peak_kb, self.peak_processes = pids, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(PSS_SAMPLE_SECONDS):
            self.sample()

    def sample(self) -> None:
        pids = self.pids()
        total = sum(pss_kb(pid) for pid in pids)
        if total > self.peak_kb:
            self.peak_kb, self.peak_processes = total, len(pids)

    def __enter__(self) -> PssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass
class CpuMeter:
    """CPU seconds of named parts over an interval: each part a function of /proc."""

    parts: dict[str, Callable[[], float]]
    start: dict[str, float] = field(default_factory=dict)

    def begin(self) -> None:
        self.start = {name: read() for name, read in self.parts.items()}

    def end(self) -> dict[str, float]:
        return {name: read() - self.start[name] for name, read in self.parts.items()}


# --- what a run gives -------------------------------------------------------------------------
@dataclass
class Figures:
    makespan: float  # s
    wait_p50: float  # s
    wait_p99: float  # s
    cpu: dict[str, float]  # seconds, by part
    pss_mb: float
    processes: int  # at the PSS peak
    share: float  # of the allowed concurrency, running while tasks wait to start
    peak_active: int
    load: float  # 1-minute load average at the start

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Model:
    url: str

    def reset(self, tasks: int) -> None:
        httpx.post(f"{self.url}/reset", json={"tasks": tasks, "steps": STEPS}).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/stats").json()
        return answer


def finish(
    model: Model,
    tasks: int,
    concurrency: int,
    makespan: float,
    waits: list[float],
    cpu: dict[str, float],
    pss: PssPeak,
    load: float,
) -> Figures:
    stats = model.stats()
    if stats["calls"] != tasks * STEPS or stats["tasks_finished"] != tasks:
        raise RuntimeError(f"the model server saw {stats}, not {tasks * STEPS} calls")
    return Figures(
        makespan,
        percentile(waits, 0.5),
        percentile(waits, 0.99),
        cpu,
        pss.peak_kb / 1024,
        pss.peak_processes,
        stats["mean_active_while_deep"] / concurrency,
        int(stats["peak_active"]),
        load,
    )


# --- Theazo -----------------------------------------------------------------------------------
@contextmanager
def perf_record(pids: list[int], out: Path | None) -> Iterator[None]:
    """``perf record`` of these processes and the children they fork meanwhile (the sandboxes),
    call graphs included; nothing without ``out``."""
    if out is None:
        yield
        return
    command = ["perf", "record", "-F", "499", "-g", "-o", str(out), "-p", ",".join(map(str, pids))]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    time.sleep(1)  # attached
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


def run_theazo(
    model: Model, tasks: int, sessions: int, concurrency: int, perf: Path | None = None
) -> Figures:
    from theazo import AsyncTheazo

    port = model.url.rsplit(":", 1)[1]
    root = Path(tempfile.mkdtemp(prefix="bench-work-"))
    extra = ("--sandbox-allow-host", f"127.0.0.1:{port}", "--sandbox-root", str(root))
    with theazo_server(None, concurrency, extra) as (base, key, server):

        def zygotes() -> list[int]:
            return children_of().get(server.pid, [])

        def sandboxes_cpu() -> float:  # reaped ones in their zygote's children, and live ones
            tree = children_of()
            total = 0.0
            for zygote in tree.get(server.pid, []):
                total += proc_times(zygote)[1]
                total += sum(proc_times(pid)[0] for pid in descendants(zygote, tree)[1:])
            return total

        meter = CpuMeter(
            {
                "server": lambda: proc_times(server.pid)[0],
                "zygotes": lambda: sum(proc_times(pid)[0] for pid in zygotes()),
                "sandboxes": sandboxes_cpu,
            }
        )

        async def drive() -> tuple[float, list[float]]:
            async with AsyncTheazo(api_key=key, base_url=base, timeout=120) as client:
                lanes = [await client.sessions.for_user(f"user-{i}") for i in range(sessions)]
                warm = await lanes[0].tasks.submit("work", {"url": model.url})
                assert (await lanes[0].tasks.wait(warm.task_id)).status == "completed"
                model.reset(tasks)
                per = [tasks // sessions + (i < tasks % sessions) for i in range(sessions)]
                meter.begin()
                start = time.perf_counter()

                async def lane(session: Any, count: int) -> list[float]:
                    submitted = time.time()
                    batch = await session.tasks.submit_batch(
                        [{"agent": "work", "input": {"url": model.url}}] * count
                    )
                    waits = []
                    for task in batch:
                        done = await session.tasks.wait(task.task_id)
                        assert done.status == "completed", done.error
                        waits.append(done.output["first_progress"] - submitted)
                    return waits

                results = await asyncio.gather(
                    *(lane(s, n) for s, n in zip(lanes, per, strict=True))
                )
                return time.perf_counter() - start, [w for r in results for w in r]

        load = os.getloadavg()[0]
        profiled = perf_record([server.pid, *zygotes()], perf)
        with profiled, PssPeak(lambda: descendants(server.pid)) as pss:
            makespan, waits = asyncio.run(drive())
        cpu = meter.end()
    shutil.rmtree(root, ignore_errors=True)
    return finish(model, tasks, concurrency, makespan, waits, cpu, pss, load)


# --- the peers --------------------------------------------------------------------------------
@contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis of the peers' own, so its CPU and memory are theirs alone."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir,
         "--maxclients", "10000", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield url, process
    finally:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def peer_run(
    model: Model,
    tasks: int,
    concurrency: int,
    command: list[str],
    redis_pid: int,
    warm_up: Callable[[], None],
    submit: Callable[[], Any],
    first_progress: Callable[[Any], float],
) -> Figures:
    worker = subprocess.Popen(command, cwd=REPO, env=env())
    try:
        warm_up()
        model.reset(tasks)
        meter = CpuMeter(
            {
                "worker": lambda: sum(sum(proc_times(p)) for p in descendants(worker.pid)),
                "redis": lambda: proc_times(redis_pid)[0],
            }
        )
        load = os.getloadavg()[0]
        with PssPeak(lambda: [*descendants(worker.pid), redis_pid]) as pss:
            meter.begin()
            start = time.perf_counter()
            submitted = []
            for _ in range(tasks):
                submitted.append((time.time(), submit()))
            waits = [first_progress(result) - at for at, result in submitted]
            makespan = time.perf_counter() - start
            cpu = meter.end()
    finally:
        stop(worker)
    return finish(model, tasks, concurrency, makespan, waits, cpu, pss, load)


def run_celery(model: Model, tasks: int, pool: str, concurrency: int, redis_url: str,
               redis_pid: int) -> Figures:  # fmt: skip
    celery_work = _peer_module("celery_work", redis_url)
    celery_work.app.control.purge()
    command = [
        sys.executable, "-m", "celery", "-A", "bench.peers.celery_work", "worker",
        "--pool", pool, "--concurrency", str(concurrency), "-O", "fair", "--loglevel", "warning",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return peer_run(
        model,
        tasks,
        concurrency,
        command,
        redis_pid,
        lambda: celery_work.work.delay(model.url).get(timeout=60),
        lambda: celery_work.work.delay(model.url),
        lambda result: float(result.get(timeout=RESULT_TIMEOUT_SECONDS)["first_progress"]),
    )


def _peer_module(name: str, redis_url: str) -> Any:
    """``bench.peers.NAME``, imported afresh so that it reads this run's Redis address."""
    os.environ["BENCH_REDIS_URL"] = redis_url
    return importlib.reload(importlib.import_module(f"bench.peers.{name}"))


def run_huey(model: Model, tasks: int, kind: str, concurrency: int, redis_url: str,
             redis_pid: int) -> Figures:  # fmt: skip
    huey_work = _peer_module("huey_work", redis_url)
    huey_work.huey.flush()
    entry = (
        ["bench/peers/huey_gevent.py"] if kind == "greenlet" else ["-m", "huey.bin.huey_consumer"]
    )
    command = [
        sys.executable, *entry, "bench.peers.huey_work.huey", "--workers", str(concurrency),
        "--worker-type", kind, "--no-periodic", "--quiet",
    ]  # fmt: skip

    def get(result: Any) -> float:
        value = result.get(blocking=True, timeout=RESULT_TIMEOUT_SECONDS, max_delay=0.01)
        return float(value["first_progress"])

    return peer_run(
        model,
        tasks,
        concurrency,
        command,
        redis_pid,
        lambda: huey_work.work(model.url).get(blocking=True, timeout=60),
        lambda: huey_work.work(model.url),
        get,
    )


# --- the run ----------------------------------------------------------------------------------
@contextmanager
def model_server(delay: float | None = None) -> Iterator[tuple[Model, subprocess.Popen[bytes]]]:
    """The fake model server, answering after ``delay`` seconds (its own default: 0.25)."""
    port = free_port()
    delayed = () if delay is None else ("--delay", str(delay))
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.peers.model_server", "--port", str(port), *delayed],
        cwd=REPO,
        env=env(),
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.readline()  # it listens
    try:
        yield Model(f"http://127.0.0.1:{port}"), process
    finally:
        stop(process)


def tls_environment(certificates: str) -> dict[str, str]:
    """What a sandbox's TLS clients are given (theazo.sandbox.jail.tls_environment); a
    sandbox never sees the host's SSL_CERT_FILE, which would win over SSL_CERT_DIR."""
    return {"SSL_CERT_DIR": certificates, "REQUESTS_CA_BUNDLE": certificates}


def certified(certificates: str | None, measure: Callable[[], Figures]) -> Callable[[], Figures]:
    """``measure`` with the peer's workers finding TLS certificates in ``certificates``, as
    Theazo's sandboxes do: an httpx client then costs no parse of certifi's bundle (17 ms)."""

    def run() -> Figures:
        if certificates is None:
            return measure()
        saved = dict(os.environ)
        os.environ.update(tls_environment(certificates))  # the workers inherit it
        os.environ.pop("SSL_CERT_FILE", None)
        try:
            return measure()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    return run


def reused_process_cpu_ms(model: Model, certificates: str | None) -> float:
    """The agent's own CPU per task; with ``certificates``, TLS finds them where sandboxes do."""
    variables = env()
    if certificates:
        variables |= tls_environment(certificates)
        variables.pop("SSL_CERT_FILE", None)
    out = subprocess.run(
        [sys.executable, "-m", "bench.peers.work", "--url", model.url],
        cwd=REPO, env=variables, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return float(json.loads(out)["cpu_per_task_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="comma-separated parts of system names to run")
    parser.add_argument("--json", help="also write every run's figures here")
    parser.add_argument(
        "--perf", type=Path, help="perf record Theazo's server, zygotes and sandboxes into DIR"
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with model_server() as (model, _), redis_server() as (redis_url, redis):
        systems: dict[str, tuple[int, Callable[[], Figures]]] = {}
        for c in (200, 500, 1000):
            systems[f"theazo, concurrency {c}"] = (
                c,
                lambda c=c: run_theazo(  # type: ignore[misc]
                    model, args.tasks, args.sessions, c, args.perf and args.perf / f"perf-{c}.data"
                ),
            )
        for certificates in (None, SANDBOX_CERTIFICATES):
            suffix = ", SSL_CERT_DIR" if certificates else ""
            for kind, count in (("thread", 200), ("greenlet", 500)):
                systems[f"huey, {kind} workers{suffix}"] = (
                    count,
                    certified(certificates, lambda k=kind, c=count: run_huey(
                        model, args.tasks, k, c, redis_url, redis.pid)),  # type: ignore[misc]
                )  # fmt: skip
            for pool, count in (("threads", 200), ("gevent", 500)):
                systems[f"celery, {pool} pool{suffix}"] = (
                    count,
                    certified(certificates, lambda p=pool, c=count: run_celery(
                        model, args.tasks, p, c, redis_url, redis.pid)),  # type: ignore[misc]
                )  # fmt: skip
        if args.only:
            wanted = [w.strip() for w in args.only.split(",")]
            systems = {k: v for k, v in systems.items() if any(w in k for w in wanted)}
        results: dict[str, list[Figures]] = {name: [] for name in systems}
        for run in range(args.runs):
            for name, (_, measure) in systems.items():
                figures = measure()
                results[name].append(figures)
                print(f"run {run + 1}: {name:<26} {line(figures, args.tasks)}", flush=True)
        baseline = {
            "default": reused_process_cpu_ms(model, None),
            SANDBOX_CERTIFICATES: reused_process_cpu_ms(model, SANDBOX_CERTIFICATES),
        }
    print_table(results, args.tasks, baseline)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"tasks": args.tasks, "reused_process_cpu_ms": baseline,
                 "runs": {k: [f.__dict__ for f in v] for k, v in results.items()}},
                indent=1,
            )
        )  # fmt: skip


def line(f: Figures, tasks: int) -> str:
    parts = " ".join(f"{k} {v / tasks * 1000:.1f}" for k, v in f.cpu.items())
    return (
        f"makespan {f.makespan:6.1f} s  wait p50 {f.wait_p50:6.2f} s p99 {f.wait_p99:6.2f} s  "
        f"CPU/task {f.cpu_total / tasks * 1000:5.1f} ms ({parts})  PSS {f.pss_mb:6.0f} MB "
        f"({f.processes} proc)  running {f.share:4.0%} (peak {f.peak_active})  load {f.load:.2f}"
    )


def print_table(
    results: dict[str, list[Figures]], tasks: int, baseline_ms: dict[str, float]
) -> None:
    def med(runs: list[Figures], get: Callable[[Figures], float]) -> float:
        return statistics.median(get(f) for f in runs)

    print()
    print("| system | makespan | queue wait p50 / p99 | CPU per task (by process) | "
          "peak PSS | running while deep |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        if not runs:
            continue
        parts = ", ".join(
            f"{k} {med(runs, lambda f, k=k: f.cpu[k]) / tasks * 1000:.1f}"  # type: ignore[misc]
            for k in runs[0].cpu
        )
        print(
            f"| {name} | {med(runs, lambda f: f.makespan):.1f} s | "
            f"{med(runs, lambda f: f.wait_p50):.2f} / {med(runs, lambda f: f.wait_p99):.2f} s | "
            f"{med(runs, lambda f: f.cpu_total) / tasks * 1000:.1f} ms ({parts}) | "
            f"{med(runs, lambda f: f.pss_mb):.0f} MB | {med(runs, lambda f: f.share):.0%} |"
        )
    for certificates, ms in baseline_ms.items():
        print(
            f"the same agent in one reused process (50 threads, certificates: {certificates}): "
            f"{ms:.2f} ms CPU per task"
        )


if __name__ == "__main__":
    main()
