"""Shared fixtures: real servers (``theazo serve`` subprocesses on free ports) and real SDKs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, new_api_key


@pytest.fixture(scope="session")
def api_key() -> str:
    return new_api_key()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, api_key: str) -> Iterator[ServerProcess]:
    """A server with default settings, shared by the tests of one module."""
    with ServerProcess.start(tmp_path_factory.mktemp("server"), api_keys=[api_key]) as process:
        yield process


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"
