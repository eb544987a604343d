"""Every write to gift cards: issue, redeem, cancel, and write off what expired.

Each function validates its input first (a 4xx naming the field), then decides in one
transaction that locks the card's row (PostgreSQL `FOR UPDATE`; SQLite admits one writer),
checks, applies the event through `projection.apply_event` (the same code the consumer and a
replay run) and records the event in the same transaction (`runtime.outbox`). Two tills
redeeming the same card at once therefore queue on its row, and the second sees the balance
the first left. A refused redemption changes nothing and records nothing.

Events are the owner's track events when the card has an owner (they join the customer's
timeline and journeys), else events about no customer with the partition key
``giftcard:<id>``; every event of one card uses the partition key of its issue, so the
card's events stay in order.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import Connection, select

from polku.collect.internal import internal_event
from polku.commerce.catalog.money import currency_code, from_minor, price_minor
from polku.commerce.giftcards.codes import code_hash, display, new_code, normalise
from polku.commerce.giftcards.projection import (
    CANCELLED,
    EXPIRED,
    ISSUED,
    REDEEMED,
    apply_event,
)
from polku.commerce.giftcards.queries import (
    Entry,
    GiftCard,
    entries_of,
    find_by_code_hash,
    get_card,
)
from polku.commerce.giftcards.tables import giftcards
from polku.errors import Conflict, InvalidField, NotFound
from polku.events import NewEvent, to_iso
from polku.identity.identifiers import IdentityConfig
from polku.identity.queries import profile_identifiers
from polku.log.outbox import Backends, Transaction
from polku.profiles.queries import resolve

__all__ = [
    "DEFAULT_VALIDITY",
    "REASONS",
    "Backends",
    "Issued",
    "Owner",
    "Redemption",
    "cancel",
    "check_balance",
    "expire_due",
    "issue",
    "issue_within",
    "money",
    "owner_of_profile",
    "redeem",
]

REASONS: Final = ("refund", "sale", "goodwill")
DEFAULT_VALIDITY: Final = timedelta(days=730)
MAX_VALIDITY: Final = timedelta(days=3660)


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose card it is: its events are this customer's track events."""

    user_id: str | None = None
    anonymous_id: str | None = None

    def __bool__(self) -> bool:
        return bool(self.user_id or self.anonymous_id)


@dataclass(frozen=True, slots=True)
class Issued:
    card: GiftCard
    code: str  # in full, grouped for printing: shown once, never stored


@dataclass(frozen=True, slots=True)
class Redemption:
    card: GiftCard  # after the redemption
    entry: Entry
    repeated: bool  # the same redemption_id was redeemed before: nothing happened now


def _now() -> int:
    return int(time.time() * 1000)


def money(minor: int, currency: str) -> str:
    """An amount as the API and messages show it: ``20.00 EUR``."""
    return f"{from_minor(minor, currency)} {currency}"


def _number(minor: int, currency: str) -> float:
    # Events carry amounts as JSON numbers, as the Segment spec does; a float of an amount
    # with at most 15 significant digits reads back exactly (`money.price_minor`).
    return float(from_minor(minor, currency))


def _message(event: NewEvent) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(event.payload)
    return message


# -- validation ----------------------------------------------------------------------------


def _amount(value: Any, currency: str, field: str = "amount") -> int:
    minor = price_minor(value, currency, field)
    if minor <= 0:
        raise InvalidField(
            f"{field} must be more than 0.",
            field=field,
            code="invalid_amount",
            hint=f"Send a positive amount in {currency}, e.g. 25.00.",
            params={"name": field},
        )
    return minor


