"""Who is using the dashboard: a browser holding a sign-in cookie (dashboard/tokens.py).

The cookie is accepted here only, by the dashboard's own routes; the public API takes API keys
and stream tokens (api/auth.py) and never a cookie, so a cookie sent to /v1 proves nothing.

A request that changes something must also come from the dashboard's own page:

- its ``Origin``, when sent (browsers send it on every cross-origin request and every POST),
  is this server's own, and ``Sec-Fetch-Site``, when sent, says ``same-origin``; and
- it carries ``X-CSRF-Token``, which only a page of this origin can read (``/dashboard/api/me``).

A plain HTML form on another site fails all three: the browser names its origin, says
``cross-site`` or ``same-site``, and a form cannot set a header. (``SameSite=Strict`` keeps the
cookie off requests from other sites, but not from another port of the same host, which is
the same site: hence the checks.) Each refusal is a 403 problem.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from theazo.core.errors import Forbidden, Unauthenticated
from theazo.dashboard import tokens
from theazo.dashboard.views import Dashboard

COOKIE = "theazo_dashboard"
CSRF_HEADER = "X-CSRF-Token"


async def dashboard_of(request: Request) -> Dashboard:
    dashboard: Dashboard | None = getattr(request.app.state, "dashboard", None)
    if dashboard is None:  # made on first use: the service exists once the node started
        dashboard = request.app.state.dashboard = Dashboard(request.app.state.service)
    return dashboard


async def signed_in(request: Request) -> tokens.SignIn:
    """The sign-in of the cookie; 401 without a valid one."""
    sign_in = await (await dashboard_of(request)).signed_in(request.cookies.get(COOKIE))
    if sign_in is None:
        raise Unauthenticated("sign in to the dashboard with a project's API key")
    return sign_in


def check_same_origin(request: Request) -> None:
    """403 unless the request comes from a page of this very origin (when the browser says)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != own_origin(request):
        raise Forbidden(
            f"requests from {origin} may not change anything here", code="foreign_origin"
        )
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"a {site} request may not change anything here", code="foreign_origin")


def own_origin(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


async def changing(request: Request) -> tokens.SignIn:
    """A signed-in request that may change something: same origin, and the CSRF token."""
    check_same_origin(request)
    sign_in = await signed_in(request)
    if not tokens.csrf_matches(sign_in, request.headers.get(CSRF_HEADER)):
        raise Forbidden(
            f"send the {CSRF_HEADER} header the dashboard's page was given",
            code="csrf_token_missing",
        )
    return sign_in


DashboardService = Annotated[Dashboard, Depends(dashboard_of)]
Viewer = Annotated[tokens.SignIn, Depends(signed_in)]
Changer = Annotated[tokens.SignIn, Depends(changing)]
