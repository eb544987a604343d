"""The pipeline's promises: a replay rebuilds the same projections, redelivered events change
nothing twice, and a consumer that fails mid-batch leaves no partial state and stops nothing.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from conftest import Polku
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, delete, select

from polku.events import LoggedEvent, NewEvent
from polku.identity.projection import IdentityConsumer
from polku.identity.tables import event_profiles, identifiers, merge_blocks, merges, profile_ids
from polku.log.base import AppendListener, EventLog
from polku.pipeline.runner import Pipeline
from polku.profiles.projection import ProfilesConsumer
from polku.profiles.tables import profiles

PROJECTIONS: tuple[Table, ...] = (
    profile_ids,
    identifiers,
    event_profiles,
    merges,
    merge_blocks,
    profiles,
)
JSON_COLUMNS = frozenset({"traits", "trait_times", "consent", "channels", "identifiers"})

_clock = itertools.count(1)


def at(minutes_ago: int = 0) -> str:
    """An increasing event time; `minutes_ago` backdates it (a till that was offline)."""
    seconds = next(_clock) * 10 - minutes_ago * 60 + 3600
    return f"2026-05-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def message(kind: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    fields.setdefault("timestamp", at())
    return {"type": kind, **fields}


def send(polku: Polku, *messages: dict[str, Any]) -> None:
    response = polku.send("/v1/batch", {"batch": list(messages)})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(messages)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection row, ordered by primary key, JSON columns parsed (key order of a JSON
    object carries no meaning)."""
    taken: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in PROJECTIONS:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns))
            taken[table.name] = [
                tuple(
                    orjson.loads(value) if name in JSON_COLUMNS else value
                    for name, value in row._mapping.items()
                )
                for row in rows
            ]
    return taken


def till(card: str, email: str, receipt: str, *, minutes_ago: int = 0) -> dict[str, Any]:
    return message(
        "track",
        anonymousId="till-5-session",
        event="POS Order Completed",
        timestamp=at(minutes_ago),
        context={"channel": "store", "device": {"id": "till-5", "type": "pos"}},
        properties={
            "store_id": "hki-2",
            "receipt_id": receipt,
            "loyalty_card": card,
            "receipt_email": email,
            "total": 23.9,
            "currency": "EUR",
        },
    )


def a_day_of_events(polku: Polku) -> None:
    """Browsing, logins on two devices, till receipts, a shared kiosk, consent, junk, a wrong
    merge undone through the API, and what happens after it."""
    web = {"channel": "web", "page": {"path": "/"}}
    send(
        polku,
        message("page", anonymousId="anna-laptop", name="Home", context=web),
        message(
            "track",
            anonymousId="anna-laptop",
            event="Product Viewed",
            properties={"product_id": "sku-1", "price": 49.0},
            context=web,
        ),
        message(
            "identify",
            userId="anna",
            anonymousId="anna-laptop",
            traits={
                "email": "Anna@Koti.fi",
                "first_name": "Anna",
                "loyalty_card": "LC-77",
                "consent": {"marketing": {"email": True, "sms": False}},
            },
            context=web,
        ),
    )
    send(polku, message("screen", anonymousId="anna-phone", name="Home", context={"channel": "app"}))
    send(
        polku,
        message(
            "identify",
            userId="anna",
            anonymousId="anna-phone",
            traits={"phone": "040 765 4321"},
            context={"channel": "app"},
        ),
        message(
            "track",
            userId="anna",
            event="Order Completed",
            properties={"order_id": "o-1", "total": 49.0, "currency": "EUR"},
            context={"channel": "app"},
        ),
    )
    send(
        polku,
        message("identify", anonymousId="ben-laptop", traits={"email": "ben@koti.fi"}, context=web),
        message("page", anonymousId="ben-laptop", name="Offers", context=web),
    )
    # Ben pays with Anna's card: his receipt email outranks it, so Anna is merged into Ben.
    send(polku, till("LC77", "ben@koti.fi", "r-1"))
    kiosk = {"channel": "store", "device": {"id": "kiosk-1", "type": "kiosk"}}
    send(
        polku,
        message("identify", anonymousId="kiosk-web", traits={"email": "cia@koti.fi"}, context=kiosk),
        message("identify", anonymousId="kiosk-web", traits={"email": "dan@koti.fi"}, context=kiosk),
        message("identify", userId="undefined", anonymousId="junk-1", traits={"email": "null"}),
        message(
            "track",
            userId="anna",
            event="Consent Updated",
            properties={"purpose": "marketing", "channel": "sms", "granted": True},
        ),
    )
    polku.settle()

    ledger = polku.client.get("/v1/profiles/p_unknown/merges", headers=polku.admin)
    assert ledger.status_code == 404
    with polku.runtime.engine.connect() as conn:
        wrong = conn.execute(
            select(merges.c.merge_id).join(
                profile_ids, profile_ids.c.profile_id == merges.c.loser_id
            )
        ).all()
    # Two merges so far: Anna's phone into her laptop profile, and Anna into Ben (wrong).
    assert len(wrong) == 2
    with polku.runtime.engine.connect() as conn:
        [(merge_id,)] = conn.execute(
            select(merges.c.merge_id).where(merges.c.evidence_message_id.like("%"), merges.c.reason.like("%loyalty_card%"))
        ).all()
    response = polku.client.post(
        f"/v1/identity/merges/{merge_id}/unmerge",
        json={"reason": "family card"},
        headers=polku.admin,
    )
    assert response.status_code == 200, response.text

    send(
        polku,
        till("LC-77", "ben@koti.fi", "r-2"),
        till("LC-77", "anna@koti.fi", "r-0", minutes_ago=30),  # late: the till was offline
        message("identify", userId="anna", traits={"first_name": "Anne"}),
    )
    polku.settle()
