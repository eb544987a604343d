"""Who a stock or price event concerns: the `stock` triggers of journeys.

* ``back_in_stock``: a stock movement took a SKU's sellable units at a location from none
  to some. It concerns the people who viewed or carted the product in the last 30 days and
  did not buy it since, and whose preferred store is that location (a warehouse, which
  serves the web shop, concerns all of them).
* ``price_drop``: ``Variant Price Changed`` lowered a SKU's price. It concerns the people
  who viewed or carted the product in the last 30 days and did not buy it since.

These events are about a product, not a person (no userId or anonymousId), so they pass
identity by; the consumer enrolls each person they concern with the event's messageId and
the person as the trigger (one enrollment per person and event, however often it is read).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from sqlalchemy import Connection

from polku.commerce.orders.preferences import preferred_store
from polku.events import LoggedEvent
from polku.identity.identifiers import IdentityConfig
from polku.journeys.definition import Journey
from polku.storage.bulk import fetch_rows

__all__ = ["EVENTS", "concerned", "triggered"]

EVENTS: Final = frozenset(
    {
        "Stock Received",
        "Stock Adjusted",
        "Stock Counted",
        "Stock Transferred",
        "Variant Price Changed",
    }
)
_LOOKBACK_MS: Final = 30 * 86_400_000
_MAX_PEOPLE: Final = 1_000


def concerned(conn: Connection, workspace_id: str, product_id: str, since: int) -> list[str]:
    """Profiles that viewed or carted `product_id` after `since` and bought it after none of
    those views, most recent first."""
    rows = fetch_rows(
        conn,
        "SELECT ep.profile_id, MAX(CASE WHEN i.kind IN ('view', 'cart') THEN i.at END), "
        "MAX(CASE WHEN i.kind = 'purchase' THEN i.at END) "
        "FROM recommend_interactions i JOIN identity_event_profiles ep "
        'ON ep."offset" = i."offset" '
        "WHERE i.workspace_id = ? AND i.product_id = ? AND i.at > ? "
        "GROUP BY ep.profile_id",
        (workspace_id, product_id, since),
    )
    people = [
        (int(viewed), str(profile))
        for profile, viewed, bought in rows
        if viewed is not None and (bought is None or int(bought) < int(viewed))
    ]
    people.sort(reverse=True)
    return [profile for _, profile in people[:_MAX_PEOPLE]]


def _restocked(conn: Connection, event: LoggedEvent) -> list[tuple[str, str, str, str]]:
    """(location, location kind, sku, product) that this movement brought back in stock."""
    rows = fetch_rows(
        conn,
        "SELECT m.location_id, l.kind, m.sku, v.product_id, m.on_hand_delta, "
        "s.on_hand - s.reserved "
        "FROM stock_movements m "
        "JOIN stock_levels s ON s.workspace_id = m.workspace_id "
        "AND s.location_id = m.location_id AND s.sku = m.sku "
        "JOIN locations l ON l.workspace_id = m.workspace_id AND l.location_id = m.location_id "
        "JOIN catalog_variants v ON v.workspace_id = m.workspace_id AND v.sku = m.sku "
        "WHERE m.workspace_id = ? AND m.movement_id = ? AND m.on_hand_delta > 0",
        (event.workspace_id, event.message_id),
    )
    return [
        (str(loc), str(kind), str(sku), str(product))
        for loc, kind, sku, product, delta, available in rows
        if int(available) > 0 and int(available) - int(delta) <= 0
    ]


def triggered(
    conn: Connection,
    library: Sequence[Any],
    event: LoggedEvent,
    identity: IdentityConfig | None = None,
) -> Iterator[tuple[Journey, int, str, dict[str, Any]]]:
    """(journey, version, profile, enrollment data) for each person `event` enrolls in a
    `stock` journey of `library` (`polku.journeys.queries.Live` items)."""
    wanted = "price_drop" if event.event == "Variant Price Changed" else "back_in_stock"
    journeys = [
        live
        for live in library
        if live.journey.trigger.kind == "stock" and live.journey.trigger.stock == wanted
    ]
    if not journeys:
        return
    ws = event.workspace_id
    since = event.timestamp - _LOOKBACK_MS
    config = identity or IdentityConfig()
    if wanted == "price_drop":
        props = event.message.get("properties") or {}
        price, before = props.get("price"), props.get("previous_price")
        if not (
            isinstance(price, int | float)
            and isinstance(before, int | float)
            and props.get("currency") == props.get("previous_currency")
            and price < before
        ):
            return
        product = str(props.get("product_id") or "")
        data = {
            "product_id": product,
            "products": [product],
            "sku": props.get("sku"),
            "name": props.get("name"),
            "price": price,
            "previous_price": before,
            "currency": props.get("currency"),
            "event": {"event": event.event, "properties": props},
        }
        for profile in concerned(conn, ws, product, since):
            for live in journeys:
                yield live.journey, live.version, profile, data
        return
    for location, kind, sku, product in _restocked(conn, event):
        data = {
            "product_id": product,
            "products": [product],
            "sku": sku,
            "store_id": location if kind == "store" else None,
            "location_id": location,
            "event": {"event": event.event, "properties": {"sku": sku, "location_id": location}},
        }
        for profile in concerned(conn, ws, product, since):
            if kind == "store" and preferred_store(conn, ws, profile, config) != location:
                continue
            for live in journeys:
                yield live.journey, live.version, profile, data
