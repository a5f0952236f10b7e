"""Dashboard sign-ins: the cookie a browser holds once it gave a project's API key, and the
CSRF token its page sends with every change.

The key is checked once, at sign-in, and never kept: the cookie holds a token signed with the
deployment's own secret (like stream tokens, core/stream_tokens.py), naming the project, an
expiry and a random nonce, so any node checks it without a read and no database holds it.
The page's CSRF token is a second signature of the same payload: a page that cannot read the
cookie (HttpOnly) gets it from ``GET /dashboard/api/me``, which another origin cannot read.

    thds_<payload>.<signature>     payload: base64url of "project expiry nonce"

The price of signing rather than storing: signing out forgets the cookie in that browser, but
a copy taken before stays valid until it expires (``DASHBOARD_SESSION_HOURS``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "thds_"


@dataclass(frozen=True, slots=True)
class SignIn:
    """A valid dashboard cookie: the project it reads, until when, and its CSRF token."""

    project_id: str
    expires_at: datetime
    csrf_token: str


def mint(secret: str, project_id: str, expires_at: datetime) -> tuple[str, SignIn]:
    """A fresh cookie value for ``project_id`` and what it grants."""
    nonce = secrets.token_urlsafe(16)
    payload = _b64(f"{project_id} {int(expires_at.timestamp())} {nonce}".encode())
    cookie = f"{PREFIX}{payload}.{_b64(_sign(secret, 'session', payload))}"
    expiry = datetime.fromtimestamp(int(expires_at.timestamp()), UTC)
    return cookie, SignIn(project_id, expiry, _b64(_sign(secret, "csrf", payload)))


def verify(secret: str, cookie: str, now: datetime) -> SignIn | None:
    """What a well-formed, correctly signed, unexpired cookie grants; None otherwise."""
    if not cookie.startswith(PREFIX) or cookie.count(".") != 1:
        return None
    payload, signature = cookie[len(PREFIX) :].split(".")
    try:
        given = _unb64(signature)
        fields = _unb64(payload).decode().split(" ")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given, _sign(secret, "session", payload)) or len(fields) != 3:
        return None
    project_id, expiry, _nonce = fields
    if not expiry.isdigit():
        return None
    expires_at = datetime.fromtimestamp(int(expiry), UTC)
    if expires_at <= now:
        return None
    return SignIn(project_id, expires_at, _b64(_sign(secret, "csrf", payload)))


def csrf_matches(sign_in: SignIn, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), sign_in.csrf_token.encode())


def _sign(secret: str, purpose: str, payload: str) -> bytes:
    return hmac.new(
        secret.encode(), f"dashboard-{purpose}:{payload}".encode(), hashlib.sha256
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
