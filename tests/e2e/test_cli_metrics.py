"""``theazo serve --metrics`` and ``--log-format`` refuse what they cannot honour, in one line
naming the option, before the node starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import REPO


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THEAZO_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "theazo",
            "serve",
            "--database",
            f"sqlite:///{tmp_path}/t.db",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join(result.stderr.replace("│", " ").split())


def test_a_metrics_address_beyond_loopback_is_refused_unless_allowed(tmp_path: Path) -> None:
    refused = serve(tmp_path, "--metrics", "0.0.0.0:9464")
    assert refused.returncode == 2
    message = one_line(refused)
    assert "Invalid value for --metrics: 0.0.0.0:9464 is not a loopback address" in message
    assert "--metrics-allow-remote" in message
    assert not (tmp_path / "t.db").exists()  # refused before anything started


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("metrics.example.com:9464", "'metrics.example.com' is not an IP address or localhost"),
        ("127.0.0.1:99999", "'127.0.0.1:99999' does not end with a port number (1-65535)"),
        ("127.0.0.1", "'127.0.0.1' does not end with a port number"),
        ("::1:9464", "'::1:9464' is not HOST:PORT (an IPv6 host is written [::1]:PORT)"),
    ],
)
def test_a_malformed_metrics_address_is_named(tmp_path: Path, value: str, says: str) -> None:
    refused = serve(tmp_path, "--metrics", value)
    assert refused.returncode == 2
    assert f"Invalid value for --metrics: {says}" in one_line(refused)


def test_a_taken_metrics_port_stops_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = serve(tmp_path, "--port", "0", "--metrics", f"127.0.0.1:{port}")
    assert refused.returncode == 1
    assert f"theazo: --metrics: cannot listen on 127.0.0.1:{port}" in one_line(refused)


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    refused = serve(tmp_path, "--log-format", "xml")
    assert refused.returncode == 2
    assert "Invalid value for --log-format: 'xml' is not text or json" in one_line(refused)
