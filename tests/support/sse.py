"""Reading Server-Sent Events off the wire in tests, as a browser's EventSource would, with no
help from the SDK: what the server sends must stand on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class WireEvent:
    id: int
    event: str
    data: Any


def events_of(response: httpx.Response) -> Iterator[WireEvent]:
    """Each event of a stream (an ``httpx.stream`` response), in order."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in response.iter_lines():
        if not line:
            if data:
                yield WireEvent(int(fields["id"]), fields["event"], json.loads("\n".join(data)))
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


def read_until_end(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> list[WireEvent]:
    """A task stream's events, up to its ``end`` (the server closes it then)."""
    found = []
    with httpx.stream("GET", url, headers=headers, params=params, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in events_of(response):
            found.append(event)
            if event.event == "end":
                break
    return found
