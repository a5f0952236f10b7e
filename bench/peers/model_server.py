"""A fake model server for ``bench/agent_work.py``: answers each request after a delay.

    python -m bench.peers.model_server --port PORT [--delay 0.25]

Stdlib asyncio (uvloop when installed), HTTP/1.1 with keep-alive, so it holds thousands of
connections in one process. Every ``POST`` is a model call: its JSON body names the task
(``task``) and the call's index (``step``, 0 to ``steps - 1``). The server counts them, and
from them how many tasks are running at once (first call seen, last answer not yet sent),
sampled every 10 ms. ``POST /reset`` with ``{"tasks": N, "steps": S}`` starts a run;
``GET /stats`` answers its counts. Neither is a model call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from dataclasses import dataclass, field
from typing import Any

SAMPLE_SECONDS = 0.01


@dataclass
class Run:
    tasks: int = 0
    steps: int = 4
    calls: int = 0
    started: int = 0  # tasks whose first call arrived
    finished: int = 0  # tasks whose last call was answered
    seen: set[str] = field(default_factory=set)
    in_flight: int = 0
    peak_active: int = 0
    deep_samples: list[int] = field(default_factory=list)  # active tasks while some wait
    first_call: float = 0.0
    last_start: float = 0.0  # when the last task made its first call

    def stats(self) -> dict[str, Any]:
        deep = self.deep_samples
        return {
            "calls": self.calls,
            "tasks_started": self.started,
            "tasks_finished": self.finished,
            "peak_active": self.peak_active,
            "mean_active_while_deep": sum(deep) / len(deep) if deep else 0.0,
            "deep_samples": len(deep),
            "deep_seconds": self.last_start - self.first_call,
        }


run = Run()


async def sample() -> None:
    """While tasks are still to start, how many run (the window starts at the first call)."""
    while True:
        await asyncio.sleep(SAMPLE_SECONDS)
        active = run.started - run.finished
        run.peak_active = max(run.peak_active, active)
        if 0 < run.started < run.tasks:
            run.deep_samples.append(active)


def model_call(body: dict[str, Any]) -> None:
    task, step = str(body.get("task")), int(body.get("step", 0))
    run.calls += 1
    if step == 0 and task not in run.seen:
        run.seen.add(task)
        run.started += 1
        now = time.monotonic()
        run.first_call = run.first_call or now
        run.last_start = now


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    global run
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            _, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length)) if length else {}
            if path == "/reset":
                run = Run(tasks=int(body["tasks"]), steps=int(body.get("steps", 4)))
                answer: dict[str, Any] = {"ok": True}
            elif path == "/stats":
                answer = run.stats()
            else:
                model_call(body)
                await asyncio.sleep(delay)
                if int(body.get("step", 0)) == run.steps - 1:
                    run.finished += 1
                answer = {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}
            payload = json.dumps(answer).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int, delay: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, delay), "127.0.0.1", port, backlog=4096
    )
    sampler = asyncio.create_task(sample())
    print(f"model server on {port}", flush=True)
    async with server:
        await server.serve_forever()
    sampler.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.25)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.delay))


if __name__ == "__main__":
    main()
