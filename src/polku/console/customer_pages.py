"""The customer pages: the search (name, email, phone, loyalty card or order id) and one
person's 360° view, with un-merge of a wrong merge for the roles that answer for profiles."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Final
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from polku.console import roles
from polku.console.customer_view import (
    find_customers,
    holder_of,
    other_of_merge,
    view_of,
)
from polku.console.i18n import catalogue, explain, text
from polku.console.web import (
    Form,
    locale_of,
    now_ms,
    posted,
    redirect,
    refused,
    render,
    signed_in,
)
from polku.errors import InvalidField, PolkuError
from polku.events import CHANNELS
from polku.http import runtime
from polku.identity.actions import request_unmerge
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter()

NOTICES: Final = ("unmerged", "unmerge_pending")
"""What the 360° page may say after a redirect (`?notice=`)."""
_REASON_LIMIT: Final = 500
_ID_LIMIT: Final = 200
_QUERY_LIMIT: Final = 200


def _label(locale: str, prefix: str, value: str) -> str:
    """The words for a stored value (a channel, an identifier type, a status) in `locale`,
    or the value itself when the catalogue has none (a retailer's own channel name)."""
    key = prefix + value
    return text(locale, key) if key in catalogue() else value


def _minor(amount: Decimal) -> int:
    """An amount as minor units (cents), which the console's `money` formats."""
    return int((amount * 100).to_integral_value())


def _page_of(profile_id: str, **params: str) -> str:
    query = "?" + urlencode(params) if params else ""
    return f"/console/customers/{quote(profile_id, safe='')}{query}"


@router.get("/customers")
def customers_page(request: Request, q: str = "") -> Response:
    """Find a customer by name, email, phone, loyalty card or order id."""
    found = signed_in(request, "customers")
    if len(q) > _QUERY_LIMIT:
        message = text(locale_of(request, found), "cust_query_too_long", limit=_QUERY_LIMIT)
        return refused(request, found, 400, message)
    rt = runtime(request)
    try:
        with translate_errors("searching customers"), rt.engine.connect() as conn:
            hits = find_customers(conn, found.user.workspace_id, q, rt.identity)
    except InvalidField as exc:
        return refused(request, found, 400, explain(locale_of(request, found), exc))
    label = functools.partial(_label, locale_of(request, found))
    return render(request, "customers/search.html", found, q=q.strip(), hits=hits, label=label)


@router.get("/customers/{profile_id}")
def customer_page(
    request: Request,
    profile_id: str,
    channel: str = "",
    notice: str = "",
    other: str = "",
) -> Response:
    """One person's 360° view; a merged-away id redirects to the profile that holds it."""
    found = signed_in(request, "customers")
    locale = locale_of(request, found)
    ws, rt = found.user.workspace_id, runtime(request)
    try:
        with translate_errors("reading the customer"), rt.engine.connect() as conn:
            holder = holder_of(conn, ws, profile_id)
            if holder is not None and holder != profile_id:
                return redirect(_page_of(holder, **({"channel": channel} if channel else {})))
            view = None
            if holder is not None:
                view = view_of(conn, ws, holder, rt.identity, channel=channel or None, lang=locale)
    except InvalidField as exc:
        return refused(request, found, 400, explain(locale, exc))
    if view is None:
        return refused(request, found, 404, text(locale, "cust_unknown", profile=profile_id[:80]))
    return render(
        request,
        "customers/customer.html",
        found,
        view=view,
        channels=CHANNELS,
        may_unmerge=roles.allows(found.user.role, "customers.unmerge"),
        notice=notice if notice in NOTICES else None,
        other=other if 0 < len(other) <= _ID_LIMIT else "",
        page_url=_page_of(view.profile.profile_id),
        label=functools.partial(_label, locale),
        minor=_minor,
        now=now_ms(),
    )


@router.post("/customers/{profile_id}/merges/{merge_id}/unmerge")
async def unmerge(request: Request, profile_id: str, merge_id: str, form: Form) -> Response:
    """Undo a wrong merge of this person's ledger (as `POST /v1/identity/merges/{id}/unmerge`
    does), then show the page again with what happened."""
    found = await run_in_threadpool(posted, request, form, "customers.unmerge")
    ws, rt = found.user.workspace_id, runtime(request)
    locale = locale_of(request, found)

    def _other() -> str | None:
        with translate_errors("reading the merge ledger"), rt.engine.connect() as conn:
            return other_of_merge(conn, ws, profile_id, merge_id[:_ID_LIMIT])

    try:
        other = await run_in_threadpool(_other)
        if other is None:
            message = text(locale, "cust_merge_not_here", merge=merge_id[:80])
            return refused(request, found, 404, message)
        reason = form.get("reason", "").strip()[:_REASON_LIMIT]
        receipt = await request_unmerge(rt, ws, merge_id, found.user.staff_id, reason)
        applied = await rt.progress.wait_for(receipt)
    except PolkuError as exc:  # no such merge (404), already undone (409)
        return refused(request, found, exc.status, explain(locale, exc))
    notice = "unmerged" if applied else "unmerge_pending"
    return redirect(_page_of(profile_id, notice=notice, other=other))
