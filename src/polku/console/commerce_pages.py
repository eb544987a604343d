"""The console's commerce pages: a product search, a product's stock across the stores
(nearest first, with a chart), a store's click-and-collect reservations to prepare and hand
over, and its returns to inspect (restock, outlet, dispose) and refund (money or gift card).

Availability is for everyone who serves customers (`commerce`); the store's work is for its
staff and admins (`commerce.store`), and a clerk acts only on their own stores' reservations
and returns (403 otherwise). Writes go through the stock and returns actions, so the API
shows what the page did.
"""

from __future__ import annotations

import time
from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from polku.commerce.returns import actions as return_actions
from polku.commerce.returns.queries import Return, get_return
from polku.commerce.stock import actions as stock_actions
from polku.console import commerce_view as view
from polku.console.i18n import explain, text
from polku.console.web import Form, Viewer, locale_of, posted, redirect, refused, render, signed_in
from polku.errors import Conflict, InvalidField, NotFound, PolkuError
from polku.http import runtime
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter()

AREA: Final = "commerce"
STORE_AREA: Final = "commerce.store"
STEPS: Final = ("ready", "collect", "release")
OUTCOMES: Final = ("restock", "outlet", "dispose")
REFUND_METHODS: Final = return_actions.REFUND_METHODS


def _now() -> int:
    return int(time.time() * 1000)


@router.get("/commerce")
def landing(request: Request, q: str = Query("", max_length=200)) -> Response:
    """Find a product to see its stock; the way to the store's reservations and returns."""
    found = signed_in(request, AREA)
    locale = locale_of(request, found)
    rt = runtime(request)
    with translate_errors("searching the catalogue"), rt.engine.connect() as conn:
        hits = view.find_products(conn, found.user.workspace_id, q, locale)
    return render(request, "commerce/landing.html", found, q=q, hits=hits)


@router.get("/commerce/products/{product_id}")
def product_page(
    request: Request,
    product_id: str,
    sku: str | None = Query(None, max_length=200),
    store: str | None = Query(None, max_length=100),
    postal_code: str | None = Query(None, max_length=20),
) -> Response:
    """A product's units in every store and online, nearest first from a store or a postal
    code (a clerk's own store unless they choose another), as a table and a chart."""
    found = signed_in(request, AREA)
    user, locale = found.user, locale_of(request, found)
    if store is None and not postal_code and user.role == "store_staff" and user.stores:
        store = sorted(user.stores)[0]
    rt = runtime(request)
    try:
        with translate_errors("reading availability"), rt.engine.connect() as conn:
            origin = view.origin_of(
                conn, user.workspace_id, store=store or None, postal_code=postal_code
            )
            stock = view.product_stock(
                conn, user.workspace_id, product_id, sku=sku or None, origin=origin, lang=locale
            )
    except (InvalidField, NotFound) as exc:
        return refused(request, found, exc.status, explain(locale, exc))
    rows = [(s.name, float(s.available)) for s in stock.stores]
    return render(
        request,
        "commerce/product.html",
        found,
        stock=stock,
        origin=origin,
        postal_code=postal_code or "",
        chart_rows=rows,
    )


# -- the store's work --------------------------------------------------------------------------


def _store_page(
    request: Request,
    viewer: Viewer,
    template: str,
    store: str | None,
    status: int = 200,
    error: str | None = None,
) -> Response:
    """A store's reservations or returns page, for a store the user works (403 otherwise)."""
    user, locale = viewer.user, locale_of(request, viewer)
    rt = runtime(request)
    with translate_errors("reading the stores"), rt.engine.connect() as conn:
        stores = view.stores_of(conn, user.workspace_id, user)
    chosen = store or (stores[0].location_id if stores else "")
    if not chosen:
        return refused(request, viewer, 404, text(locale, "commerce_no_stores"))
    if not view.may_work(user, chosen) or chosen not in {s.location_id for s in stores}:
        return refused(request, viewer, 403, text(locale, "commerce_forbidden_store", store=chosen))
    with translate_errors("reading the store's work"), rt.engine.connect() as conn:
        work: dict[str, object]
        if template == "commerce/reservations.html":
            work = {"reservations": view.open_reservations(conn, user.workspace_id, chosen, locale)}
        else:
            work = {"returns": view.store_returns(conn, user.workspace_id, chosen, _now())}
    return render(
        request,
        template,
        viewer,
        status,
        store=chosen,
        store_name=next(s.name for s in stores if s.location_id == chosen),
        stores=stores,
        error=error,
        outcomes=OUTCOMES,
        refund_methods=REFUND_METHODS,
        **work,
    )


def _back(path: str, store: str | None) -> str:
    return path + ("?" + urlencode({"store": store}) if store else "")


@router.get("/commerce/reservations")
def reservations_page(
    request: Request, store: str | None = Query(None, max_length=100)
) -> Response:
    """The click-and-collect reservations of a store to prepare and hand over."""
    found = signed_in(request, STORE_AREA)
    return _store_page(request, found, "commerce/reservations.html", store)


