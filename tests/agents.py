"""Agents that exist only to test how Theazo treats agents that misbehave or take time."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.sandboxes import process_tag
from theazo import Context, agent
from theazo.sandbox import linux, protocol


def _name_process(ctx: Context, role: str = "a") -> None:
    """Name this process after the task, so a test can find it from the host (see
    tests/support/sandboxes.py): inside its PID namespace a sandbox cannot know its pid."""
    linux.set_process_name(process_tag(ctx.task_id, role))


@agent("noop")
def noop(ctx: Context, input: Any) -> None:
    return None


@agent("sleeper")
def sleeper(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``seconds``, reporting its pid and workdir first so tests can watch them."""
    marker = Path(ctx.workdir) / "marker"
    marker.write_text("here")
    _name_process(ctx)
    ctx.progress(0.0, f"pid={os.getpid()} workdir={ctx.workdir}")
    time.sleep(float(input.get("seconds", 30)))
    return {"slept": input.get("seconds", 30)}


@agent("async_sleeper")
async def async_sleeper(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    _name_process(ctx)
    ctx.progress(0.0, f"pid={os.getpid()} workdir={ctx.workdir}")
    await asyncio.sleep(float(input.get("seconds", 30)))
    return {"slept": input.get("seconds", 30)}


@agent("raiser")
def raiser(ctx: Context, input: Any) -> None:
    raise RuntimeError("the agent failed on purpose")


@agent("bad_output")
def bad_output(ctx: Context, input: Any) -> Any:
    return {"not json": {1, 2, 3}}


@agent("big_output")
def big_output(ctx: Context, input: dict[str, Any]) -> str:
    return "x" * int(input.get("bytes", 2 * 1024 * 1024))


@agent("exiter")
def exiter(ctx: Context, input: Any) -> None:
    os._exit(3)


@agent("segfault")
def segfault(ctx: Context, input: Any) -> None:
    """Reads address 0: a real fault. (A signal it sent itself would be ignored: a sandbox is
    process 1 of its PID namespace, which the kernel spares signals it has no handler for.)"""
    ctypes.string_at(0)


@agent("memory_hog")
def memory_hog(ctx: Context, input: Any) -> int:
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024 * 1024))
    return len(blocks)


@agent("cpu_burner")
def cpu_burner(ctx: Context, input: Any) -> int:
    total = 0
    while True:
        total += 1


