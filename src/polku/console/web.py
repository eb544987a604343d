"""What every page of the console shares: the templates, rendering in the user's language,
the signed-in viewer, the role and CSRF checks, reading a form, the refusing pages.

Each part of the console (`signals_pages`, `customers`, `commerce`, `journeys_pages`,
`data_pages`) has a router of its own built on these; `pages` gathers them under
`/console`. Every page and every POST checks the role on the server (`signed_in`,
`posted`: a 403 page otherwise); every POST form carries the session's CSRF token.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import time
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from polku.console import charts, queries, roles
from polku.console.i18n import (
    LOCALES,
    channel_name,
    format_day,
    format_money,
    format_number,
    format_percent_of,
    format_time,
    pick_locale,
    plural,
    send_status,
    text,
    trace_kind,
    trace_outcome,
    trace_reason,
    trace_step,
    verdict,
    word,
)
from polku.console.queries import Viewer
from polku.http import runtime
from polku.storage.engine import translate_errors

__all__ = [
    "HEADERS",
    "SESSION_COOKIE",
    "Form",
    "Refusal",
    "Viewer",
    "install",
    "locale_of",
    "now_ms",
    "posted",
    "redirect",
    "refused",
    "render",
    "signed_in",
    "viewer_of",
]

SESSION_COOKIE: Final = "polku_console"
HERE: Final = Path(__file__).parent
FORM_LIMIT: Final = 65_536
_TOO_LARGE: Final = "\x00too-large"  # no real field's name; whoever sends it gets the 413
HEADERS: Final = {
    # No inline script or style anywhere, so the policy can forbid them.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NAV: Final = (
    ("signals", "/console/signals"),
    ("customers", "/console/customers"),
    ("commerce", "/console/commerce"),
    ("journeys", "/console/journeys"),
    ("data", "/console/data"),
)
"""The console's parts in the order of the navigation; each is an area of `roles.AREAS`."""


@functools.cache
def templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


async def _read_form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form (anything else reads as empty and then fails the
    CSRF check); later duplicates win."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > FORM_LIMIT:
        return {_TOO_LARGE: "1"}  # `posted` answers 413, not a misleading CSRF failure
    if kind != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


Form = Annotated[dict[str, str], Depends(_read_form)]


def viewer_of(request: Request) -> Viewer | None:
    """The signed-in session of the request's cookie, if it is live."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    rt = runtime(request)
    with translate_errors("reading the console session"), rt.engine.connect() as conn:
        return queries.session_viewer(conn, token, now_ms())


def locale_of(request: Request, viewer: Viewer | None) -> str:
    return pick_locale(
        viewer.user.locale if viewer else None, request.headers.get("accept-language")
    )


def render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The template `name` in the viewer's language. Templates get `t` (a message), `tn`
    (a message with a count: singular or plural), `when` (a time), `day`, `number`,
    `percent`, `money`, a journey's `verdict`, `trace_step` (`trace_kind`, `trace_outcome`,
    `trace_reason`), `send_status`, `channel_name`, and `word` (a
    stored code's word when the catalogue has one), and
    `charts`, all in that language, besides `context`."""
    locale = locale_of(request, viewer)
    areas = [(area, href) for area, href in NAV if viewer and roles.allows(viewer.user.role, area)]
    html = (
        templates()
        .get_template(name)
        .render(
            t=functools.partial(text, locale),
            tn=functools.partial(plural, locale),
            verdict=functools.partial(verdict, locale),
            trace_step=functools.partial(trace_step, locale),
            trace_kind=functools.partial(trace_kind, locale),
            trace_outcome=functools.partial(trace_outcome, locale),
            trace_reason=functools.partial(trace_reason, locale),
            channel_name=functools.partial(channel_name, locale),
            word=functools.partial(word, locale),
            send_status=functools.partial(send_status, locale),
            when=functools.partial(format_time, locale),
            day=functools.partial(format_day, locale),
            number=functools.partial(format_number, locale),
            percent=functools.partial(format_percent_of, locale),
            money=functools.partial(format_money, locale),
            charts=charts,
            locale=locale,
            locales=LOCALES,
            viewer=viewer,
            areas=areas,
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status, headers=HEADERS)


def refused(request: Request, viewer: Viewer | None, status: int, message: str) -> HTMLResponse:
    """A page that says why not (403, 404, 400, 409...), in the viewer's language."""
    titles = {403: "forbidden", 404: "not_found"}
    return render(
        request, "error.html", viewer, status, title=titles.get(status, "error"), message=message
    )


def redirect(url: str) -> RedirectResponse:
    """See other: where a page goes after a successful POST."""
    return RedirectResponse(url, 303, headers=HEADERS)


class Refusal(Exception):
    """Raised by `signed_in` and `posted` with the response that refuses the request; the
    console's exception handler (`install`) answers with it, so a handler needs no check."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def install(app: FastAPI) -> None:
    """Answer a `Refusal` raised by any console handler with its response, and a console
    address whose parameters fail their checks (a queue name over its length, say) with a
    page in the viewer's language rather than the API's JSON error (after
    `polku.http.install_error_handlers`, whose answer the rest of the app keeps)."""

    async def answer(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        return exc.response

    api_answer = app.exception_handlers[RequestValidationError]

    async def bad_parameter(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not request.url.path.startswith("/console/"):
            answered = api_answer(request, exc)
            return await answered if inspect.isawaitable(answered) else answered
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        viewer = await run_in_threadpool(viewer_of, request)
        locale = locale_of(request, viewer)
        # The validator's own words are English only: the field's name says what to fix.
        message = text(locale, "bad_parameter", field=field or "?")
        return refused(request, viewer, 400, message)

    app.add_exception_handler(Refusal, answer)
    app.add_exception_handler(RequestValidationError, bad_parameter)


def signed_in(request: Request, area: str | None = None) -> Viewer:
    """The signed-in viewer. Raises `Refusal` with the sign-in page when there is no live
    session, or a 403 page when the role may not use `area`."""
    viewer = viewer_of(request)
    if viewer is None:
        raise Refusal(redirect("/console/login"))
    if area is not None and not roles.allows(viewer.user.role, area):
        locale = locale_of(request, viewer)
        role = text(locale, "role_" + viewer.user.role)
        raise Refusal(refused(request, viewer, 403, text(locale, "forbidden_page", role=role)))
    return viewer


def posted(request: Request, form: dict[str, str], area: str | None = None) -> Viewer:
    """As `signed_in`, and the form's CSRF token must be the session's (else a 403 page) and
    the form within `FORM_LIMIT` (else a 413 page)."""
    found = signed_in(request, area)
    if _TOO_LARGE in form:
        locale = locale_of(request, found)
        message = text(locale, "form_too_large", limit=FORM_LIMIT // 1024)
        raise Refusal(refused(request, found, 413, message))
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), found.csrf_token.encode()):
        raise Refusal(refused(request, found, 403, text(locale_of(request, found), "csrf_failed")))
    return found
