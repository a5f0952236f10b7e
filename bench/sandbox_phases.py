"""Where a sandbox's CPU goes on the work agents do, from inside it.

    python bench/sandbox_phases.py [--tasks 30]

One `theazo serve` with its default isolation and preload, and the fake model server of
``bench/agent_work.py`` answering at once (``--delay 0``). Each task (the ``phases`` agent in
``bench/agents.py``) reads its own CPU time and page faults: what the sandbox spent from its
clone to the agent's first line (building its walls, waiting, taking its task), then an httpx
client made and four calls made with it, twice: cold, as every task makes them, and warm, as a
reused process would. Cold less warm is what a fresh process per task costs the agent; the
faults are mostly pages copied on write from the zygote. Medians over the tasks.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…`, when run as a script

from bench.agent_work import model_server
from bench.peers.processes import theazo_server

PARTS = ("before", "cold_client", "cold_calls", "warm_client", "warm_calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30)
    tasks = parser.parse_args().tasks
    from theazo import Theazo

    with model_server(delay=0) as (model, _):
        port = model.url.rsplit(":", 1)[1]
        root = tempfile.mkdtemp(prefix="bench-phases-")
        extra = ("--sandbox-allow-host", f"127.0.0.1:{port}", "--sandbox-root", root)
        try:
            with (
                theazo_server(None, 2, extra) as (base, key, _),
                Theazo(api_key=key, base_url=base) as client,
            ):
                session = client.sessions.for_user("phases")
                inputs = {"url": model.url}
                runs = [session.run(agent="phases", input=inputs) for _ in range(tasks)]
        finally:
            shutil.rmtree(root, ignore_errors=True)
    figures: list[dict[str, Any]] = [run.output for run in runs if run.status == "completed"]
    print(f"{len(figures)} of {tasks} tasks; medians: CPU ms / page faults")
    for part in PARTS:
        cpu = statistics.median(f[part][0] for f in figures)
        faults = statistics.median(f[part][1] for f in figures)
        print(f"  {part:12} {cpu:6.2f} ms  {faults:5.0f} faults")
    extra_cpu = sum(
        statistics.median(f[f"cold_{p}"][0] - f[f"warm_{p}"][0] for f in figures)
        for p in ("client", "calls")
    )
    print(f"  a fresh process costs the agent {extra_cpu:.2f} ms more than a reused one")


if __name__ == "__main__":
    main()
