"""Bearer tokens signed with the deployment's own secret rather than stored: a prefix, then
base64url of space-separated fields, a dot, and an HMAC-SHA256 of them for one purpose.

    <prefix><payload>.<signature>     payload: base64url of "field field …"

Any node checks one without a read; the price is that none can be revoked before it expires.
Stream tokens (core/stream_tokens.py) and dashboard sign-ins (dashboard/tokens.py) are two
such tokens; a purpose in every signature keeps one kind from passing for the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime


def seal(secret: str, prefix: str, purpose: str, fields: Sequence[str]) -> tuple[str, str]:
    """The token for ``fields`` (none may hold a space), and its payload."""
    payload = b64(" ".join(fields).encode())
    return f"{prefix}{payload}.{b64(sign(secret, purpose, payload))}", payload


def unseal(
    secret: str, prefix: str, purpose: str, token: str, count: int
) -> tuple[list[str], str] | None:
    """The ``count`` fields of a well-formed token signed for ``purpose``, and its payload;
    None for anything else."""
    if not token.startswith(prefix) or token.count(".") != 1:
        return None
    payload, signature = token[len(prefix) :].split(".")
    try:
        given = _unb64(signature)
        fields = _unb64(payload).decode().split(" ")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given, sign(secret, purpose, payload)) or len(fields) != count:
        return None
    return fields, payload


def unexpired(expiry: str, now: datetime) -> datetime | None:
    """The moment a token's expiry field names, if it is still to come."""
    if not expiry.isdigit():
        return None
    expires_at = datetime.fromtimestamp(int(expiry), UTC)
    return expires_at if expires_at > now else None


def sign(secret: str, purpose: str, payload: str) -> bytes:
    return hmac.new(secret.encode(), f"{purpose}:{payload}".encode(), hashlib.sha256).digest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
