"""The TypeScript SDK's own tests (clients/typescript), run by the README's test command.

``npm ci && npm test`` builds the package, checks its types, format and exports, and runs its
Node tests, which start real ``theazo serve`` processes with this interpreter
(``THEAZO_TEST_PYTHON``). Without Node 20+ and npm the test is skipped with its reason; with
``THEAZO_REQUIRE_NODE=1`` (set by CI) it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.support.server import REPO

PACKAGE = REPO / "clients" / "typescript"
MIN_NODE_MAJOR = 20
OUTPUT_TAIL_LINES = 40  # the runner's summary, or the step that failed
FAILURE_LINES = 30  # of each failing test: its name, assertion, expected and actual


def node_required() -> bool:
    return os.environ.get("THEAZO_REQUIRE_NODE", "") not in ("", "0")


def node_missing() -> str | None:
    """None when Node 20+ and npm are installed, else why not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node and npm are not installed: the TypeScript SDK's tests need Node 20 or later"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major[1]) < MIN_NODE_MAJOR:
        return f"node {version or '(no version)'} is too old: the TypeScript SDK needs Node 20"
    return None


@pytest.mark.timeout(900)
def test_the_typescript_sdk_passes_its_tests_against_real_servers() -> None:
    reason = node_missing()
    if reason is not None:
        if node_required():
            pytest.fail(f"THEAZO_REQUIRE_NODE is set, but {reason}")
        pytest.skip(reason)
    env = {**os.environ, "THEAZO_TEST_PYTHON": sys.executable}
    for command in (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "test"]):
        run = subprocess.run(
            command, cwd=PACKAGE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        if run.returncode != 0:
            output = run.stdout.decode(errors="replace").splitlines()
            pytest.fail(f"`{' '.join(command)}` in {PACKAGE} failed:\n{failures(output)}")


def failures(output: list[str]) -> str:
    """What to show of a failed run: each failing test (TAP ``not ok``), then the end."""
    shown = []
    for index, line in enumerate(output):
        if re.match(r"\s*not ok ", line):
            shown += [*output[index : index + FAILURE_LINES], "..."]
    return "\n".join(shown + output[-OUTPUT_TAIL_LINES:])
