"""Two versions of Theazo side by side, in one run: the sandbox start and the no-op throughput
of a baseline commit against this working tree, interleaved so the machine's noise hits both.

    python bench/compare.py --baseline 6d3386a [--rounds 3] [--tasks 2000] [--preload MODULES]

The baseline is checked out into a temporary git worktree; each measurement runs that tree's
own ``bench/run.py --only sandbox_start`` and ``bench/peers.py --only theazo``, with the tree's
``src`` first on ``PYTHONPATH`` (so the same virtual environment serves both). The table shows
each figure's median over the rounds and the current tree's change against the baseline.
Beside the throughput, the CPU per task of each part, read from /proc while it runs: the
server, its zygotes, the sandboxes (the zygotes' reaped children) and the client.
``--preload`` (repeatable) also runs the working tree with the zygotes' preload set to that
list (``none`` for none), to show what the default preload costs a no-op task.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `bench.…`, when run as a script

from bench.common import children_by_parent, cpu_seconds  # noqa: E402

PEERS_LINE = re.compile(r"theazo \(SQLite\)\s+(\d+) tasks/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+)")


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="theazo-baseline-"))
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
            capture_output=True,
        )


def tree_env(tree: Path, preload: str | None = None) -> dict[str, str]:
    """This environment with the tree's code first on the path (and the zygotes' preload)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree)])
    if preload is not None:
        env["THEAZO_SANDBOX_PRELOAD"] = preload
    return env


def run_in(tree: Path, *command: str) -> str:
    done = subprocess.run(
        [sys.executable, *command],
        cwd=tree,
        env=tree_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def sandbox_start(tree: Path) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        run_in(tree, "bench/run.py", "--only", "sandbox_start", "--json", out.name)
        document = json.loads(Path(out.name).read_text())
    (result,) = document["results"]
    return {f["label"]: f["value"] for f in result["figures"]}


class CpuByPart:
    """The CPU seconds of a running benchmark's Theazo processes from its first task on (the
    zygotes' imports at start are not a task's cost): its server (a child of the benchmark),
    the server's zygotes (a spare is a zygote's child, so it counts under sandboxes once
    reaped) and the benchmark itself, the client."""

    INTERVAL_SECONDS = 0.2  # each reading walks /proc once, on the cores being measured

    def __init__(self, client: int) -> None:
        self.client = client
        self.latest: dict[tuple[int, str], float] = {}
        self.at_first_task: dict[tuple[int, str], float] | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(self.INTERVAL_SECONDS):
            with contextlib.suppress(OSError, ValueError, IndexError):  # a process just gone
                self._read()

    def _read(self) -> None:
        readings = {(self.client, "client"): cpu_seconds(self.client)}
        children = children_by_parent()
        for server in children.get(self.client, []):
            readings[server, "server"] = cpu_seconds(server)
            for zygote in children.get(server, []):
                own = cpu_seconds(zygote)
                readings[zygote, "zygotes"] = own
                readings[zygote, "sandboxes"] = cpu_seconds(zygote, reaped_children=True) - own
        for key, seconds in readings.items():  # a process read as it went reads as 0
            self.latest[key] = max(seconds, self.latest.get(key, 0.0))
        if self.at_first_task is None and any(
            seconds > 0 for (_, part), seconds in self.latest.items() if part == "sandboxes"
        ):
            self.at_first_task = dict(self.latest)

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        start = self.at_first_task or {}
        totals = dict.fromkeys(("server", "zygotes", "sandboxes", "client"), 0.0)
        for (pid, part), seconds in self.latest.items():
            totals[part] += seconds - start.get((pid, part), 0.0)
        return totals


def throughput(tree: Path, tasks: int, preload: str | None) -> dict[str, float]:
    command = ["bench/peers.py", "--only", "theazo", "--runs", "1", "--tasks", str(tasks)]
    with subprocess.Popen(
        [sys.executable, *command],
        cwd=tree,
        env=tree_env(tree, preload),
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        cpu = CpuByPart(process.pid)
        text, _ = process.communicate()
        seconds = cpu.stop()
    match = PEERS_LINE.search(text)
    if process.returncode != 0 or match is None:
        raise RuntimeError(f"no Theazo figures in:\n{text}")
    return {
        "throughput (tasks/s)": float(match.group(1)),
        "round trip p50 (ms)": float(match.group(2)),
        "round trip p99 (ms)": float(match.group(3)),
    } | {f"CPU/task {part} (ms)": s * 1000 / tasks for part, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        help="also run the working tree with this --sandbox-preload ('none' for none); repeatable",
    )
    args = parser.parse_args()
    with worktree(args.baseline) as baseline:
        runs: dict[str, tuple[Path, str | None]] = {"baseline": (baseline, None)}
        runs["current"] = (REPO, None)
        runs |= {f"preload={p}": (REPO, p) for p in args.preload}
        samples: dict[str, dict[str, list[float]]] = {name: {} for name in runs}
        for round_number in range(1, args.rounds + 1):
            for name, (tree, preload) in runs.items():
                figures = sandbox_start(tree) | throughput(tree, args.tasks, preload)
                for figure, value in figures.items():
                    samples[name].setdefault(figure, []).append(value)
                shown = ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
                print(f"round {round_number} {name}: {shown}", flush=True)
    print()
    others = [name for name in runs if name != "baseline"]
    print(f"{'figure':<28}{'baseline':>12}" + "".join(f"{n:>22}" for n in others))
    for figure, values in samples["baseline"].items():
        before = statistics.median(values)
        cells = ""
        for name in others:
            after = statistics.median(samples[name].get(figure, [float("nan")]))
            change = (after - before) / before * 100 if before else float("nan")
            cells += f"{after:>13.2f} ({change:>+5.1f}%)"
        print(f"{figure:<28}{before:>12.2f}{cells}")


if __name__ == "__main__":
    main()