@router.post("/commerce/reservations/{reservation_id}/{step}")
def reservation_step(request: Request, reservation_id: str, step: str, form: Form) -> Response:
    """Mark a reservation ready, hand it over, or cancel it, at a store the user works."""
    found = posted(request, form, STORE_AREA)
    user, locale = found.user, locale_of(request, found)
    if step not in STEPS:
        return refused(request, found, 404, text(locale, "commerce_no_step", step=step[:40]))
    rt = runtime(request)
    with translate_errors("reading the reservation"), rt.engine.connect() as conn:
        reservation = stock_actions.get_reservation(conn, user.workspace_id, reservation_id)
    if reservation is None:
        message = text(locale, "commerce_no_reservation", reservation=reservation_id[:200])
        return refused(request, found, 404, message)
    if not view.may_work(user, reservation.location_id):
        message = text(locale, "commerce_forbidden_reservation", reservation=reservation_id)
        return refused(request, found, 403, message)
    try:
        if step == "ready":
            stock_actions.mark_ready(rt, user.workspace_id, reservation_id)
        elif step == "collect":
            stock_actions.collect(rt, user.workspace_id, reservation_id, user.staff_id)
        else:
            stock_actions.release(rt, user.workspace_id, reservation_id, "cancelled")
    except Conflict as exc:
        return _store_page(
            request,
            found,
            "commerce/reservations.html",
            reservation.location_id,
            409,
            explain(locale, exc),
        )
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale, exc))
    return redirect(_back("/console/commerce/reservations", reservation.location_id))


@router.get("/commerce/returns")
def returns_page(request: Request, store: str | None = Query(None, max_length=100)) -> Response:
    """A store's returns to inspect and to refund, and what came of the latest."""
    found = signed_in(request, STORE_AREA)
    return _store_page(request, found, "commerce/returns.html", store)


def _inspections(form: dict[str, str], ret: Return) -> list[return_actions.Inspection]:
    """The units of each line of `ret` the form gives each outcome (fields `<outcome>-<i>`
    and `condition-<i>`, i the line's place in the return); InvalidField for a count that is
    not a whole number of 0 or more."""
    found: list[return_actions.Inspection] = []
    for i, line in enumerate(ret.lines):
        condition = form.get(f"condition-{i}", "").strip()[:500] or None
        for outcome in OUTCOMES:
            raw = form.get(f"{outcome}-{i}", "").strip() or "0"
            if not raw.isdigit() or len(raw) > 6:
                raise InvalidField(
                    f"{raw[:20]!r} is not a number of units for {line.sku}: type a whole "
                    "number, 0 or more.",
                    field=f"{outcome}-{i}",
                    code="invalid_quantity",
                    message_id="inspect_bad_count",
                    params={"count": raw[:20], "sku": line.sku},
                )
            if int(raw):
                found.append(return_actions.Inspection(line.sku, int(raw), outcome, condition))
    return found


def _return_at_my_store(request: Request, viewer: Viewer, return_id: str) -> Return | Response:
    locale = locale_of(request, viewer)
    rt = runtime(request)
    with translate_errors("reading the return"), rt.engine.connect() as conn:
        ret = get_return(conn, viewer.user.workspace_id, return_id)
    if ret is None:
        return refused(
            request, viewer, 404, text(locale, "commerce_no_return", ret=return_id[:200])
        )
    if not view.may_work(viewer.user, ret.location_id):
        return refused(
            request, viewer, 403, text(locale, "commerce_forbidden_return", ret=return_id)
        )
    return ret


@router.post("/commerce/returns/{return_id}/inspect")
def inspect_return(request: Request, return_id: str, form: Form) -> Response:
    """Give every returned unit an outcome: back on the shelf, to the store's outlet, or
    disposed of."""
    found = posted(request, form, STORE_AREA)
    ret = _return_at_my_store(request, found, return_id)
    if isinstance(ret, Response):
        return ret
    locale = locale_of(request, found)
    try:
        outcomes = _inspections(form, ret)
        return_actions.inspect(
            runtime(request), found.user.workspace_id, return_id, outcomes, found.user.staff_id
        )
    except (InvalidField, Conflict) as exc:
        return _store_page(
            request,
            found,
            "commerce/returns.html",
            ret.location_id,
            exc.status,
            explain(locale, exc),
        )
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale, exc))
    return redirect(_back("/console/commerce/returns", ret.location_id) + f"#return-{return_id}")


@router.post("/commerce/returns/{return_id}/refund")
def refund_return(request: Request, return_id: str, form: Form) -> Response:
    """Refund an inspected return to the original payment or as a gift card, and show the
    outcome (a gift card's full code is shown on this page only, once)."""
    found = posted(request, form, STORE_AREA)
    ret = _return_at_my_store(request, found, return_id)
    if isinstance(ret, Response):
        return ret
    locale = locale_of(request, found)
    try:
        done = return_actions.refund(
            runtime(request), found.user.workspace_id, return_id, form.get("method", "")
        )
    except (InvalidField, Conflict) as exc:
        return _store_page(
            request,
            found,
            "commerce/returns.html",
            ret.location_id,
            exc.status,
            explain(locale, exc),
        )
    except PolkuError as exc:
        return refused(request, found, exc.status, explain(locale, exc))
    return render(
        request,
        "commerce/refunded.html",
        found,
        ret=done.ret,
        card=done.giftcard.card if done.giftcard else None,
        code=done.giftcard.code if done.giftcard else None,
        store=ret.location_id,
    )
