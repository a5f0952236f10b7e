"""Public identifiers and API keys: random, URL-safe, unguessable."""

from __future__ import annotations

import hashlib
import hmac
import secrets

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_BYTES = 16  # 128 bits: unguessable, and no collision in any realistic lifetime
KEY_PREFIXES = ("th_live_", "th_test_")
_KEY_MIN_RANDOM_CHARS = 32


def _base62(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits)) or "0"


def new_id(prefix: str) -> str:
    return f"{prefix}_{_base62(secrets.token_bytes(_ID_BYTES))}"


def new_task_id() -> str:
    return new_id("task")


def new_session_id() -> str:
    return new_id("sess")


def new_project_id() -> str:
    return new_id("proj")


def new_api_key(*, live: bool = True) -> str:
    prefix = KEY_PREFIXES[0] if live else KEY_PREFIXES[1]
    return prefix + secrets.token_urlsafe(32)  # 43 URL-safe characters


def is_well_formed_key(key: str) -> bool:
    prefix = next((p for p in KEY_PREFIXES if key.startswith(p)), None)
    if prefix is None:
        return False
    rest = key[len(prefix) :]
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return len(rest) >= _KEY_MIN_RANDOM_CHARS and set(rest) <= allowed


def hash_api_key(key: str) -> str:
    """Keys carry 256 random bits, so one SHA-256 round is enough; no salt is needed."""
    return hashlib.sha256(key.encode()).hexdigest()


def hashes_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def key_hint(key: str) -> str:
    """What we may show of a key after creating it: its prefix and last four characters."""
    return f"{key[:8]}…{key[-4:]}"
