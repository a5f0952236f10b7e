"""Shared fixtures: real nodes (``theazo serve`` subprocesses on free ports), on each backend,
and databases for the store suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.support.databases import postgres_schema, skip_without_postgres
from tests.support.fake_models import FakeProvider, fake_provider
from tests.support.server import ServerProcess, new_api_key

BACKENDS = ["sqlite", "postgres"]
StartServer = Callable[..., AbstractContextManager[ServerProcess]]


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[FakeProvider]:
    """A fake OpenAI-compatible provider on 127.0.0.1 (outside the project: a fake is right)."""
    with fake_provider("openai") as provider:
        yield provider


@pytest.fixture(scope="module")
def anthropic_fake() -> Iterator[FakeProvider]:
    with fake_provider("anthropic") as provider:
        yield provider


@pytest.fixture(scope="session")
def api_key() -> str:
    return new_api_key()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each integration module runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        skip_without_postgres()
    backend_name: str = request.param
    return backend_name


@contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "postgres":
        with postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'theazo.db'}"


@pytest.fixture(scope="module")
def start_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, api_key: str
) -> StartServer:
    """Start a server on a fresh database of this module's backend, with extra options."""

    @contextmanager
    def start(
        *args: str, api_keys: Sequence[str] = (), env: Mapping[str, str] | None = None
    ) -> Iterator[ServerProcess]:
        workdir = tmp_path_factory.mktemp(f"{backend}-server")
        with (
            fresh_database(backend, workdir) as url,
            ServerProcess.start(
                workdir, api_keys=list(api_keys) or [api_key], args=args, database=url, env=env
            ) as process,
        ):
            yield process

    return start


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Iterator[ServerProcess]:
    """A server with default settings, shared by the tests of one module."""
    with start_server() as process:
        yield process


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url
