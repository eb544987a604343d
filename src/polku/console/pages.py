"""The console under `/console`: signing in and out, the language, the home page, the
static files, and the routers of each part (signals, customers, commerce, journeys, data).

Server-rendered HTML (Jinja2, `templates/`); what the pages share is in `web`. Handlers
translate: they read the session cookie and the form, ask `roles` whether the user may,
call the actions or the queries, and render.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from polku.console import (
    actions,
    commerce_pages,
    customer_pages,
    data_pages,
    journey_pages,
    signals_pages,
)
from polku.console.i18n import explain, text
from polku.console.web import (
    HERE,
    SESSION_COOKIE,
    Form,
    locale_of,
    posted,
    redirect,
    refused,
    render,
    signed_in,
    viewer_of,
)
from polku.errors import InvalidField, Unauthorized
from polku.http import runtime

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

LOGIN_COOKIE: Final = "polku_console_login"
_STATIC_TYPES: Final = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _secure(request: Request) -> bool:
    """Cookies are Secure when the console is served over https (uvicorn takes the scheme
    from X-Forwarded-Proto behind a trusted proxy)."""
    return request.url.scheme == "https"


# -- signing in and out ------------------------------------------------------------------------


def _login_page(
    request: Request, status: int = 200, error: str | None = None, email: str = ""
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", None, status, csrf_token=token, error=error, email=email
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@router.get("/login")
def login_page(request: Request) -> Response:
    """The sign-in form (a signed-in user goes on to the home page)."""
    if viewer_of(request) is not None:
        return redirect("/console/")
    return _login_page(request)


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    """Check the password and open a session (its token only in an HttpOnly cookie)."""
    email = form.get("email", "")
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(form.get("csrf_token", "").encode(), cookie.encode()):
        locale = locale_of(request, None)
        return _login_page(request, 403, text(locale, "csrf_failed"), email)
    try:
        session = actions.sign_in(runtime(request).engine, email, form.get("password", ""))
    except actions.TooManySignIns:
        return _login_page(request, 429, text(locale_of(request, None), "too_many_sign_ins"), email)
    except Unauthorized:
        return _login_page(request, 401, text(locale_of(request, None), "wrong_credentials"), email)
    response = redirect("/console/")
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=actions.SESSION_MS // 1000,
        path="/console",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout")
def logout(request: Request, form: Form) -> Response:
    """End the session on the server and forget the cookie."""
    posted(request, form)  # signed in, with the session's CSRF token
    actions.sign_out(runtime(request).engine, request.cookies.get(SESSION_COOKIE, ""))
    response = redirect("/console/login")
    response.delete_cookie(SESSION_COOKIE, path="/console", secure=_secure(request), httponly=True)
    return response


@router.post("/language")
def language(request: Request, form: Form) -> Response:
    """The user's language: fi, en, or empty to follow the browser."""
    found = posted(request, form)
    choice = form.get("locale") or None
    try:
        actions.set_locale(runtime(request).engine, found.user.user_id, choice)
    except InvalidField as exc:
        return refused(request, found, 400, explain(locale_of(request, found), exc))
    return redirect("/console/")


# -- pages -------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    """Who you are and what your role may use."""
    found = signed_in(request)
    return render(request, "home.html", found)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's own stylesheets, scripts and pictures (nothing is loaded from
    elsewhere); only plain file names in `static/`, of the kinds listed."""
    kind = _STATIC_TYPES.get(Path(name).suffix)
    path = HERE / "static" / name
    if kind is None or "/" in name or name.startswith(".") or not path.is_file():
        return Response("Not found", 404, media_type="text/plain")
    return Response(path.read_bytes(), media_type=kind, headers={"Cache-Control": "max-age=300"})


for _part in (signals_pages, customer_pages, commerce_pages, journey_pages, data_pages):
    router.include_router(_part.router)
