"""The gift card consumer: every gift card event, applied to the ledger once.

`apply_event` is the one place an event changes a card. A decision of `actions` calls it
inside its own transaction for the event it records (the card and its event commit
together); the consumer calls it again when the event comes through the log and finds the
entry already there (keyed by messageId); a replay calls it for every event in order and
rebuilds the same cards, entries and balances.

Only Polku's own gift card events count (an internal event has no source): a card is money,
and an event sent by another system through the collection API is kept on the timeline but
can neither create value nor spend it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, func, insert, select, update

from polku.commerce.catalog.money import price_minor
from polku.commerce.giftcards.queries import get_card
from polku.commerce.giftcards.tables import entries, giftcards
from polku.events import LoggedEvent, NewEvent, to_ms
from polku.pipeline.consumer import Apply

__all__ = [
    "CANCELLED",
    "EVENTS",
    "EXPIRED",
    "ISSUED",
    "REDEEMED",
    "GiftCardsConsumer",
    "apply_event",
]

ISSUED = "Gift Card Issued"
REDEEMED = "Gift Card Redeemed"
EXPIRED = "Gift Card Expired"
CANCELLED = "Gift Card Cancelled"
EVENTS = frozenset({ISSUED, REDEEMED, EXPIRED, CANCELLED})

_KIND = {ISSUED: "issued", REDEEMED: "redeemed", EXPIRED: "expired", CANCELLED: "cancelled"}


def _text(value: Any, limit: int) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)[:limit]
    return None


def _ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def is_applied(conn: Connection, workspace_id: str, message_id: str) -> bool:
    query = select(
        exists().where(entries.c.workspace_id == workspace_id, entries.c.entry_id == message_id)
    )
    return bool(conn.execute(query).scalar())


def apply_event(conn: Connection, event: LoggedEvent | NewEvent, message: dict[str, Any]) -> bool:
    """Apply one gift card event; False when it is not one or was applied before."""
    name = event.event
    properties = message.get("properties")
    if name not in EVENTS or event.source_id or not isinstance(properties, dict):
        return False
    ws = event.workspace_id
    giftcard_id = _text(properties.get("giftcard_id"), 64)
    currency = _text(properties.get("currency"), 3)
    if giftcard_id is None or currency is None or is_applied(conn, ws, event.message_id):
        return False
    amount = price_minor(properties.get("amount"), currency, "amount")
    at = event.timestamp
    entry: dict[str, Any] = {
        "workspace_id": ws,
        "entry_id": event.message_id,
        "giftcard_id": giftcard_id,
        "kind": _KIND[name],
        "redemption_id": _text(properties.get("redemption_id"), 200),
        "order_id": _text(properties.get("order_id"), 200),
        "store_id": _text(properties.get("store_id"), 100),
        "note": _text(properties.get("note") or properties.get("reason"), 500),
        "at": at,
    }
    if name == ISSUED:
        conn.execute(
            insert(giftcards).values(
                workspace_id=ws,
                giftcard_id=giftcard_id,
                code_hash=str(properties.get("code_hash", "")),
                code_last4=str(properties.get("code_last4", ""))[:4],
                currency=currency,
                amount_minor=amount,
                balance_minor=amount,
                status="active",
                reason=_text(properties.get("reason"), 16) or "sale",
                issued_at=at,
                expires_at=_ms(properties.get("expires_at")) or at,
                user_id=message.get("userId"),
                anonymous_id=message.get("anonymousId"),
                partition_key=event.partition_key,
                order_id=_text(properties.get("order_id"), 200),
                return_id=_text(properties.get("return_id"), 200),
                note=_text(properties.get("note"), 500),
            )
        )
        entry["note"] = _text(properties.get("note"), 500)
        conn.execute(
            insert(entries).values(seq=1, amount_minor=amount, balance_minor=amount, **entry)
        )
        return True
    card = get_card(conn, ws, giftcard_id, lock=True)
    if card is None:
        return False
    balance = card.balance_minor - amount
    values: dict[str, Any] = {"balance_minor": balance}
    if name in (EXPIRED, CANCELLED):
        values.update(status=_KIND[name], closed_at=at)
    conn.execute(
        update(giftcards)
        .where(giftcards.c.workspace_id == ws, giftcards.c.giftcard_id == giftcard_id)
        .values(**values)
    )
    seq = conn.execute(
        select(func.max(entries.c.seq)).where(
            entries.c.workspace_id == ws, entries.c.giftcard_id == giftcard_id
        )
    ).scalar()
    conn.execute(
        insert(entries).values(
            seq=int(seq or 0) + 1, amount_minor=-amount, balance_minor=balance, **entry
        )
    )
    return True


class GiftCardsConsumer:
    """Keeps gift cards and their ledgers from the log (see the module doc)."""

    name = "giftcards"

    def reset(self, conn: Connection) -> None:
        for table in (entries, giftcards):
            conn.execute(delete(table))

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        # A redemption needs the card's balance of the moment it is applied, so the work is
        # in `apply`, in the writing transaction, under the card's row lock.
        relevant = [e for e in events if e.event in EVENTS and not e.source_id]

        def apply(writer: Connection) -> None:
            for event in relevant:
                apply_event(writer, event, event.message)

        return apply