def _expiry(expires_at: datetime | None, now: int) -> int:
    if expires_at is None:
        return now + int(DEFAULT_VALIDITY.total_seconds() * 1000)
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    at = int(expires_at.timestamp() * 1000)
    if at <= now or at > now + int(MAX_VALIDITY.total_seconds() * 1000):
        raise InvalidField(
            f"expires_at {to_iso(at)} is not between now and {MAX_VALIDITY.days // 366} years "
            "from now.",
            field="expires_at",
            code="invalid_expiry",
            hint=f"Send a future date-time, or leave it out for {DEFAULT_VALIDITY.days} days.",
            params={"years": MAX_VALIDITY.days // 366},
        )
    return at


def owner_of_profile(
    conn: Connection, workspace_id: str, profile_id: str, config: IdentityConfig
) -> Owner:
    """The customer a profile is, as events name them: its userId, else an anonymousId."""
    holder = resolve(conn, workspace_id, profile_id)
    if holder is None:
        raise NotFound(
            f"Unknown profile {profile_id!r}.",
            field="profile_id",
            code="unknown_profile",
            params={"profile": profile_id},
        )
    known = profile_identifiers(conn, workspace_id, holder, config)
    if known.get("user_id"):
        return Owner(user_id=known["user_id"][0].value)
    if known.get("anonymous_id"):
        return Owner(anonymous_id=known["anonymous_id"][-1].value)
    raise InvalidField(
        f"Profile {profile_id!r} has no userId or anonymousId to own a gift card.",
        field="profile_id",
        code="profile_without_id",
        hint="Send the owner's userId instead, or issue the card without an owner.",
        params={"profile": profile_id},
    )


def _code(text: str) -> str:
    code = normalise(text)
    if code is None:
        raise InvalidField(
            "That is not a gift card code: a code has 16 letters and digits.",
            field="code",
            code="invalid_code",
            hint="Type the code as printed on the card, e.g. 7Q2M-4KJD-0H9W-XB3T.",
        )
    return code


def _unknown_code() -> NotFound:
    return NotFound(
        "No gift card has this code.",
        field="code",
        code="unknown_gift_card",
        hint="Check the code on the card; O is read as 0 and I or L as 1.",
    )


# -- issuing -------------------------------------------------------------------------------


def issue(
    runtime: Backends,
    ws: str,
    amount: Any,
    currency: Any,
    *,
    reason: str,
    expires_at: datetime | None = None,
    owner: Owner | None = None,
    profile_id: str | None = None,
    identity: IdentityConfig | None = None,
    order_id: str | None = None,
    note: str | None = None,
    channel: str | None = None,
) -> Issued:
    """Issue a card worth `amount`: a sale, a goodwill gesture, or (from `returns`) a refund.
    The owner is a customer (`owner`) or a profile (`profile_id`, read with `identity`), or
    nobody. Returns the card and its code, which is shown this once."""
    code_currency = currency_code(currency, "currency")
    minor = _amount(amount, code_currency)
    if reason not in REASONS:
        raise InvalidField(
            f"Unknown reason {reason!r}.",
            field="reason",
            code="invalid_reason",
            hint="Send one of: " + ", ".join(REASONS) + ".",
            message_id="gift_card_invalid_reason",
            params={"reason": reason, "reasons": ", ".join(REASONS)},
        )
    now = _now()
    expiry = _expiry(expires_at, now)
    if profile_id is not None:
        if owner:
            raise InvalidField(
                "Name the owner once: a profile_id, or a userId or anonymousId.",
                field="profile_id",
                code="ambiguous_owner",
            )
        with runtime.engine.connect() as conn:
            owner = owner_of_profile(conn, ws, profile_id, identity or IdentityConfig())
    with runtime.outbox.transaction() as tx:
        issued = issue_within(
            tx,
            ws,
            minor,
            code_currency,
            reason=reason,
            expires_at=expiry,
            owner=owner or Owner(),
            order_id=order_id,
            note=note,
            channel=channel,
            at_ms=now,
        )
    return issued


def issue_within(
    tx: Transaction,
    ws: str,
    amount_minor: int,
    currency: str,
    *,
    reason: str,
    expires_at: int,
    owner: Owner,
    at_ms: int,
    order_id: str | None = None,
    return_id: str | None = None,
    note: str | None = None,
    channel: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Issued:
    """Issue a card inside a transaction that decides something else too (a refund): the
    card's event is applied and recorded in `tx`. Input is checked by the caller."""
    giftcard_id = f"gc-{uuid.uuid4().hex[:20]}"
    code = new_code()
    while find_by_code_hash(tx.conn, ws, code_hash(code)) is not None:  # 2^-80: never, but
        code = new_code()
    properties: dict[str, Any] = {
        "giftcard_id": giftcard_id,
        "code_hash": code_hash(code),
        "code_last4": code[-4:],
        "amount": _number(amount_minor, currency),
        "currency": currency,
        "expires_at": to_iso(expires_at),
        "reason": reason,
        **(extra or {}),
    }
    for key, value in (("order_id", order_id), ("return_id", return_id), ("note", note)):
        if value:
            properties[key] = value
    event = internal_event(
        ws,
        ISSUED,
        properties,
        user_id=owner.user_id,
        anonymous_id=None if owner.user_id else owner.anonymous_id,
        partition_key=None if owner else f"giftcard:{giftcard_id}",
        channel=channel,
        at_ms=at_ms,
    )
    apply_event(tx.conn, event, _message(event))
    tx.record(event)
    card = get_card(tx.conn, ws, giftcard_id)
    assert card is not None
    return Issued(card, display(code))


# -- using ---------------------------------------------------------------------------------


def check_balance(runtime: Backends, ws: str, code: str) -> tuple[GiftCard, list[Entry]]:
    """The card a code opens, with its ledger (a till's or a customer's balance check)."""
    digest = code_hash(_code(code))
    with runtime.engine.connect() as conn:
        card = find_by_code_hash(conn, ws, digest)
        if card is None:
            raise _unknown_code()
        return card, entries_of(conn, ws, card.giftcard_id)


def _event_for(
    card: GiftCard, ws: str, name: str, properties: dict[str, Any], at: int, channel: str | None
) -> NewEvent:
    return internal_event(
        ws,
        name,
        {"giftcard_id": card.giftcard_id, "currency": card.currency, **properties},
        user_id=card.user_id,
        anonymous_id=None if card.user_id else card.anonymous_id,
        partition_key=card.partition_key,
        channel=channel,
        at_ms=at,
    )


def _refuse_closed(card: GiftCard, now: int, *, what: str) -> None:
    status = card.status_at(now)
    if status == "cancelled":
        raise Conflict(
            f"Gift card {_ending(card)} was cancelled; it cannot be {what}.",
            field="code",
            code="gift_card_cancelled",
            hint="Take another payment method; the retailer can say why it was cancelled.",
            params={"last4": card.code_last4},
        )
    if status == "expired":
        raise Conflict(
            f"Gift card {_ending(card)} expired on {to_iso(card.expires_at)}; it cannot be {what}.",
            field="code",
            code="gift_card_expired",
            hint="Take another payment method; an expired card's balance is no longer valid.",
            params={"last4": card.code_last4, "expired_at": card.expires_at},
        )


def _ending(card: GiftCard) -> str:
    return "ending " + card.code_last4


def redeem(
    runtime: Backends,
    ws: str,
    code: str,
    amount: Any,
    currency: Any,
    *,
    redemption_id: str | None = None,
    order_id: str | None = None,
    store_id: str | None = None,
    channel: str | None = None,
) -> Redemption:
    """Pay `amount` with the card: refused (409) beyond its balance, when expired or
    cancelled. A `redemption_id` makes a retry safe: the same id redeems once."""
    digest = code_hash(_code(code))
    code_currency = currency_code(currency, "currency")
    minor = _amount(amount, code_currency)
    now = _now()
    with runtime.outbox.transaction() as tx:
        card = find_by_code_hash(tx.conn, ws, digest, lock=True)
        if card is None:
            raise _unknown_code()
        if redemption_id:
            earlier = next(
                (
                    e
                    for e in entries_of(tx.conn, ws, card.giftcard_id)
                    if e.kind == "redeemed" and e.redemption_id == redemption_id
                ),
                None,
            )
            if earlier is not None:
                if -earlier.amount_minor != minor:
                    raise Conflict(
                        f"redemption_id {redemption_id!r} already redeemed "
                        f"{money(-earlier.amount_minor, card.currency)} from this card.",
                        field="redemption_id",
                        code="redemption_id_reused",
                        hint="Send a new redemption_id for a new payment.",
                        params={
                            "redemption": redemption_id,
                            "amount_minor": -earlier.amount_minor,
                            "currency": card.currency,
                        },
                    )
                return Redemption(card, earlier, repeated=True)
        _refuse_closed(card, now, what="redeemed")
        if code_currency != card.currency:
            raise InvalidField(
                f"This gift card is in {card.currency}, not {code_currency}.",
                field="currency",
                code="currency_mismatch",
                hint=f"Redeem an amount in {card.currency}.",
                params={"currency": card.currency, "given": code_currency},
            )
        if minor > card.balance_minor:
            raise Conflict(
                f"Gift card {_ending(card)} has {money(card.balance_minor, card.currency)}"
                f" left; cannot redeem {money(minor, card.currency)}.",
                field="amount",
                code="insufficient_balance",
                hint=f"Redeem at most {money(card.balance_minor, card.currency)} and take the "
                "rest by another payment method.",
                params={
                    "last4": card.code_last4,
                    "balance_minor": card.balance_minor,
                    "amount_minor": minor,
                    "currency": card.currency,
                },
            )
        properties: dict[str, Any] = {
            "amount": _number(minor, card.currency),
            "balance": _number(card.balance_minor - minor, card.currency),
        }
        for key, value in (
            ("redemption_id", redemption_id),
            ("order_id", order_id),
            ("store_id", store_id),
        ):
            if value:
                properties[key] = value
        event = _event_for(card, ws, REDEEMED, properties, now, channel)
        apply_event(tx.conn, event, _message(event))
        tx.record(event)
        after = get_card(tx.conn, ws, card.giftcard_id)
        entry = entries_of(tx.conn, ws, card.giftcard_id)[-1]
    assert after is not None
    return Redemption(after, entry, repeated=False)


def cancel(runtime: Backends, ws: str, giftcard_id: str, reason: str = "cancelled") -> GiftCard:
    """Void a card (lost with its code, sold by mistake): its balance is written off."""
    now = _now()
    with runtime.outbox.transaction() as tx:
        card = get_card(tx.conn, ws, giftcard_id, lock=True)
        if card is None:
            raise NotFound(
                f"No gift card {giftcard_id!r}.",
                field="giftcard_id",
                code="unknown_gift_card",
                message_id="unknown_gift_card_id",
                params={"giftcard": giftcard_id},
            )
        _refuse_closed(card, now, what="cancelled")
        event = _event_for(
            card,
            ws,
            CANCELLED,
            {"amount": _number(card.balance_minor, card.currency), "reason": reason},
            now,
            None,
        )
        apply_event(tx.conn, event, _message(event))
        tx.record(event)
        after = get_card(tx.conn, ws, giftcard_id)
    assert after is not None
    return after


def expire_due(runtime: Backends, *, now_ms: int | None = None, limit: int = 200) -> int:
    """Write off the balance of every card whose expiry has come (a durable timer: the card
    rows' due times, looked at by whoever runs the pipeline). Returns how many expired."""
    now = _now() if now_ms is None else now_ms
    with runtime.engine.connect() as conn:
        due = conn.execute(
            select(giftcards.c.workspace_id, giftcards.c.giftcard_id)
            .where(giftcards.c.status == "active", giftcards.c.expires_at <= now)
            .order_by(giftcards.c.expires_at)
            .limit(limit)
        ).all()
    expired = 0
    for ws, giftcard_id in due:
        with runtime.outbox.transaction() as tx:
            card = get_card(tx.conn, ws, giftcard_id, lock=True)
            if card is None or card.status != "active":
                continue  # cancelled or expired meanwhile
            event = _event_for(
                card,
                ws,
                EXPIRED,
                {"amount": _number(card.balance_minor, card.currency)},
                card.expires_at,  # when it happened, whenever the timer saw it
                None,
            )
            apply_event(tx.conn, event, _message(event))
            tx.record(event)
        expired += 1
    return expired
