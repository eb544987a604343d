"""HTTP routes of gift cards: issue, balance, redeem, cancel, and the ledger.

Every route needs an admin token (the shop's checkout and the tills call these). A code is
sent in a request body, never in a URL, so it stays out of access logs and browser
histories. Handlers translate: request → `actions` or `queries` → response.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictStr

from polku.commerce.giftcards import actions, queries
from polku.errors import NotFound
from polku.http import AdminWorkspace, json_response, runtime
from polku.storage.engine import translate_errors

__all__ = ["router"]

router = APIRouter(tags=["giftcards"])

_AMOUNT = Field(description='Exact, in the main unit: 25 or "25.00" (a decimal comma is read too).')


class IssueIn(BaseModel):
    amount: float | StrictStr = _AMOUNT
    currency: StrictStr = Field(max_length=3)
    reason: StrictStr = Field("sale", description="refund, sale or goodwill.", max_length=16)
    expires_at: datetime | None = Field(None, description="Default: two years from now.")
    userId: StrictStr | None = Field(None, max_length=300, description="The owner.")
    anonymousId: StrictStr | None = Field(None, max_length=300)
    profile_id: StrictStr | None = Field(None, max_length=64, description="The owner's profile.")
    order_id: StrictStr | None = Field(None, max_length=200)
    note: StrictStr | None = Field(None, max_length=500)
    channel: StrictStr | None = Field(None, max_length=16)


class CodeIn(BaseModel):
    code: StrictStr = Field(max_length=64)


class RedeemIn(BaseModel):
    code: StrictStr = Field(max_length=64)
    amount: float | StrictStr = _AMOUNT
    currency: StrictStr = Field(max_length=3)
    redemption_id: StrictStr | None = Field(
        None, max_length=200, description="Your id for this payment: a retry redeems once."
    )
    order_id: StrictStr | None = Field(None, max_length=200)
    store_id: StrictStr | None = Field(None, max_length=100)
    channel: StrictStr | None = Field(None, max_length=16)


class CancelIn(BaseModel):
    reason: StrictStr = Field("cancelled", max_length=200)


def _now() -> int:
    return int(time.time() * 1000)


def _with_ledger(card: queries.GiftCard, ledger: list[queries.Entry]) -> dict[str, Any]:
    return {
        **card.as_dict(_now()),
        "entries": [e.as_dict(card.currency) for e in ledger],
    }


@router.post("/v1/giftcards", status_code=201)
def post_giftcard(request: Request, workspace: AdminWorkspace, body: IssueIn) -> Response:
    """Issue a gift card (`Gift Card Issued`). The answer holds the full `code`, shown this
    once: Polku keeps only its hash and last four characters."""
    rt = runtime(request)
    issued = actions.issue(
        rt,
        workspace,
        body.amount,
        body.currency,
        reason=body.reason,
        expires_at=body.expires_at,
        owner=actions.Owner(body.userId, body.anonymousId),
        profile_id=body.profile_id,
        identity=rt.identity,
        order_id=body.order_id,
        note=body.note,
        channel=body.channel,
    )
    return json_response({**issued.card.as_dict(_now()), "code": issued.code}, 201)


@router.get("/v1/giftcards")
def get_giftcards(
    request: Request,
    workspace: AdminWorkspace,
    userId: str | None = Query(None, max_length=300),
    return_id: str | None = Query(None, max_length=200),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """Gift cards, newest first: a customer's (`userId`) or a return's refund."""
    rt = runtime(request)
    with translate_errors("reading gift cards"), rt.engine.connect() as conn:
        found = queries.list_cards(
            conn, workspace, user_id=userId, return_id=return_id, limit=limit
        )
    now = _now()
    return json_response({"giftcards": [card.as_dict(now) for card in found]})


@router.get("/v1/giftcards/{giftcard_id}")
def get_giftcard(request: Request, workspace: AdminWorkspace, giftcard_id: str) -> Response:
    """One card with its balance and its ledger, oldest entry first (the code masked)."""
    rt = runtime(request)
    with translate_errors("reading gift cards"), rt.engine.connect() as conn:
        card = queries.get_card(conn, workspace, giftcard_id)
        ledger = [] if card is None else queries.entries_of(conn, workspace, giftcard_id)
    if card is None:
        raise NotFound(
            f"No gift card {giftcard_id!r}.", field="giftcard_id", code="unknown_gift_card"
        )
    return json_response(_with_ledger(card, ledger))


@router.post("/v1/giftcards/balance")
def post_balance(request: Request, workspace: AdminWorkspace, body: CodeIn) -> Response:
    """The card a code opens: balance, expiry, status and ledger (a balance check)."""
    card, ledger = actions.check_balance(runtime(request), workspace, body.code)
    return json_response(_with_ledger(card, ledger))


@router.post("/v1/giftcards/redeem", status_code=201)
def post_redeem(request: Request, workspace: AdminWorkspace, body: RedeemIn) -> Response:
    """Pay with a card (`Gift Card Redeemed`), wholly or partly. 409 `insufficient_balance`
    (with the balance), `gift_card_expired`, `gift_card_cancelled`; a repeated
    `redemption_id` answers 200 with the first redemption and redeems nothing."""
    done = actions.redeem(
        runtime(request),
        workspace,
        body.code,
        body.amount,
        body.currency,
        redemption_id=body.redemption_id,
        order_id=body.order_id,
        store_id=body.store_id,
        channel=body.channel,
    )
    return json_response(
        {
            "giftcard": done.card.as_dict(_now()),
            "entry": done.entry.as_dict(done.card.currency),
            "repeated": done.repeated,
        },
        200 if done.repeated else 201,
    )


@router.post("/v1/giftcards/{giftcard_id}/cancel")
def post_cancel(
    request: Request, workspace: AdminWorkspace, giftcard_id: str, body: CancelIn | None = None
) -> Response:
    """Void a card (`Gift Card Cancelled`): its balance is written off."""
    rt = runtime(request)
    card = actions.cancel(rt, workspace, giftcard_id, body.reason if body else "cancelled")
    with translate_errors("reading gift cards"), rt.engine.connect() as conn:
        ledger = queries.entries_of(conn, workspace, giftcard_id)
    return json_response(_with_ledger(card, ledger))