@agent("reporter")
def reporter(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Reports progress and charges, then returns what it saw of its context."""
    steps = int(input.get("steps", 3))
    for step in range(1, steps + 1):
        ctx.progress(step / steps, f"step {step} of {steps}")
        ctx.charge(input.get("charge", 0))
    return {
        "task_id": ctx.task_id,
        "session_id": ctx.session_id,
        "user_id": ctx.user_id,
        "env": sorted(os.environ),
        "secret_seen": any("th_live_" in v or "th_test_" in v for v in os.environ.values()),
    }


@agent("forker")
def forker(ctx: Context, input: Any) -> None:
    """Leaves a grandchild in its process group, then sleeps: a cancel must kill both."""
    pid = os.fork()
    if pid == 0:
        _name_process(ctx, "g")
        time.sleep(60)
        os._exit(0)
    _name_process(ctx)
    ctx.progress(0.0, f"pid={os.getpid()} child={pid} workdir={ctx.workdir}")
    time.sleep(60)


@agent("recorder")
def recorder(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Appends ``task attempt node`` to ``<dir>/executions.log`` (an atomic append; the
    directory is one the test's servers show their sandboxes with --sandbox-mount, and the node
    is the TEST_NODE_NAME they pass with --sandbox-env), so tests can count how many times each
    task really ran and where, then sleeps."""
    line = f"{ctx.task_id} {ctx.attempt} {os.environ.get('TEST_NODE_NAME', '-')}\n"
    with open(Path(input["dir"]) / "executions.log", "a") as log:
        log.write(line)
    _name_process(ctx)
    ctx.progress(0.0, f"pid={os.getpid()}")
    time.sleep(float(input.get("seconds", 0)))
    return {"pid": os.getpid()}


@agent("spender")
def spender(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Charges ``amount`` every ``every`` seconds, ``steps`` times: a runaway spender."""
    steps = int(input.get("steps", 100))
    for step in range(steps):
        ctx.charge(input.get("amount", 10), description=f"step {step}")
        time.sleep(float(input.get("every", 0.05)))
    return {"steps": steps}


@agent("unstorable_output")
def unstorable_output(ctx: Context, input: dict[str, Any]) -> Any:
    """Returns what no backend can store: with ``{"kind": "deep"}`` arrays nested 100 deep,
    otherwise a string holding a NUL."""
    if input.get("kind") == "deep":
        value: Any = 1
        for _ in range(100):
            value = [value]
        return value
    return "a\x00b"


@agent("forged_output")
def forged_output(ctx: Context, input: Any) -> None:
    """Writes a result frame of its own with NaN in it, as any agent could (it shares its
    process with the sandbox's own code), and exits without returning."""
    protocol.send_encoded(ctx._channel, b'{"t":"result","output":NaN}')
    os._exit(0)


@agent("nul_texts")
def nul_texts(ctx: Context, input: Any) -> None:
    """Reports progress, then fails, each with a NUL in its text."""
    ctx.progress(0.5, "half\x00way")
    raise RuntimeError("broke\x00here")


@agent("attacker")
def attacker(ctx: Context, input: dict[str, Any]) -> Any:
    """Runs ``input["code"]``, an attack written by a test, as any agent's code could; the
    code sets ``result``, which is returned. The escape suite's hostile agent."""
    scope: dict[str, Any] = {"ctx": ctx, "input": input, "result": None}
    exec(input["code"], scope)
    return scope["result"]


@agent("ticker")
def ticker(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Reports ``step/steps`` every ``every`` seconds, printing a line to stdout (and, with
    ``stderr``, one to stderr) at each step: something to watch live."""
    steps, every = int(input.get("steps", 5)), float(input.get("every", 0.1))
    for step in range(1, steps + 1):
        print(f"tick {step}", flush=True)
        if input.get("stderr"):
            print(f"warn {step}", file=sys.stderr, flush=True)
        ctx.progress(step / steps, f"step {step} of {steps}")
        time.sleep(every)
    return {"steps": steps}


@agent("chatty")
def chatty(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Has a subprocess print a line, logs a warning, then writes ``mib`` MiB of output in
    1 KiB lines, and returns."""
    subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
    logging.warning("about to be chatty")
    line = "x" * 1023 + "\n"
    for _ in range(int(float(input.get("mib", 10)) * 1024)):
        sys.stdout.write(line)
    sys.stdout.flush()
    return {"done": True}


def _build_resources() -> dict[str, Any]:
    import httpx

    return {"seen": [], "client": httpx.Client(timeout=5), "loaded_by": "setup"}


@agent("prepared", setup=_build_resources)
def prepared(ctx: Context, input: Any) -> dict[str, Any]:
    """Reports what its setup built, then changes it: no later task may see the change."""
    resources = ctx.resources
    seen = list(resources["seen"])
    resources["seen"].append(ctx.task_id)
    return {
        "loaded_by": resources["loaded_by"],
        "seen_before": seen,
        "client_open": not resources["client"].is_closed,
    }


def _build_model_client() -> Any:
    """Built before any task, as the docs advise: it must find the sandboxes' environment
    (the model gateway's address and key, the egress proxy) already set. None on a server
    with no gateway, which these agents are loaded into too."""
    if "OPENAI_API_KEY" not in os.environ:
        return None
    import openai

    return openai.OpenAI(max_retries=0, timeout=20)


@agent("prepared_model", setup=_build_model_client)
def prepared_model(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """One chat completion with the client its setup built."""
    if ctx.resources is None:
        raise RuntimeError("setup found no OPENAI_API_KEY: it ran before the environment was set")
    answer = ctx.resources.chat.completions.create(
        model=input["model"], messages=[{"role": "user", "content": "hello world"}]
    )
    return {"text": answer.choices[0].message.content, "base_url": str(ctx.resources.base_url)}


@agent("hostile_frames")
def hostile_frames(ctx: Context, input: dict[str, Any]) -> None:
    """Writes the message bodies it is given straight onto its channel, as any agent could,
    then waits: if a message wedged its task, nothing else would end it but the timeout. A
    body ``hex:…`` is sent as those bytes."""
    for body in input["bodies"]:
        raw = bytes.fromhex(body[4:]) if body.startswith("hex:") else body.encode()
        protocol.send_encoded(ctx._channel, raw)
    time.sleep(float(input.get("then_wait", 60)))


@agent("frame_flood")
def frame_flood(ctx: Context, input: dict[str, Any]) -> dict[str, int]:
    """Sends ``count`` progress reports as fast as it can, then returns."""
    count = int(input.get("count", 100_000))
    for number in range(count):
        ctx.progress(number / count, f"{number}")
    return {"sent": count}


@agent("listening_sockets")
def listening_sockets(ctx: Context, input: Any) -> dict[str, Any]:
    """The descriptors this sandbox holds that are listening sockets (it should hold none of
    the server's), with what it can learn of each."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with sock:
            try:
                listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                address = sock.getsockname()
            except OSError:
                continue
            if listening:
                found.append({"fd": fd, "address": str(address)})
    return {"listening": found}


@agent("cpu_crowd")
def cpu_crowd(ctx: Context, input: dict[str, Any]) -> str:
    """Has ``processes`` children burn ``seconds`` of CPU each, and waits: each stays under a
    limit per process, together they pass it."""
    children = []
    for _ in range(int(input.get("processes", 4))):
        pid = os.fork()
        if pid == 0:
            while time.process_time() < float(input.get("seconds", 1.5)):
                pass
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return "done"
