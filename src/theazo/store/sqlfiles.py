"""Named SQL blocks. A ``.sql`` file holds queries separated by ``-- name: <name>`` lines, so
every statement lives in a file a reviewer can read top to bottom, never in an f-string."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    text = resources.files(package).joinpath(filename).read_text()
    parts = _NAME.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    queries = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if not queries:
        raise ValueError(f"{package}/{filename} has no named queries")
    return queries


def load_text(package: str, filename: str) -> str:
    return resources.files(package).joinpath(filename).read_text()


def migration_files(package: str) -> list[tuple[int, str]]:
    """Numbered migrations (``0001_initial.sql``…) of a backend, in order."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_\w+\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)
