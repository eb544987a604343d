"""Every write to routed signals: what staff do with them, the routing rules, the webhooks.

A decision on a signal (claim, acknowledge, outcome, close) runs in one
`outbox.transaction()` with its event (`Signal Claimed`, ...), so the log learns exactly
what the tables say. A claim is a conditional update (``... WHERE status = 'open'``): of two
staff members claiming at once, on either backend, one wins and the other gets 409
`already_claimed` naming the winner.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final
from urllib.parse import urlsplit

import orjson
from sqlalchemy import Connection, func, select, update

from polku.collect.internal import internal_event
from polku.commerce.stock import actions as stock_actions
from polku.commerce.stock.actions import Reservation
from polku.errors import Conflict, InvalidField, NotFound, PolkuError
from polku.identity.identifiers import IdentityConfig
from polku.identity.queries import profile_identifiers
from polku.log.outbox import Backends, Transaction
from polku.profiles.queries import resolve
from polku.signals.queries import Signal, require_signal
from polku.signals.routing import (
    STORE_PREFIX,
    RoutingConfig,
    check_queue,
    config_body,
    parse_config,
)
from polku.signals.tables import claims, outcomes, routing_configs, signals, webhooks
from polku.storage.engine import translate_errors, writing

__all__ = [
    "OUTCOMES",
    "Webhook",
    "acknowledge",
    "claim",
    "close",
    "create_webhook",
    "delete_webhook",
    "list_webhooks",
    "record_outcome",
    "reserve_for_pickup",
    "set_routing",
]

OUTCOMES: Final = ("contacted", "reserved", "sold", "not_interested")
_STAFF_LIMIT: Final = 100


def _now() -> int:
    return int(time.time() * 1000)


def _staff(staff_id: object, name: str = "staff_id") -> str:
    if not isinstance(staff_id, str) or not 0 < len(staff_id) <= _STAFF_LIMIT:
        raise InvalidField(
            f"{name} must name the staff member or agent (1 to {_STAFF_LIMIT} characters).",
            field=name,
            code="invalid_staff",
            params={"name": name, "limit": _STAFF_LIMIT},
        )
    return staff_id


def _record(tx: Transaction, signal: Signal, event: str, at: int, **properties: Any) -> None:
    values = {"signal_id": signal.signal_id, "profile_id": signal.profile_id}
    values.update({k: v for k, v in properties.items() if v is not None})
    tx.record(
        internal_event(
            signal.workspace_id,
            event,
            values,
            partition_key=f"profile:{signal.profile_id}",
            at_ms=at,
        )
    )


def _locked(conn: Connection, workspace_id: str, signal_id: int) -> Signal:
    """The signal, its row locked until the transaction ends (PostgreSQL; SQLite has one
    writer), so concurrent decisions on one signal take turns."""
    conn.execute(
        select(signals.c.id)
        .where(signals.c.workspace_id == workspace_id, signals.c.id == signal_id)
        .with_for_update()
    )
    return require_signal(conn, workspace_id, signal_id)


def _held(signal: Signal) -> Conflict:
    return Conflict(
        f"Signal {signal.signal_id} is already claimed by {signal.claimed_by!r}.",
        field="signal_id",
        code="already_claimed",
        hint=f"{signal.claimed_by} holds this customer; pick another signal, or ask them to "
        "close it (POST /v1/signals/{id}/close).",
        params={"signal": signal.signal_id, "staff": signal.claimed_by},
    )


def _closed(signal: Signal) -> Conflict:
    return Conflict(
        f"Signal {signal.signal_id} is closed.",
        field="signal_id",
        code="signal_closed",
        hint="A closed signal cannot be claimed or acknowledged again.",
        params={"signal": signal.signal_id},
    )


def claim(runtime: Backends, workspace_id: str, signal_id: int, staff_id: str) -> Signal:
    """`staff_id` takes the signal (`Signal Claimed`); 409 `already_claimed` if someone
    holds it (the same person claiming again gets it back unchanged)."""
    staff = _staff(staff_id)
    now = _now()
    with runtime.outbox.transaction() as tx:
        conn = tx.conn
        signal = require_signal(conn, workspace_id, signal_id)
        taken = conn.execute(
            update(signals)
            .where(
                signals.c.workspace_id == workspace_id,
                signals.c.id == signal_id,
                signals.c.status == "open",
            )
            .values(status="claimed", claimed_by=staff, claimed_at=now)
        ).rowcount
        if not taken:
            current = require_signal(conn, workspace_id, signal_id)
            if current.status == "closed":
                raise _closed(current)
            if current.claimed_by == staff:
                return current
            raise _held(current)
        number = conn.execute(
            select(func.count())
            .select_from(claims)
            .where(claims.c.workspace_id == workspace_id, claims.c.signal_id == signal_id)
        ).scalar_one()
        conn.execute(
            claims.insert().values(
                workspace_id=workspace_id,
                signal_id=signal_id,
                claim=int(number) + 1,
                profile_id=signal.profile_id,
                staff_id=staff,
                claimed_at=now,
            )
        )
        _record(tx, signal, "Signal Claimed", now, kind=signal.kind, staff_id=staff)
        return require_signal(conn, workspace_id, signal_id)


def _claimer(signal: Signal, staff: str | None) -> None:
    if signal.status == "closed":
        raise _closed(signal)
    if signal.status == "open":
        raise Conflict(
            f"Signal {signal.signal_id} is not claimed.",
            field="signal_id",
            code="not_claimed",
            hint="Claim it first: POST /v1/signals/{id}/claim.",
            params={"signal": signal.signal_id},
        )
    if staff is not None and signal.claimed_by != staff:
        raise _held(signal)


def acknowledge(
    runtime: Backends, workspace_id: str, signal_id: int, staff_id: str | None = None
) -> Signal:
    """The claimer has seen it and acts on it (`Signal Acknowledged`)."""
    staff = None if staff_id is None else _staff(staff_id)
    now = _now()
    with runtime.outbox.transaction() as tx:
        signal = _locked(tx.conn, workspace_id, signal_id)
        _claimer(signal, staff)
        if signal.status == "acknowledged":
            return signal
        tx.conn.execute(
            update(signals)
            .where(signals.c.workspace_id == workspace_id, signals.c.id == signal_id)
            .values(status="acknowledged")
        )
        _record(tx, signal, "Signal Acknowledged", now, staff_id=staff or signal.claimed_by)
        return require_signal(tx.conn, workspace_id, signal_id)


def record_outcome(
    runtime: Backends,
    workspace_id: str,
    signal_id: int,
    outcome: str,
    staff_id: str | None = None,
    note: str | None = None,
) -> Signal:
    """What came of the signal (`Signal Outcome Recorded`); the latest outcome is the
    signal's. Allowed in any status: a sale can follow the close."""
    if outcome not in OUTCOMES:
        raise InvalidField(
            f"Unknown outcome {outcome[:50]!r}.",
            field="outcome",
            code="invalid_outcome",
            hint="Send one of: " + ", ".join(OUTCOMES) + ".",
            params={"outcome": outcome[:50], "outcomes": ", ".join(OUTCOMES)},
        )
    staff = None if staff_id is None else _staff(staff_id)
    if note is not None and len(note) > 1000:
        raise InvalidField(
            "note is longer than 1000 characters.",
            field="note",
            message_id="note_too_long",
            params={"limit": 1000},
        )
    now = _now()
    with runtime.outbox.transaction() as tx:
        conn = tx.conn
        signal = _locked(conn, workspace_id, signal_id)
        seq = conn.execute(
            select(func.count())
            .select_from(outcomes)
            .where(outcomes.c.workspace_id == workspace_id, outcomes.c.signal_id == signal_id)
        ).scalar_one()
        conn.execute(
            outcomes.insert().values(
                workspace_id=workspace_id,
                signal_id=signal_id,
                seq=int(seq) + 1,
                outcome=outcome,
                staff_id=staff,
                note=note,
                at=now,
            )
        )
        conn.execute(
            update(signals)
            .where(signals.c.workspace_id == workspace_id, signals.c.id == signal_id)
            .values(outcome=outcome)
        )
        _record(
            tx, signal, "Signal Outcome Recorded", now, outcome=outcome, staff_id=staff, note=note
        )
        return require_signal(conn, workspace_id, signal_id)


