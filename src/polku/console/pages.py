"""The console's pages: sign-in and out, the home page, the buying-signal queues, journeys.

Server-rendered HTML (Jinja2, `templates/`). Handlers translate: they read the session
cookie and the form, ask `roles` whether the user may, call `console.actions`,
`signals.actions` or the queries, and render. Every page and every POST checks the role on
the server (403 page otherwise); every POST form carries the session's CSRF token (the
sign-in form a token of its own, double-submitted in a cookie). The signal list refreshes
by polling its fragment (`static/console.js`, every `REFRESH_SECONDS`).
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from polku.commerce.locations.queries import list_locations
from polku.console import actions, queries, roles
from polku.console.i18n import LOCALES, format_time, pick_locale, text
from polku.console.queries import Viewer
from polku.errors import Conflict, InvalidField, NotFound, PolkuError, Unauthorized
from polku.http import runtime
from polku.journeys.queries import list_journeys
from polku.signals import actions as signal_actions
from polku.signals import queries as signal_queries
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(prefix="/console", include_in_schema=False)

SESSION_COOKIE: Final = "polku_console"
LOGIN_COOKIE: Final = "polku_console_login"
REFRESH_SECONDS: Final = 3
_HERE: Final = Path(__file__).parent
_STATIC: Final = {"console.css": "text/css", "console.js": "text/javascript"}
_FORM_LIMIT: Final = 16_384
_HEADERS: Final = {
    # No inline script or style anywhere, so the policy can forbid them.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_AREAS: Final = (("signals", "/console/signals"), ("journeys", "/console/journeys"))


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _now() -> int:
    return int(time.time() * 1000)


async def _read_form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form (anything else reads as empty and then fails the
    CSRF check); later duplicates win."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if kind != "application/x-www-form-urlencoded" or len(body) > _FORM_LIMIT:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


Form = Annotated[dict[str, str], Depends(_read_form)]


def _secure(request: Request) -> bool:
    """Cookies are Secure when the console is served over https (uvicorn takes the scheme
    from X-Forwarded-Proto behind a trusted proxy)."""
    return request.url.scheme == "https"


def _viewer(request: Request) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    rt = runtime(request)
    with translate_errors("reading the console session"), rt.engine.connect() as conn:
        return queries.session_viewer(conn, token, _now())


def _locale(request: Request, viewer: Viewer | None) -> str:
    return pick_locale(
        viewer.user.locale if viewer else None, request.headers.get("accept-language")
    )


def _render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    locale = _locale(request, viewer)
    areas = [
        (area, href) for area, href in _AREAS if viewer and roles.allows(viewer.user.role, area)
    ]
    html = (
        _templates()
        .get_template(name)
        .render(
            t=functools.partial(text, locale),
            when=functools.partial(format_time, locale),
            locale=locale,
            locales=LOCALES,
            viewer=viewer,
            areas=areas,
            **context,
        )
    )
    return HTMLResponse(html, status, headers=_HEADERS)


def _refused(request: Request, viewer: Viewer | None, status: int, message: str) -> HTMLResponse:
    titles = {403: "forbidden", 404: "not_found"}
    return _render(
        request, "error.html", viewer, status, title=titles.get(status, "error"), message=message
    )


def _to_login() -> RedirectResponse:
    return RedirectResponse("/console/login", 303, headers=_HEADERS)


def _signed_in(request: Request, area: str | None = None) -> Viewer | Response:
    """The signed-in viewer, or the response that refuses: the sign-in page when there is
    no live session, 403 when the role may not use `area`."""
    viewer = _viewer(request)
    if viewer is None:
        return _to_login()
    if area is not None and not roles.allows(viewer.user.role, area):
        role = text(_locale(request, viewer), "role_" + viewer.user.role)
        message = text(_locale(request, viewer), "forbidden_page", role=role)
        return _refused(request, viewer, 403, message)
    return viewer


def _posted(request: Request, form: dict[str, str], area: str | None = None) -> Viewer | Response:
    """As `_signed_in`, and the form's CSRF token must be the session's (else 403)."""
    found = _signed_in(request, area)
    if isinstance(found, Response):
        return found
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), found.csrf_token.encode()):
        return _refused(request, found, 403, text(_locale(request, found), "csrf_failed"))
    return found


# -- signing in and out ------------------------------------------------------------------------


def _login_page(
    request: Request, status: int = 200, error: str | None = None, email: str = ""
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _render(
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
    if _viewer(request) is not None:
        return RedirectResponse("/console/", 303, headers=_HEADERS)
    return _login_page(request)


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    """Check the password and open a session (its token only in an HttpOnly cookie)."""
    email = form.get("email", "")
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(form.get("csrf_token", "").encode(), cookie.encode()):
        locale = _locale(request, None)
        return _login_page(request, 403, text(locale, "csrf_failed"), email)
    try:
        session = actions.sign_in(runtime(request).engine, email, form.get("password", ""))
    except actions.TooManySignIns:
        return _login_page(request, 429, text(_locale(request, None), "too_many_sign_ins"), email)
    except Unauthorized:
        return _login_page(request, 401, text(_locale(request, None), "wrong_credentials"), email)
    response = RedirectResponse("/console/", 303, headers=_HEADERS)
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
    found = _posted(request, form)
    if isinstance(found, Response):
        return found
    actions.sign_out(runtime(request).engine, request.cookies.get(SESSION_COOKIE, ""))
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE, path="/console", secure=_secure(request), httponly=True)
    return response


@router.post("/language")
def language(request: Request, form: Form) -> Response:
    """The user's language: fi, en, or empty to follow the browser."""
    found = _posted(request, form)
    if isinstance(found, Response):
        return found
    choice = form.get("locale") or None
    try:
        actions.set_locale(runtime(request).engine, found.user.user_id, choice)
    except InvalidField as exc:
        return _refused(request, found, 400, exc.message)
    return RedirectResponse("/console/", 303, headers=_HEADERS)


