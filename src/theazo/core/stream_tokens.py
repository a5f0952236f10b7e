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

from dataclasses import dataclass
from datetime import datetime

from theazo.core import signed_tokens

PREFIX = "thst_"
_PURPOSE = "stream-token"


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What a valid token allows: reading one session's streams and logs until it expires."""

    project_id: str
    session_id: str
    expires_at: datetime


def mint(secret: str, grant: StreamGrant) -> str:
    expiry = str(int(grant.expires_at.timestamp()))
    fields = (grant.project_id, grant.session_id, expiry)
    token, _ = signed_tokens.seal(secret, PREFIX, _PURPOSE, fields)
    return token


def verify(secret: str, token: str, now: datetime) -> StreamGrant | None:
    """The grant of a well-formed, correctly signed, unexpired token; None otherwise."""
    opened = signed_tokens.unseal(secret, PREFIX, _PURPOSE, token, 3)
    if opened is None:
        return None
    (project_id, session_id, expiry), _ = opened
    expires_at = signed_tokens.unexpired(expiry, now)
    return None if expires_at is None else StreamGrant(project_id, session_id, expires_at)