def close(
    runtime: Backends, workspace_id: str, signal_id: int, staff_id: str | None = None
) -> Signal:
    """Done with the signal (`Signal Closed`): its claim ends, and suppression lasts the
    hold time from now. Closing a closed signal changes nothing."""
    staff = None if staff_id is None else _staff(staff_id)
    now = _now()
    with runtime.outbox.transaction() as tx:
        conn = tx.conn
        signal = _locked(conn, workspace_id, signal_id)
        if signal.status == "closed":
            return signal
        if staff is not None and signal.claimed_by not in (None, staff):
            raise _held(signal)
        conn.execute(
            update(signals)
            .where(signals.c.workspace_id == workspace_id, signals.c.id == signal_id)
            .values(status="closed", closed_at=now)
        )
        conn.execute(
            update(claims)
            .where(
                claims.c.workspace_id == workspace_id,
                claims.c.signal_id == signal_id,
                claims.c.released_at.is_(None),
            )
            .values(released_at=now)
        )
        _record(
            tx,
            signal,
            "Signal Closed",
            now,
            staff_id=staff or signal.claimed_by,
            outcome=signal.outcome,
        )
        return require_signal(conn, workspace_id, signal_id)


def reserve_for_pickup(
    runtime: Backends,
    identity: IdentityConfig,
    workspace_id: str,
    signal_id: int,
    sku: str,
    store: str | None = None,
    staff_id: str | None = None,
) -> tuple[Signal, Reservation]:
    """Hold one unit of `sku` for the signal's customer at the signal's store (`store`, if
    given, must be it or a store whose queue the signal is on), by the ids they are known
    by, and record the outcome `reserved`. 400 without a size or outside the signal's
    stores, or when the customer has no user or device id to hold it for; 409 (from stock)
    when the store has none to hold."""
    staff = None if staff_id is None else _staff(staff_id)
    with translate_errors("reading the signal"), runtime.engine.connect() as conn:
        signal = require_signal(conn, workspace_id, signal_id)
        stores = {signal.store_id} | {
            q[len(STORE_PREFIX) :] for q in signal.queues if q.startswith(STORE_PREFIX)
        }
        stores.discard(None)
        at = store or signal.store_id
        if not sku or at is None or at not in stores:
            raise InvalidField(
                "Choose the product size to reserve at the signal's store.",
                field="sku" if not sku else "store",
                message_id="reserve_no_size",
                hint="Send the SKU of the size, and the signal's store (or leave store out).",
            )
        holder = resolve(conn, workspace_id, signal.profile_id) or signal.profile_id
        known = profile_identifiers(conn, workspace_id, holder, identity)
    user_ids = [i.value for i in known.get("user_id", [])]
    anonymous_ids = [i.value for i in known.get("anonymous_id", [])]
    if not user_ids and not anonymous_ids:
        raise InvalidField(
            "The customer has no user id or device id to hold a reservation for.",
            field="profile_id",
            message_id="reserve_no_identity",
        )
    try:
        reservation = stock_actions.reserve(
            runtime,
            workspace_id,
            at,
            [stock_actions.Line(sku, 1)],
            user_id=user_ids[0] if user_ids else None,
            anonymous_id=None if user_ids else anonymous_ids[0],
            channel="store",
        )
    except PolkuError as exc:
        if exc.field == "lines[0].sku":  # stock names its own body's line; here it is `sku`
            exc.field = "sku"
        raise
    return record_outcome(runtime, workspace_id, signal_id, "reserved", staff), reservation