# -- pages -------------------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    """Who you are and what your role may use."""
    found = _signed_in(request)
    if isinstance(found, Response):
        return found
    return _render(request, "home.html", found)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The console's own stylesheet and script (nothing is loaded from elsewhere)."""
    if name not in _STATIC:
        return Response("Not found", 404, media_type="text/plain")
    body = (_HERE / "static" / name).read_bytes()
    return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})


def _queues(request: Request, viewer: Viewer) -> list[str]:
    user = viewer.user
    every: list[str] = []
    if user.role == "admin":
        rt = runtime(request)
        with translate_errors("reading the stores"), rt.engine.connect() as conn:
            every = [loc.location_id for loc in list_locations(conn, user.workspace_id)]
    return roles.signal_queues(user.role, user.stores, every)


def _queue_page(
    request: Request, viewer: Viewer, queue: str | None, fragment: bool, error: str | None = None
) -> Response:
    """The signal queue `queue` (default: the user's first), or the page that refuses it."""
    allowed = _queues(request, viewer)
    chosen = queue or (allowed[0] if allowed else "")
    locale = _locale(request, viewer)
    if not roles.may_see_queue(viewer.user.role, viewer.user.stores, chosen):
        return _refused(request, viewer, 403, text(locale, "forbidden_queue", queue=chosen))
    rt = runtime(request)
    try:
        with translate_errors("reading signals"), rt.engine.connect() as conn:
            signal_queries.check_known_queue(conn, viewer.user.workspace_id, chosen)
            found = signal_queries.list_signals(
                conn, viewer.user.workspace_id, queue=chosen, limit=100
            )
    except (NotFound, InvalidField) as exc:
        return _refused(request, viewer, 404, exc.message)
    name = "signal_list.html" if fragment else "signals.html"
    status = 200 if error is None else 409
    return _render(
        request,
        name,
        viewer,
        status,
        queue=chosen,
        queues=allowed,
        signals=found,
        outcomes=signal_actions.OUTCOMES,
        error=error,
        refresh_url="/console/signals/list?" + urlencode({"queue": chosen}),
        refresh_seconds=REFRESH_SECONDS,
    )


@router.get("/signals")
def signals_page(request: Request, queue: str | None = Query(None, max_length=120)) -> Response:
    """The buying signals of a queue the user works: store staff their stores', agents the
    `agents` queue, admins any."""
    found = _signed_in(request, "signals")
    if isinstance(found, Response):
        return found
    return _queue_page(request, found, queue, fragment=False)


@router.get("/signals/list")
def signals_fragment(request: Request, queue: str | None = Query(None, max_length=120)) -> Response:
    """The list part of the signals page, which the page polls to stay live."""
    found = _signed_in(request, "signals")
    if isinstance(found, Response):
        return found
    return _queue_page(request, found, queue, fragment=True)


@router.post("/signals/{signal_id}/{decision}")
def decide(request: Request, signal_id: int, decision: str, form: Form) -> Response:
    """Claim, acknowledge or record the outcome of a signal on a queue the user works."""
    found = _posted(request, form, "signals")
    if isinstance(found, Response):
        return found
    user, locale = found.user, _locale(request, found)
    if decision not in ("claim", "acknowledge", "outcome"):
        return _refused(request, found, 404, f"No such decision {decision[:40]!r}.")
    rt = runtime(request)
    try:
        with translate_errors("reading the signal"), rt.engine.connect() as conn:
            signal = signal_queries.require_signal(conn, user.workspace_id, signal_id)
    except NotFound as exc:
        return _refused(request, found, 404, exc.message)
    if not any(roles.may_see_queue(user.role, user.stores, q) for q in signal.queues):
        return _refused(
            request, found, 403, text(locale, "forbidden_signal", signal=str(signal_id))
        )
    queue = form.get("queue") or None
    try:
        if decision == "claim":
            signal_actions.claim(rt, user.workspace_id, signal_id, user.staff_id)
        elif decision == "acknowledge":
            signal_actions.acknowledge(rt, user.workspace_id, signal_id, user.staff_id)
        else:
            signal_actions.record_outcome(
                rt, user.workspace_id, signal_id, form.get("outcome", ""), user.staff_id
            )
    except (Conflict, InvalidField) as exc:
        return _queue_page(request, found, queue, fragment=False, error=exc.message)
    except PolkuError as exc:
        return _refused(request, found, exc.status, exc.message)
    target = "/console/signals" + ("?" + urlencode({"queue": queue}) if queue else "")
    return RedirectResponse(target, 303, headers=_HEADERS)


@router.get("/journeys")
def journeys_page(request: Request) -> Response:
    """The workspace's journeys with status and version (read-only for now)."""
    found = _signed_in(request, "journeys")
    if isinstance(found, Response):
        return found
    rt = runtime(request)
    with translate_errors("reading journeys"), rt.engine.connect() as conn:
        journeys = list_journeys(conn, found.user.workspace_id)
    return _render(request, "journeys.html", found, journeys=journeys)
