from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess
from theazo import Theazo
from theazo.sdk import Session


@pytest.fixture
def theazo(server: ServerProcess) -> Iterator[Theazo]:
    with Theazo(api_key=server.api_key, base_url=server.base_url) as client:
        yield client


@pytest.fixture
def session(theazo: Theazo) -> Session:
    """A session of a user no other test uses."""
    return theazo.sessions.for_user(f"user_{uuid.uuid4().hex[:12]}")
