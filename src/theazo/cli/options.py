"""Parsing of option values users type: sizes and durations, with one-line errors."""

from __future__ import annotations

import re

import typer

from theazo import store
from theazo.core.durations import InvalidDuration, parse_duration
from theazo.core.ids import is_well_formed_key

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_MB = {"": 1.0, "b": 1 / 2**20, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2}


def megabytes(value: str) -> int:
    """``512`` (megabytes), ``512M``, ``2G``, ``2GiB``; ``0`` means no limit."""
    match = _SIZE.match(value)
    if match is None:
        raise typer.BadParameter(f"{value!r} is not a size: use e.g. 512M or 2G")
    unit = (match.group(2) or "").lower()[:1]
    return int(int(match.group(1)) * _SIZE_MB[unit])


def size_bytes(value: str) -> int:
    """``1048576`` (bytes), ``512K``, ``1M``, ``1MiB``."""
    match = _SIZE.match(value)
    if match is None:
        raise typer.BadParameter(f"{value!r} is not a size: use e.g. 512K or 1M")
    unit = (match.group(2) or "b").lower()[:1]
    return int(int(match.group(1)) * _SIZE_MB[unit] * 2**20)


def seconds(value: str) -> float:
    try:
        return parse_duration(value)
    except InvalidDuration as exc:
        raise typer.BadParameter(str(exc)) from exc


def retention(value: str) -> float:
    """A duration as ``seconds`` reads it, or whole days (``30d``); ``0`` keeps for ever."""
    days = re.fullmatch(r"\s*(\d+)\s*d\s*", value)
    if days:
        return int(days.group(1)) * 86400.0
    try:
        return parse_duration(value)
    except InvalidDuration:
        raise typer.BadParameter(
            f"{value!r} is not a retention: use e.g. '30d', '12h' or 0 to keep for ever",
            param_hint="--task-retention",
        ) from None


def positive_seconds(value: str) -> float:
    duration = seconds(value)
    if duration <= 0:
        raise typer.BadParameter(f"{value!r} must be more than zero")
    return duration


def whole_seconds(value: str) -> int:
    return round(seconds(value))


def schedule(value: str) -> tuple[float, ...]:
    """``5s,30s,2m``: durations separated by commas; empty for none."""
    parts = [part.strip() for part in value.split(",")]
    if parts == [""]:
        return ()
    return tuple(seconds(part) for part in parts)


def database_url(value: str) -> str:
    """A database URL the store knows, checked before anything starts."""
    try:
        store.check_url(value)
    except store.UnsupportedDatabase as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def api_keys(values: list[str] | None) -> list[str] | None:
    """Keys to register, each as a client will send it: a malformed one could never be used."""
    for key in values or ():
        if not is_well_formed_key(key):
            raise typer.BadParameter(
                "an API key is th_live_ or th_test_ and at least 32 more letters, digits, "
                "'-' or '_' (theazo keys create makes one)"
            )
    return values
