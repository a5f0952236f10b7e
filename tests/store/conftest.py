"""One suite for every store backend: each test gets a fresh, migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.databases import backend_urls
from theazo.core.models import NewTask
from theazo.core.states import Priority, Scheduling
from theazo.store import Store, StoreSettings, create_store


class ManualClock:
    """A clock tests move by hand, so leases expire without sleeping."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


StoreFactory = Callable[..., "AsyncIterator[Store]"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=backend_urls())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url: str = request.getfixturevalue(request.param)
    return url


@pytest.fixture
async def open_store(database_url: str, clock: ManualClock) -> AsyncIterator[Callable[..., object]]:
    opened: list[Store] = []

    async def make(**settings: object) -> Store:
        store = create_store(database_url, StoreSettings(**settings), clock)  # type: ignore[arg-type]
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: Callable[..., object]) -> Store:
    made = await open_store()  # type: ignore[misc]
    assert isinstance(made, Store)
    return made


def new_task(
    agent: str = "echo",
    priority: Priority = Priority.NORMAL,
    *,
    key: str | None = None,
    max_attempts: int = 1,
    payload: object = None,
    webhook: str | None = None,
    events: tuple[str, ...] = ("completed",),
) -> NewTask:
    return NewTask(
        agent=agent,
        input=payload,
        priority=priority,
        timeout_seconds=60,
        max_attempts=max_attempts,
        idempotency_key=key,
        webhook_url=webhook,
        webhook_events=events,
    )


FAIR = Scheduling.FAIR
FIFO = Scheduling.FIFO
