"""Public identifiers and API keys: random, URL-safe, unguessable."""

from __future__ import annotations

import hashlib
import hmac
import secrets

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_CHARS = 22  # 22 base62 characters: 131 random bits, unguessable, never colliding
# A random byte below 248 (4 times 62) maps to a base62 character uniformly; others are dropped.
_KEEP = bytes(range(248, 256))
_TO_BASE62 = bytes.maketrans(bytes(range(248)), (_BASE62 * 4).encode())
KEY_PREFIXES = ("th_live_", "th_test_")
_KEY_MIN_RANDOM_CHARS = 32


def random_base62(length: int) -> str:
    """``length`` uniformly random base62 characters (rejection sampling over random bytes,
    two C calls instead of a Python loop per character)."""
    chars = b""
    while len(chars) < length:
        chars += secrets.token_bytes(length + 8).translate(_TO_BASE62, _KEEP)
    return chars[:length].decode()


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_base62(_ID_CHARS)}"


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


def new_secret_token() -> str:
    """A secret of the deployment's own (256 random bits), e.g. to sign stream tokens."""
    return secrets.token_urlsafe(32)
