"""The buying-signal queues: the signals routed to the user's store or team, with claim,
acknowledge and record-outcome, kept live by polling the list fragment."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from polku.commerce.locations.queries import list_locations
from polku.console import roles
from polku.console.i18n import text
from polku.console.web import Form, Viewer, locale_of, posted, redirect, refused, render, signed_in
from polku.errors import Conflict, InvalidField, NotFound, PolkuError
from polku.http import runtime
from polku.signals import actions as signal_actions
from polku.signals import queries as signal_queries
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter()

REFRESH_SECONDS: Final = 3


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
    locale = locale_of(request, viewer)
    if not roles.may_see_queue(viewer.user.role, viewer.user.stores, chosen):
        return refused(request, viewer, 403, text(locale, "forbidden_queue", queue=chosen))
    rt = runtime(request)
    try:
        with translate_errors("reading signals"), rt.engine.connect() as conn:
            signal_queries.check_known_queue(conn, viewer.user.workspace_id, chosen)
            found = signal_queries.list_signals(
                conn, viewer.user.workspace_id, queue=chosen, limit=100
            )
    except (NotFound, InvalidField) as exc:
        return refused(request, viewer, 404, exc.message)
    name = "signals/list.html" if fragment else "signals/queue.html"
    status = 200 if error is None else 409
    return render(
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
    found = signed_in(request, "signals")
    if isinstance(found, Response):
        return found
    return _queue_page(request, found, queue, fragment=False)


@router.get("/signals/list")
def signals_fragment(request: Request, queue: str | None = Query(None, max_length=120)) -> Response:
    """The list part of the signals page, which the page polls to stay live."""
    found = signed_in(request, "signals")
    if isinstance(found, Response):
        return found
    return _queue_page(request, found, queue, fragment=True)


@router.post("/signals/{signal_id}/{decision}")
def decide(request: Request, signal_id: int, decision: str, form: Form) -> Response:
    """Claim, acknowledge or record the outcome of a signal on a queue the user works."""
    found = posted(request, form, "signals")
    if isinstance(found, Response):
        return found
    user, locale = found.user, locale_of(request, found)
    if decision not in ("claim", "acknowledge", "outcome"):
        return refused(request, found, 404, f"No such decision {decision[:40]!r}.")
    rt = runtime(request)
    try:
        with translate_errors("reading the signal"), rt.engine.connect() as conn:
            signal = signal_queries.require_signal(conn, user.workspace_id, signal_id)
    except NotFound as exc:
        return refused(request, found, 404, exc.message)
    if not any(roles.may_see_queue(user.role, user.stores, q) for q in signal.queues):
        return refused(request, found, 403, text(locale, "forbidden_signal", signal=str(signal_id)))
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
        return refused(request, found, exc.status, exc.message)
    target = "/console/signals" + ("?" + urlencode({"queue": queue}) if queue else "")
    return redirect(target)
