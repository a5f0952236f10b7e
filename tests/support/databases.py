"""Databases for tests: a SQLite file always; PostgreSQL when one is reachable."""

from __future__ import annotations


def backend_urls() -> list[str]:
    """Names of the fixtures that give a database URL, one per backend to test."""
    return ["sqlite_url"]