# -- routing rules ---------------------------------------------------------------------------


def set_routing(runtime: Backends, workspace_id: str, body: object) -> RoutingConfig:
    """Replace the workspace's routing config with `body` (validated first: 400 naming the
    field); signals routed from now on use it."""
    config = parse_config(body)
    text = orjson.dumps(config_body(config)).decode()
    now = _now()
    with translate_errors("saving the routing rules"), writing(runtime.engine) as conn:
        updated = conn.execute(
            update(routing_configs)
            .where(routing_configs.c.workspace_id == workspace_id)
            .values(config=text, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                routing_configs.insert().values(
                    workspace_id=workspace_id, config=text, updated_at=now
                )
            )
    return config


# -- webhook endpoints -----------------------------------------------------------------------


Webhook = dict[str, Any]


def _url(value: object) -> str:
    if not isinstance(value, str) or len(value) > 2000:
        raise InvalidField(
            "url must be an http or https URL.",
            field="url",
            code="invalid_url",
            message_id="invalid_url_scheme",
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(
            f"{value[:100]!r} is not an http(s) URL.",
            field="url",
            code="invalid_url",
            hint="Send the CRM's endpoint, e.g. https://crm.example.com/hooks/polku.",
            params={"url": value[:100]},
        )
    return value


def _webhook(row: Any, secret: str | None = None) -> Webhook:
    body: Webhook = {
        "id": row.endpoint_id,
        "url": row.url,
        "queues": orjson.loads(row.queues),
        "active": bool(row.active),
        "created_at": row.created_at,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def create_webhook(
    runtime: Backends,
    workspace_id: str,
    url: str,
    queues: list[str] | None = None,
    secret: str | None = None,
) -> Webhook:
    """A CRM endpoint that receives every new signal on `queues` (all when empty), signed
    with `secret` (generated when not given; shown only in this answer)."""
    checked = _url(url)
    wanted = [check_queue(q, f"queues[{i}]") for i, q in enumerate(queues or [])]
    if secret is not None and not 16 <= len(secret) <= 200:
        raise InvalidField(
            "secret must be 16 to 200 characters.",
            field="secret",
            hint="Leave it out and Polku generates one.",
            message_id="invalid_secret",
            params={"low": 16, "high": 200},
        )
    key = secret or "whsec_" + secrets.token_urlsafe(32)
    endpoint_id = "wh_" + secrets.token_hex(8)
    values = {
        "workspace_id": workspace_id,
        "endpoint_id": endpoint_id,
        "url": checked,
        "secret": key,
        "queues": orjson.dumps(sorted(set(wanted))).decode(),
        "active": True,
        "created_at": _now(),
    }
    with translate_errors("saving the webhook"), writing(runtime.engine) as conn:
        conn.execute(webhooks.insert().values(**values))
        row = conn.execute(
            select(webhooks).where(
                webhooks.c.workspace_id == workspace_id, webhooks.c.endpoint_id == endpoint_id
            )
        ).one()
    return _webhook(row, key)


def list_webhooks(conn: Connection, workspace_id: str) -> list[Webhook]:
    rows = conn.execute(
        select(webhooks)
        .where(webhooks.c.workspace_id == workspace_id)
        .order_by(webhooks.c.created_at, webhooks.c.endpoint_id)
    ).all()
    return [_webhook(row) for row in rows]


def delete_webhook(runtime: Backends, workspace_id: str, endpoint_id: str) -> None:
    """Stop sending to the endpoint (its delivery log stays readable)."""
    with translate_errors("removing the webhook"), writing(runtime.engine) as conn:
        gone = conn.execute(
            update(webhooks)
            .where(webhooks.c.workspace_id == workspace_id, webhooks.c.endpoint_id == endpoint_id)
            .values(active=False)
        ).rowcount
    if not gone:
        raise NotFound(
            f"There is no webhook {endpoint_id[:60]!r}.",
            field="endpoint_id",
            code="unknown_webhook",
            hint="List them with GET /v1/signals/webhooks.",
            params={"webhook": endpoint_id[:60]},
        )
