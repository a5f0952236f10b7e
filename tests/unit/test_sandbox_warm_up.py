"""The zygote's warm-up: a first real request with each HTTP client and model SDK imported,
leaving nothing behind (no thread, no descriptor, the environment as it was)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib.util, json, os, sys, threading
    for name in sys.argv[1].split(","):
        if name and importlib.util.find_spec(name) is not None:
            __import__(name)
    from theazo.sandbox import jail
    from theazo.sandbox.warm_up import warm_up

    environment = dict(os.environ)
    descriptors = sorted(os.listdir("/proc/self/fd"))
    answered = warm_up(jail.proxy_environment())
    print(json.dumps({
        "answered": answered,
        "threads": threading.active_count(),
        "children": open(f"/proc/self/task/{os.getpid()}/children").read().split(),
        "descriptors_left": sorted(set(os.listdir("/proc/self/fd")) - set(descriptors)),
        "environment_kept": dict(os.environ) == environment,
        "imported": [m for m in ("httpx", "requests", "openai", "anthropic") if m in sys.modules],
    }))
    """
)


def run_probe(modules: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, modules], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return answer


def test_each_imported_client_makes_a_first_request_and_leaves_nothing() -> None:
    answer = run_probe("ssl,httpx,requests,openai,anthropic")
    calls = {"httpx": 2, "requests": 2, "openai": 1, "anthropic": 1}
    imported = answer["imported"]
    assert isinstance(imported, list) and {"httpx", "requests"} <= set(imported)
    assert answer["answered"] == sum(calls[name] for name in imported)
    assert answer["threads"] == 1 and answer["children"] == []
    assert answer["descriptors_left"] == []
    assert answer["environment_kept"] is True


def test_nothing_to_warm_without_a_client() -> None:
    answer = run_probe("ssl")
    assert answer["imported"] == [] and answer["answered"] == 0
    assert answer["threads"] == 1 and answer["descriptors_left"] == []
