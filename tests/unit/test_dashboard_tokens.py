"""Dashboard sign-in cookies: signed, expiring, bound to their CSRF token; nothing else passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from theazo.dashboard import tokens

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "deployment-secret"


def test_a_cookie_names_its_project_until_it_expires() -> None:
    cookie, granted = tokens.mint(SECRET, "proj_a", NOW + timedelta(hours=12))
    found = tokens.verify(SECRET, cookie, NOW)
    assert found == granted and found.project_id == "proj_a"
    assert tokens.verify(SECRET, cookie, NOW + timedelta(hours=12)) is None


def test_each_sign_in_is_its_own_with_its_own_csrf_token() -> None:
    first, one = tokens.mint(SECRET, "proj_a", NOW + timedelta(hours=1))
    second, two = tokens.mint(SECRET, "proj_a", NOW + timedelta(hours=1))
    assert first != second and one.csrf_token != two.csrf_token
    assert tokens.csrf_matches(one, one.csrf_token)
    assert not tokens.csrf_matches(one, two.csrf_token)
    assert not tokens.csrf_matches(one, None) and not tokens.csrf_matches(one, "")


def test_forged_tampered_and_foreign_cookies_are_refused() -> None:
    cookie, _ = tokens.mint(SECRET, "proj_a", NOW + timedelta(hours=1))
    payload, signature = cookie.removeprefix(tokens.PREFIX).split(".")
    other_payload, _ = tokens.mint(SECRET, "proj_b", NOW + timedelta(hours=1))[0].split(".")
    for bad in (
        "",
        "thds_",
        cookie + "x",
        f"{other_payload}.{signature}",  # another project's payload, this one's signature
        f"{tokens.PREFIX}{payload}.{signature[:-4]}AAAA",
        cookie.replace(tokens.PREFIX, "thst_"),
        f"{tokens.PREFIX}é.{signature}",
        f"{tokens.PREFIX}{payload}.{signature}.x",
    ):
        assert tokens.verify(SECRET, bad, NOW) is None, bad
    assert tokens.verify("another deployment", cookie, NOW) is None
