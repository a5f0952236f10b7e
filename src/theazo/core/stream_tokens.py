"""Stream tokens: what a browser passes as ``?token=`` to read one session's event streams and
logs, since ``EventSource`` cannot send an ``Authorization`` header.

An application's back end mints one with its API key (``POST /v1/sessions/:sid/tokens``) and
hands it to its page; the API key never reaches the browser. A token is read-only (streams and
logs only), names one session of one project, and expires (15 minutes by default, a day at
most). It is signed, not stored: any node checks it with the deployment's own secret, so
minting one costs no write and no node needs to have seen it. The price of that: a token
cannot be revoked before it expires (keep it short), and like any bearer secret in a URL it
may be kept in proxy logs or browser history, which is why it reads one user's session only.

    thst_<payload>.<signature>     payload: base64url of "project session expiry"
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "thst_"
_SIGNATURE_BYTES = 32


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What a valid token allows: reading one session's streams and logs until it expires."""

    project_id: str
    session_id: str
    expires_at: datetime


def mint(secret: str, grant: StreamGrant) -> str:
    expiry = int(grant.expires_at.timestamp())
    payload = _b64(f"{grant.project_id} {grant.session_id} {expiry}".encode())
    return f"{PREFIX}{payload}.{_b64(_sign(secret, payload))}"


def verify(secret: str, token: str, now: datetime) -> StreamGrant | None:
    """The grant of a well-formed, correctly signed, unexpired token; None otherwise."""
    if not token.startswith(PREFIX) or token.count(".") != 1:
        return None
    payload, signature = token[len(PREFIX) :].split(".")
    try:
        given = _unb64(signature)
        fields = _unb64(payload).decode().split(" ")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given, _sign(secret, payload)) or len(fields) != 3:
        return None
    project_id, session_id, expiry = fields
    if not expiry.isdigit():
        return None
    expires_at = datetime.fromtimestamp(int(expiry), UTC)
    if expires_at <= now:
        return None
    return StreamGrant(project_id, session_id, expires_at)


def _sign(secret: str, payload: str) -> bytes:
    digest = hmac.new(secret.encode(), f"stream-token:{payload}".encode(), hashlib.sha256)
    return digest.digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
