"""The buying-signal queues: the signals routed to the user's store or team, each with its
customer, products and their stock at the store, with claim, acknowledge, contact, reserve
for pickup and record-outcome; kept live by a server-sent stream that says when the list
changed; and the report of signals, conversions and sales per day, queue and kind.

The stream (`/console/signals/stream`) compares the queue's marker
(`signals.queries.queue_marker`) once a second and sends `event: changed` with the new
marker as its id; the page then fetches the list fragment. Each stream ends when the
client goes away, and after `STREAM_SECONDS` in any case, so a server shutting down never
waits long for an open console; the browser reconnects by itself, sending the last marker
it saw (`Last-Event-ID`), so no change is missed in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import Connection, Engine

from polku.commerce.locations.queries import get_location, list_locations
from polku.console import roles
from polku.console.i18n import explain, text
from polku.console.web import (
    HEADERS,
    Form,
    Viewer,
    locale_of,
    now_ms,
    posted,
    redirect,
    refused,
    render,
    signed_in,
)
from polku.errors import Conflict, InvalidField, NotFound, PolkuError
from polku.http import runtime
from polku.signals import actions as signal_actions
from polku.signals import queries as signal_queries
from polku.signals.report import signal_report
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter()

REPORT_DAYS: Final = 30
DECISIONS: Final = ("claim", "acknowledge", "contact", "reserve", "outcome")
REFRESH_SECONDS: Final = 3
"""How often the page polls the list when the stream is not available."""
STREAM_SECONDS: Final = 15.0
POLL_SECONDS: Final = 1.0
KEEPALIVE_SECONDS: Final = 10.0


def _queues(request: Request, viewer: Viewer) -> list[str]:
    user = viewer.user
    every: list[str] = []
    if user.role == "admin":
        rt = runtime(request)
        with translate_errors("reading the stores"), rt.engine.connect() as conn:
            every = [loc.location_id for loc in list_locations(conn, user.workspace_id)]
    return roles.signal_queues(user.role, user.stores, every)


def _allowed_queue(request: Request, viewer: Viewer, queue: str | None) -> str | Response:
    """The queue asked for (default: the user's first) if the user may see it and the
    workspace has it; else the page that refuses it (403 or 404)."""
    allowed = _queues(request, viewer)
    chosen = queue or (allowed[0] if allowed else "")
    locale = locale_of(request, viewer)
    if not roles.may_see_queue(viewer.user.role, viewer.user.stores, chosen):
        return refused(request, viewer, 403, text(locale, "forbidden_queue", queue=chosen))
    rt = runtime(request)
    try:
        with translate_errors("reading signals"), rt.engine.connect() as conn:
            signal_queries.check_known_queue(conn, viewer.user.workspace_id, chosen)
    except (NotFound, InvalidField) as exc:
        return refused(request, viewer, 404, explain(locale, exc))
    return chosen


def _cards(
    conn: Connection,
    workspace_id: str,
    queue: str,
    found: list[signal_queries.Signal],
    locale: str,
) -> dict[int, dict[str, Any]]:
    """What each signal's card shows besides the signal: its customer, and its products'
    names in `locale` with their stock at the signal's store (else the queue's store)."""
    customers = signal_queries.signal_customers(conn, workspace_id, [s.profile_id for s in found])
    prefix = roles.STORE_PREFIX
    queue_store = queue[len(prefix) :] if queue.startswith(prefix) else None
    cards: dict[int, dict[str, Any]] = {}
    for s in found:
        store = s.store_id or queue_store
        stock = (
            signal_queries.stock_at(conn, workspace_id, store, s.products, locale) if store else {}
        )
        products = [
            {
                "id": pid,
                "name": stock[pid].name if pid in stock else pid,
                "stock": stock[pid].sellable if pid in stock else None,
                "skus": stock[pid].skus if pid in stock else (),
            }
            for pid in s.products
        ]
        store_name = None
        if store:
            location = get_location(conn, workspace_id, store)
            store_name = location.name if location else store
        cards[s.signal_id] = {
            "customer": customers.get(s.profile_id),
            "products": products,
            "store": store_name,
            "store_id": store,
        }
    return cards


def _queue_page(
    request: Request, viewer: Viewer, queue: str | None, fragment: bool, error: str | None = None
) -> Response:
    """The signal queue `queue` (default: the user's first), or the page that refuses it."""
    chosen = _allowed_queue(request, viewer, queue)
    if isinstance(chosen, Response):
        return chosen
    workspace_id = viewer.user.workspace_id
    with translate_errors("reading signals"), runtime(request).engine.connect() as conn:
        found = signal_queries.list_signals(conn, workspace_id, queue=chosen, limit=100)
        cards = _cards(conn, workspace_id, chosen, found, locale_of(request, viewer))
        marker = signal_queries.queue_marker(conn, workspace_id, chosen)
    name = "signals/list.html" if fragment else "signals/queue.html"
    status = 200 if error is None else 409
    return render(
        request,
        name,
        viewer,
        status,
        queue=chosen,
        queues=_queues(request, viewer),
        signals=found,
        cards=cards,
        marker=marker,
        stream_url="/console/signals/stream?" + urlencode({"queue": chosen}),
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
    return _queue_page(request, found, queue, fragment=False)


def _number_in(
    request: Request, viewer: Viewer, name: str, raw: str, low: float, high: float
) -> float | Response:
    """The query parameter `name` as a number from `low` to `high`, or a 400 page saying
    so."""
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        message = text(
            locale_of(request, viewer),
            "sig_bad_number",
            name=name,
            low=f"{low:g}",
            high=f"{high:g}",
        )
        return refused(request, viewer, 400, message)
    return value


def _queue_name(locale: str, queue: str) -> str:
    if queue.startswith(roles.STORE_PREFIX):
        return text(locale, "queue_store", store=queue[len(roles.STORE_PREFIX) :])
    return text(locale, "queue_" + queue)


@router.get("/signals/report")
def signals_report(request: Request, days: str = Query(str(REPORT_DAYS))) -> Response:
    """Signals, conversions and sales per day, per queue and per kind over the last
    `days` days (1 to 366), for the queues the user may see (a store clerk: their
    stores')."""
    found = signed_in(request, "signals")
    period = _number_in(request, found, "days", days, 1, 366)
    if isinstance(period, Response):
        return period
    queues = _queues(request, found)
    with translate_errors("reading signals"), runtime(request).engine.connect() as conn:
        figures = signal_report(
            conn, found.user.workspace_id, queues, end_ms=now_ms(), days=int(period)
        )
    locale = locale_of(request, found)
    names = {q: _queue_name(locale, q) for q in queues}
    return render(request, "signals/report.html", found, report=figures, names=names)


@router.get("/signals/list")
def signals_fragment(request: Request, queue: str | None = Query(None, max_length=120)) -> Response:
    """The list part of the signals page, which the page polls to stay live."""
    found = signed_in(request, "signals")
    return _queue_page(request, found, queue, fragment=True)


def _marker(engine: Engine, workspace_id: str, queue: str) -> str:
    with translate_errors("reading signals"), engine.connect() as conn:
        return signal_queries.queue_marker(conn, workspace_id, queue)


async def queue_changes(
    request: Request, engine: Engine, workspace_id: str, queue: str, seen: str, seconds: float
) -> AsyncIterator[bytes]:
    """The stream's body: `event: changed` (id: the new marker) each time the queue's
    marker differs from the last one sent (`seen` at first), keep-alive comments while
    quiet; ends when the client disconnects or after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    quiet_since = loop.time()
    yield b"retry: 2000\n\n"
    while loop.time() < deadline and not await request.is_disconnected():
        marker = await asyncio.to_thread(_marker, engine, workspace_id, queue)
        if marker != seen:
            seen, quiet_since = marker, loop.time()
            yield f"id: {marker}\nevent: changed\ndata: {marker}\n\n".encode()
        elif loop.time() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = loop.time()
            yield b": keep-alive\n\n"
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - loop.time())))


@router.get("/signals/stream")
def signals_stream(
    request: Request,
    queue: str | None = Query(None, max_length=120),
    since: str = Query("", max_length=40, description="The marker the page was drawn at."),
    seconds: str = Query(str(STREAM_SECONDS), description="Stop after this long (at most 15)."),
) -> Response:
    """Server-sent events for a queue the user may see (checked as the page is): `changed`
    when its list changed since `since` (or the browser's `Last-Event-ID`)."""
    found = signed_in(request, "signals")
    chosen = _allowed_queue(request, found, queue)
    if isinstance(chosen, Response):
        return chosen
    duration = _number_in(request, found, "seconds", seconds, 0.1, STREAM_SECONDS)
    if isinstance(duration, Response):
        return duration
    seen = request.headers.get("last-event-id", since)[:40]
    body = queue_changes(
        request, runtime(request).engine, found.user.workspace_id, chosen, seen, duration
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={**HEADERS, "X-Accel-Buffering": "no"},
    )


@router.post("/signals/{signal_id}/{decision}")
def decide(request: Request, signal_id: int, decision: str, form: Form) -> Response:
    """Claim, acknowledge, contact (outcome `contacted`), reserve for pickup (a click and
    collect reservation of the chosen SKU at the signal's store, outcome `reserved`) or
    record the outcome of a signal on a queue the user works."""
    found = posted(request, form, "signals")
    user, locale = found.user, locale_of(request, found)
    if decision not in DECISIONS:
        return refused(request, found, 404, text(locale, "sig_no_decision", decision=decision[:40]))
    rt = runtime(request)
    try:
        with translate_errors("reading the signal"), rt.engine.connect() as conn:
            signal = signal_queries.require_signal(conn, user.workspace_id, signal_id)
    except NotFound as exc:
        return refused(request, found, 404, explain(locale, exc))
    if not any(roles.may_see_queue(user.role, user.stores, q) for q in signal.queues):
        return refused(request, found, 403, text(locale, "forbidden_signal", signal=str(signal_id)))
    queue = form.get("queue") or None
    try:
        if decision == "claim":
            signal_actions.claim(rt, user.workspace_id, signal_id, user.staff_id)
        elif decision == "acknowledge":
            signal_actions.acknowledge(rt, user.workspace_id, signal_id, user.staff_id)
        elif decision == "contact":
            signal_actions.record_outcome(
                rt, user.workspace_id, signal_id, "contacted", user.staff_id
            )
        elif decision == "reserve":
            signal_actions.reserve_for_pickup(
                rt,
                rt.identity,
                user.workspace_id,
                signal_id,
                form.get("sku", ""),
                form.get("store", "") or None,
                user.staff_id,
            )
        else:
            signal_actions.record_outcome(
                rt, user.workspace_id, signal_id, form.get("outcome", ""), user.staff_id
            )
    except (Conflict, InvalidField) as exc:
        return _queue_page(request, found, queue, fragment=False, error=explain(locale, exc))
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale, exc))
    target = "/console/signals" + ("?" + urlencode({"queue": queue}) if queue else "")
    return redirect(target)
