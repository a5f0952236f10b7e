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

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from theazo.core import signed_tokens

PREFIX = "thds_"
_SESSION = "dashboard-session"
_CSRF = "dashboard-csrf"


@dataclass(frozen=True, slots=True)
class SignIn:
    """A valid dashboard cookie: the project it reads, until when, and its CSRF token."""

    project_id: str
    expires_at: datetime
    csrf_token: str


def mint(secret: str, project_id: str, expires_at: datetime) -> tuple[str, SignIn]:
    """A fresh cookie value for ``project_id`` and what it grants."""
    expiry = int(expires_at.timestamp())
    fields = (project_id, str(expiry), secrets.token_urlsafe(16))
    cookie, payload = signed_tokens.seal(secret, PREFIX, _SESSION, fields)
    return cookie, SignIn(project_id, datetime.fromtimestamp(expiry, UTC), _csrf(secret, payload))


def verify(secret: str, cookie: str, now: datetime) -> SignIn | None:
    """What a well-formed, correctly signed, unexpired cookie grants; None otherwise."""
    opened = signed_tokens.unseal(secret, PREFIX, _SESSION, cookie, 3)
    if opened is None:
        return None
    (project_id, expiry, _nonce), payload = opened
    expires_at = signed_tokens.unexpired(expiry, now)
    if expires_at is None:
        return None
    return SignIn(project_id, expires_at, _csrf(secret, payload))


def csrf_matches(sign_in: SignIn, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), sign_in.csrf_token.encode())


def _csrf(secret: str, payload: str) -> str:
    """The page's CSRF token: a second signature of the cookie's payload."""
    return signed_tokens.b64(signed_tokens.sign(secret, _CSRF, payload))
