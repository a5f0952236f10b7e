"""Stream tokens: what they grant, and that nothing else passes for one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from theazo.core import stream_tokens
from theazo.core.stream_tokens import StreamGrant

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GRANT = StreamGrant("proj_a", "sess_b", NOW + timedelta(minutes=15))


def test_a_token_grants_its_session_until_it_expires() -> None:
    token = stream_tokens.mint("secret", GRANT)
    assert token.startswith("thst_")
    assert stream_tokens.verify("secret", token, NOW) == GRANT
    assert stream_tokens.verify("secret", token, GRANT.expires_at) is None


def test_another_secret_or_a_changed_token_grants_nothing() -> None:
    token = stream_tokens.mint("secret", GRANT)
    payload, signature = token.removeprefix("thst_").split(".")
    other = stream_tokens.mint("secret", StreamGrant("proj_a", "sess_c", GRANT.expires_at))
    other_payload = other.removeprefix("thst_").split(".")[0]
    for forged in (
        stream_tokens.mint("another secret", GRANT),
        f"thst_{other_payload}.{signature}",  # another session, this signature
        f"thst_{payload}.{signature[:-1]}",
        f"thst_{payload}",
        "th_live_" + "x" * 43,
        "thst_é.é",
        "thst_a.b.c",
        "",
    ):
        assert stream_tokens.verify("secret", forged, NOW) is None, forged
