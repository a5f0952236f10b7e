"""Two versions of Theazo side by side, in one run: the sandbox start and the no-op throughput
of a baseline commit against this working tree, interleaved so the machine's noise hits both.

    python bench/compare.py --baseline 6d3386a [--rounds 3] [--tasks 2000]

The baseline is checked out into a temporary git worktree; each measurement runs that tree's
own ``bench/run.py --only sandbox_start`` and ``bench/peers.py --only theazo``, with the tree's
``src`` first on ``PYTHONPATH`` (so the same virtual environment serves both). The table shows
each figure's median over the rounds and the current tree's change against the baseline.
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
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def run_in(tree: Path, *command: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree)])
    done = subprocess.run(
        [sys.executable, *command], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def sandbox_start(tree: Path) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        run_in(tree, "bench/run.py", "--only", "sandbox_start", "--json", out.name)
        document = json.loads(Path(out.name).read_text())
    (result,) = document["results"]
    return {f["label"]: f["value"] for f in result["figures"]}


def throughput(tree: Path, tasks: int) -> dict[str, float]:
    text = run_in(tree, "bench/peers.py", "--only", "theazo", "--runs", "1", "--tasks", str(tasks))
    match = PEERS_LINE.search(text)
    if match is None:
        raise RuntimeError(f"no Theazo figures in:\n{text}")
    return {
        "throughput (tasks/s)": float(match.group(1)),
        "round trip p50 (ms)": float(match.group(2)),
        "round trip p99 (ms)": float(match.group(3)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {"baseline": {}, "current": {}}
    with worktree(args.baseline) as baseline:
        trees = {"baseline": baseline, "current": REPO}
        for round_number in range(1, args.rounds + 1):
            for name, tree in trees.items():
                figures = sandbox_start(tree) | throughput(tree, args.tasks)
                for figure, value in figures.items():
                    samples[name].setdefault(figure, []).append(value)
                shown = ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
                print(f"round {round_number} {name}: {shown}", flush=True)
    print()
    print(f"{'figure':<28}{'baseline':>12}{'current':>12}{'change':>10}")
    for figure, values in samples["baseline"].items():
        before = statistics.median(values)
        after = statistics.median(samples["current"].get(figure, [float("nan")]))
        change = (after - before) / before * 100 if before else float("nan")
        print(f"{figure:<28}{before:>12.2f}{after:>12.2f}{change:>+9.1f}%")


if __name__ == "__main__":
    main()
