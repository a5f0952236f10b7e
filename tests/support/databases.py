"""Databases for tests: a SQLite file always; PostgreSQL when one is reachable.

Each PostgreSQL test gets a schema of its own in the database named by
``THEAZO_TEST_POSTGRES_URL`` (default: the development machines' server), dropped afterwards,
so runs never collide. Without a reachable server the PostgreSQL half is skipped, with the
reason; with ``THEAZO_REQUIRE_POSTGRES=1`` (set by CI) it fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("THEAZO_TEST_POSTGRES_URL", DEFAULT_URL)


def postgres_required() -> bool:
    return os.environ.get("THEAZO_REQUIRE_POSTGRES", "") not in ("", "0")


def postgres_reason() -> str | None:
    """None when PostgreSQL is reachable, else why not."""
    try:
        with psycopg.connect(postgres_base_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {postgres_base_url()}: {str(exc).strip().splitlines()[0]}"
    return None


_REASON: list[str | None] = []


def skip_without_postgres() -> None:
    if not _REASON:
        _REASON.append(postgres_reason())
    reason = _REASON[0]
    if reason is None:
        return
    if postgres_required():
        pytest.fail(f"THEAZO_REQUIRE_POSTGRES is set, but {reason}")
    pytest.skip(reason)


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose tables live in a fresh schema, dropped on the way out."""
    skip_without_postgres()
    schema = f"theazo_test_{uuid.uuid4().hex[:12]}"
    base = postgres_base_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def backend_urls() -> list[str]:
    """Names of the fixtures that give a database URL, one per backend to test."""
    return ["sqlite_url", "postgres_url"]
