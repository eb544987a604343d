"""Reading gift cards: one card with its balance, its ledger, and the cards of an owner.

No read ever shows a code: only its last four characters. A card past its expiry date
reads as `expired` at once, before the expiry has been written to its ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from polku.commerce.catalog.money import from_minor
from polku.commerce.giftcards.codes import masked
from polku.commerce.giftcards.tables import entries, giftcards
from polku.events import to_iso

__all__ = ["Entry", "GiftCard", "entries_of", "find_by_code_hash", "get_card", "list_cards"]


@dataclass(frozen=True, slots=True)
class GiftCard:
    giftcard_id: str
    code_last4: str
    currency: str
    amount_minor: int
    balance_minor: int
    status: str  # as stored: active, expired, cancelled
    reason: str
    issued_at: int
    expires_at: int
    closed_at: int | None
    user_id: str | None
    anonymous_id: str | None
    partition_key: str
    order_id: str | None
    return_id: str | None
    note: str | None

    def status_at(self, now_ms: int) -> str:
        """`active`, `expired` (also when its expiry is due but not yet written) or
        `cancelled`."""
        if self.status == "active" and self.expires_at <= now_ms:
            return "expired"
        return self.status

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        return {
            "giftcard_id": self.giftcard_id,
            "code": masked(self.code_last4),
            "status": self.status_at(now_ms),
            "currency": self.currency,
            "amount": str(from_minor(self.amount_minor, self.currency)),
            "balance": str(from_minor(self.balance_minor, self.currency)),
            "reason": self.reason,
            "issued_at": to_iso(self.issued_at),
            "expires_at": to_iso(self.expires_at),
            "closed_at": to_iso(self.closed_at) if self.closed_at is not None else None,
            "userId": self.user_id,
            "anonymousId": self.anonymous_id,
            "order_id": self.order_id,
            "return_id": self.return_id,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Entry:
    entry_id: str  # the messageId of the event that made it
    giftcard_id: str
    seq: int
    kind: str
    amount_minor: int
    balance_minor: int
    redemption_id: str | None
    order_id: str | None
    store_id: str | None
    note: str | None
    at: int

    def as_dict(self, currency: str) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "seq": self.seq,
            "kind": self.kind,
            "amount": str(from_minor(self.amount_minor, currency)),
            "balance": str(from_minor(self.balance_minor, currency)),
            "redemption_id": self.redemption_id,
            "order_id": self.order_id,
            "store_id": self.store_id,
            "note": self.note,
            "at": to_iso(self.at),
        }


def _card(row: Any) -> GiftCard:
    return GiftCard(
        giftcard_id=row.giftcard_id,
        code_last4=row.code_last4,
        currency=row.currency,
        amount_minor=int(row.amount_minor),
        balance_minor=int(row.balance_minor),
        status=row.status,
        reason=row.reason,
        issued_at=int(row.issued_at),
        expires_at=int(row.expires_at),
        closed_at=None if row.closed_at is None else int(row.closed_at),
        user_id=row.user_id,
        anonymous_id=row.anonymous_id,
        partition_key=row.partition_key,
        order_id=row.order_id,
        return_id=row.return_id,
        note=row.note,
    )


def get_card(
    conn: Connection, workspace_id: str, giftcard_id: str, *, lock: bool = False
) -> GiftCard | None:
    """The card `giftcard_id`; with `lock`, its row stays locked until the transaction ends
    (PostgreSQL; SQLite's write transaction already excludes other writers)."""
    query = select(giftcards).where(
        giftcards.c.workspace_id == workspace_id, giftcards.c.giftcard_id == giftcard_id[:64]
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _card(row)


def find_by_code_hash(
    conn: Connection, workspace_id: str, digest: str, *, lock: bool = False
) -> GiftCard | None:
    """The card whose code has this digest (see `codes.code_hash`)."""
    query = select(giftcards).where(
        giftcards.c.workspace_id == workspace_id, giftcards.c.code_hash == digest
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _card(row)


def entries_of(conn: Connection, workspace_id: str, giftcard_id: str) -> list[Entry]:
    """A card's ledger, oldest first."""
    rows = conn.execute(
        select(entries)
        .where(entries.c.workspace_id == workspace_id, entries.c.giftcard_id == giftcard_id)
        .order_by(entries.c.seq)
    )
    return [
        Entry(
            entry_id=r.entry_id,
            giftcard_id=r.giftcard_id,
            seq=int(r.seq),
            kind=r.kind,
            amount_minor=int(r.amount_minor),
            balance_minor=int(r.balance_minor),
            redemption_id=r.redemption_id,
            order_id=r.order_id,
            store_id=r.store_id,
            note=r.note,
            at=int(r.at),
        )
        for r in rows
    ]


def list_cards(
    conn: Connection,
    workspace_id: str,
    *,
    user_id: str | None = None,
    return_id: str | None = None,
    return_ids: Sequence[str] | None = None,
    limit: int = 100,
) -> list[GiftCard]:
    """Cards, newest first: an owner's (`user_id`), or those refunding a return (or any of
    `return_ids`)."""
    query = select(giftcards).where(giftcards.c.workspace_id == workspace_id)
    if user_id is not None:
        query = query.where(giftcards.c.user_id == user_id)
    if return_id is not None:
        query = query.where(giftcards.c.return_id == return_id)
    if return_ids is not None:
        query = query.where(giftcards.c.return_id.in_(list(return_ids)))
    query = query.order_by(giftcards.c.issued_at.desc(), giftcards.c.giftcard_id).limit(limit)
    return [_card(r) for r in conn.execute(query)]
