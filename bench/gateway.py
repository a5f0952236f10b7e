"""What the model gateway adds to a model call: latency per call, p50 and p99.

A real ``theazo serve`` with ``--llm-provider`` pointing at the fake OpenAI-compatible server
of the tests (tests/support/fake_models.py, on 127.0.0.1), and an agent in a sandbox that
calls it with the official ``openai`` SDK, one call at a time on a kept-alive connection, in
three ways taken in turn (so that noise falls on all three alike):

* ``gateway``: ``openai.OpenAI()`` as the sandbox is set up: through the gateway, which
  removes the dummy key, adds the real one, forwards with httpx, meters the usage and charges
  it to the task;
* ``relay``: the same SDK at the fake's port on the sandbox's own loopback, forwarded to the
  host's by the egress proxy (``--sandbox-allow-host 127.0.0.1:PORT``): the nearest a sandbox
  can come to calling the provider directly, a plain TCP copy;
* ``host``: the same SDK on the host, outside any sandbox, at the fake itself.

Whole answers and streamed ones (the gateway then also asks for the usage chunk and drops
it). The figure is each way's p50 and p99, and the gateway's p50 and p99 minus the relay's.

    python bench/gateway.py [--calls 500]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.…`, `tests.…` as a script

from tests.support.fake_models import PRICES_TOML, fake_provider
from tests.support.server import ServerProcess

from bench.common import percentile
from theazo import Theazo

KEY_ENV = "THEAZO_BENCH_PROVIDER_KEY"
WARMUP = 20  # calls of each way not counted: connections, the SDK's first request

AGENT = """
import os, time, openai
gateway = openai.OpenAI(max_retries=0, timeout=30)
relay = openai.OpenAI(max_retries=0, timeout=30, api_key="none",
                      base_url=f"http://127.0.0.1:{input['port']}/v1")
messages = [{"role": "user", "content": "hello world"}]
times = {}
for stream in (False, True):
    for number in range(input["warmup"] + input["calls"]):
        for name, client in (("gateway", gateway), ("relay", relay)):
            started = time.perf_counter()
            if stream:
                for _ in client.chat.completions.create(
                        model="fake-gpt", messages=messages, stream=True):
                    pass
            else:
                client.chat.completions.create(model="fake-gpt", messages=messages)
            if number >= input["warmup"]:
                key = f"{name} {'streamed' if stream else 'whole'}"
                times.setdefault(key, []).append(time.perf_counter() - started)
result = times
"""


def host_times(port: int, calls: int) -> dict[str, list[float]]:
    client = openai.OpenAI(
        max_retries=0, timeout=30, api_key="none", base_url=f"http://127.0.0.1:{port}/v1"
    )
    messages: Any = [{"role": "user", "content": "hello world"}]
    times: dict[str, list[float]] = {}
    for stream in (False, True):
        for number in range(WARMUP + calls):
            started = time.perf_counter()
            if stream:
                for _ in client.chat.completions.create(
                    model="fake-gpt", messages=messages, stream=True
                ):
                    pass
            else:
                client.chat.completions.create(model="fake-gpt", messages=messages)
            if number >= WARMUP:
                key = f"host {'streamed' if stream else 'whole'}"
                times.setdefault(key, []).append(time.perf_counter() - started)
    return times


def measure(calls: int, workdir: Path) -> dict[str, list[float]]:
    prices = workdir / "prices.toml"
    prices.write_text(PRICES_TOML)
    with fake_provider("openai") as fake:
        args = [
            "--llm-provider", f"fake=openai,{fake.base_url},{KEY_ENV}",
            "--llm-prices", str(prices),
            "--sandbox-allow-host", f"127.0.0.1:{fake.port}",
            "--compute-price", "0",
            "--task-timeout", "1h",
        ]  # fmt: skip
        env = {KEY_ENV: f"sk-bench-{secrets.token_hex(8)}"}
        with (
            ServerProcess.start(workdir, args=args, env=env) as server,
            Theazo(api_key=server.api_key, base_url=server.base_url, timeout=3600) as theazo,
        ):
            task = theazo.sessions.for_user("bench").run(
                agent="attacker",
                input={
                    "code": textwrap.dedent(AGENT),
                    "port": fake.port,
                    "calls": calls,
                    "warmup": WARMUP,
                },
                timeout="1h",
            )
            if task.status != "completed":
                raise RuntimeError(f"the benchmark's agent failed: {task.error}")
            times: dict[str, list[float]] = dict(task.output)
            times |= host_times(fake.port, calls)
            metered = task.usage.tokens.input
            expected = 2 * (WARMUP + calls) * 1001  # the gateway's calls, whole and streamed
            if metered != expected:
                raise RuntimeError(f"metered {metered} input tokens, expected {expected}")
    return times


def report(times: dict[str, list[float]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for key in sorted(times):
        values = times[key]
        figures[key] = {
            "calls": len(values),
            "p50_ms": round(percentile(values, 50) * 1000, 3),
            "p99_ms": round(percentile(values, 99) * 1000, 3),
        }
    for kind in ("whole", "streamed"):
        gateway, relay = figures[f"gateway {kind}"], figures[f"relay {kind}"]
        figures[f"added by the gateway, {kind}"] = {
            "p50_ms": round(gateway["p50_ms"] - relay["p50_ms"], 3),
            "p99_ms": round(gateway["p99_ms"] - relay["p99_ms"], 3),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="counted calls of each way")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="theazo-bench-gateway-", dir=os.getcwd()) as folder:
        figures = report(measure(options.calls, Path(folder)))
    for key, value in figures.items():
        print(f"{key:32} {json.dumps(value)}")


if __name__ == "__main__":
    main()
