"""Orders from every channel through the HTTP API, on SQLite and PostgreSQL: web, app and till
orders of one person in one history (the till's joined by loyalty card or receipt email),
merges and un-merges that move orders, cancellations and refunds, paging, bad input, and a
replay that rebuilds the same orders.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from sqlalchemy import select

from conftest import Polku
from polku.commerce.orders.queries import get_order, get_receipt, orders_of
from polku.commerce.orders.tables import order_changes, order_lines, orders

WS = "default"
_clock = itertools.count(1)


def at(day: int | None = None, hour: int = 12) -> str:
    """An event time: a given day of November 2026, or a fresh, increasing one."""
    if day is not None:
        return f"2026-11-{day:02d}T{hour:02d}:00:00.000Z"
    seconds = next(_clock)
    return f"2026-10-01T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000Z"


def track(event: str, properties: dict[str, Any], **fields: Any) -> dict[str, Any]:
    message = {"type": "track", "event": event, "properties": properties, **fields}
    message.setdefault("messageId", f"m-{uuid.uuid4().hex}")
    message.setdefault("timestamp", at())
    return message


def send(polku: Polku, *messages: dict[str, Any]) -> None:
    response = polku.send("/v1/batch", {"batch": list(messages)})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": len(messages)}, response.text
    polku.settle()


def get(polku: Polku, path: str, status: int = 200, **params: Any) -> Any:
    response = polku.client.get(path, params=params, headers=polku.admin)
    assert response.status_code == status, response.text
    return response.json()


def lookup(polku: Polku, kind: str, value: str) -> str:
    found: str = get(polku, "/v1/profiles/lookup", type=kind, value=value)["profile_id"]
    return found


def history(polku: Polku, profile_id: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get(polku, f"/v1/profiles/{profile_id}/orders", **params)[
        "orders"
    ]
    return found


TILL = {"channel": "store", "device": {"id": "till-HEL-01-03", "type": "pos"}}


def sign_in(polku: Polku) -> str:
    send(
        polku,
        {
            "type": "identify",
            "userId": "cust-1042",
            "anonymousId": "app-5b21e0",
            "context": {"channel": "app"},
            "traits": {
                "email": "aino.virtanen@kauppa-posti.fi",
                "loyalty_card": "6042 0000 1042",
                "first_name": "Aino",
            },
            "timestamp": at(1, 8),
        },
    )
    return lookup(polku, "user_id", "cust-1042")


def web_order(order_id: str = "W-1001", day: int = 2, **properties: Any) -> dict[str, Any]:
    return track(
        "Order Completed",
        {
            "order_id": order_id,
            "total": 129.8,
            "currency": "EUR",
            "shipping_method": "home_delivery",
            "payment_method": "card",
            "products": [
                {"sku": "TUULI-M-BLUE", "name": "Tuuli rain jacket", "price": 129.9, "quantity": 1},
                {"sku": "WAX-200", "product_id": "P-10007", "price": 12.9, "quantity": 2},
            ],
            **properties,
        },
        userId="cust-1042",
        context={"channel": "web", "page": {"path": "/checkout/done"}},
        timestamp=at(day),
    )


def app_order(order_id: str = "A-2001", day: int = 3, **properties: Any) -> dict[str, Any]:
    return track(
        "Order Completed",
        {
            "order_id": order_id,
            "total": 49.9,
            "currency": "EUR",
            "shipping_method": "click_and_collect",
            "store_id": "hki-kamppi",
            "payment_method": "mobile",
            "products": [{"sku": "HAT-1", "price": 49.9, "quantity": 1}],
            **properties,
        },
        userId="cust-1042",
        context={"channel": "app", "app": {"name": "Kauppa", "version": "4.2"}},
        timestamp=at(day),
    )


def till_receipt(receipt_id: str, day: int, **identifiers: Any) -> dict[str, Any]:
    return track(
        "POS Order Completed",
        {
            "store_id": "hki-kamppi",
            "receipt_id": receipt_id,
            "register_id": "HEL-01-03",
            "products": [{"sku": "SOCKS-1", "name": "Wool socks", "price": 14.5, "quantity": 2}],
            "total": 29.0,
            "currency": "EUR",
            "payment_method": "card",
            **identifiers,
        },
        anonymousId="till-HEL-01-03-session",
        context=TILL,
        timestamp=at(day),
    )


def test_web_app_and_till_orders_of_one_person_are_one_history(polku: Polku) -> None:
    aino = sign_in(polku)
    send(
        polku,
        web_order(),
        app_order(),
        till_receipt("R-731", 4, loyalty_card="6042-0000-1042"),
        till_receipt("R-808", 5, receipt_email="AINO.virtanen@kauppa-posti.fi"),
    )
    found = history(polku, aino)
    assert [(o["order_id"], o["channel"]) for o in found] == [
        ("pos:hki-kamppi:R-808", "store"),
        ("pos:hki-kamppi:R-731", "store"),
        ("A-2001", "app"),
        ("W-1001", "web"),
    ]
    assert {o["profile_id"] for o in found} == {aino}
    assert {o["status"] for o in found} == {"completed"}

    web = found[3]
    assert web["placed_at"] == "2026-11-02T12:00:00.000Z"
    assert (web["total"], web["currency"]) == ("129.80", "EUR")
    assert (web["shipping_method"], web["payment_method"]) == ("home_delivery", "card")
    assert web["lines"] == [
        {
            "sku": "TUULI-M-BLUE",
            "product_id": None,
            "name": "Tuuli rain jacket",
            "quantity": 1,
            "price": "129.90",
        },
        {"sku": "WAX-200", "product_id": "P-10007", "name": None, "quantity": 2, "price": "12.90"},
    ]
    receipt = get(polku, "/v1/orders/pos:hki-kamppi:R-731")
    assert receipt == found[1]
    assert (receipt["store_id"], receipt["receipt_id"]) == ("hki-kamppi", "R-731")
    assert receipt["lines"][0]["quantity"] == 2

    # The Python API other packages (returns) build on.
    with polku.runtime.engine.connect() as conn:
        order = get_order(conn, WS, "A-2001")
        assert order is not None
        assert (order.channel, order.store_id, order.profile_id) == ("app", "hki-kamppi", aino)
        assert str(order.total) == "49.90" and order.lines[0].sku == "HAT-1"
        by_receipt = get_receipt(conn, WS, "hki-kamppi", "R-808")
        assert by_receipt is not None and by_receipt.order_id == "pos:hki-kamppi:R-808"
        assert [o.order_id for o in orders_of(conn, WS, aino, limit=2)] == [
            "pos:hki-kamppi:R-808",
            "pos:hki-kamppi:R-731",
        ]


def test_a_till_receipt_with_its_own_order_id_and_an_anonymous_one(polku: Polku) -> None:
    aino = sign_in(polku)
    send(
        polku,
        till_receipt("R-1", 6, order_id=55501, phone="040 123 4567"),
        till_receipt("R-2", 7),  # nobody identified: a sale, but no one's history
    )
    send(
        polku,
        {
            "type": "identify",
            "userId": "cust-1042",
            "traits": {"phone": "+358401234567"},
            "timestamp": at(1, 9),
        },
    )
    assert [o["order_id"] for o in history(polku, aino)] == ["55501"]
    anonymous = get(polku, "/v1/orders/pos:hki-kamppi:R-2")
    assert anonymous["profile_id"] is None and anonymous["channel"] == "store"


def test_history_pages_newest_first_with_a_stable_cursor(polku: Polku) -> None:
    aino = sign_in(polku)
    send(polku, *(web_order(f"W-{n}", day=n + 1) for n in range(1, 6)))
    first = get(polku, f"/v1/profiles/{aino}/orders", limit=2)
    assert [o["order_id"] for o in first["orders"]] == ["W-5", "W-4"]
    send(polku, web_order("W-9", day=20))  # arrives while the customer pages
    second = get(polku, f"/v1/profiles/{aino}/orders", limit=2, cursor=first["next_cursor"])
    assert [o["order_id"] for o in second["orders"]] == ["W-3", "W-2"]
    third = get(polku, f"/v1/profiles/{aino}/orders", limit=2, cursor=second["next_cursor"])
    assert [o["order_id"] for o in third["orders"]] == ["W-1"]
    assert third["next_cursor"] is None


def test_a_resent_order_keeps_the_first_and_redelivery_changes_nothing(polku: Polku) -> None:
    aino = sign_in(polku)
    first = web_order("W-7", day=8)
    resend = web_order("W-7", day=9, total=1.0)  # a new messageId: a resend, not a new order
    send(polku, first)
    send(polku, resend, first)  # the first again (same messageId): deduplicated by the log
    [order] = history(polku, aino)
    assert (order["message_id"], order["total"]) == (first["messageId"], "129.80")
    assert order["placed_at"] == "2026-11-08T12:00:00.000Z"


def test_cancel_and_refunds(polku: Polku) -> None:
    aino = sign_in(polku)
    send(polku, web_order("W-1", day=2), web_order("W-2", day=3), web_order("W-3", day=4))
    send(
        polku,
        track("Order Cancelled", {"order_id": "W-1"}, userId="cust-1042", timestamp=at(5)),
        # a partial refund: one of the two tins of wax, sent as negative numbers
        track(
            "Order Refunded",
            {
                "order_id": "W-2",
                "total": -12.9,
                "currency": "EUR",
                "products": [{"sku": "WAX-200", "quantity": -1, "price": -12.9}],
            },
            userId="cust-1042",
            timestamp=at(6),
        ),
        # a refund with no amount and no products refunds the whole order
        track("Order Refunded", {"order_id": "W-3"}, userId="cust-1042", timestamp=at(7)),
    )
    found = {o["order_id"]: o for o in history(polku, aino)}
    assert found["W-1"]["status"] == "cancelled"
    assert found["W-1"]["cancelled_at"] == "2026-11-05T12:00:00.000Z"
    partly = found["W-2"]
    assert (partly["status"], partly["refunded_total"]) == ("partly_refunded", "12.90")
    assert partly["refunds"][0]["lines"] == [
        {"sku": "WAX-200", "product_id": None, "name": None, "quantity": 1, "price": "12.90"}
    ]
    assert found["W-3"]["status"] == "refunded"

    # The rest of W-2 comes back: now it is refunded in full.
    send(
        polku,
        track(
            "Order Refunded",
            {
                "order_id": "W-2",
                "total": 116.9,
                "products": [
                    {"sku": "WAX-200", "quantity": 1},
                    {"sku": "TUULI-M-BLUE", "quantity": 1},
                ],
            },
            userId="cust-1042",
            timestamp=at(8),
        ),
    )
    again = get(polku, "/v1/orders/W-2")
    assert (again["status"], again["refunded_total"]) == ("refunded", "129.80")


def test_a_refund_that_arrives_before_its_order_still_counts(polku: Polku) -> None:
    sign_in(polku)
    send(
        polku,
        track(
            "Order Refunded",
            {"order_id": "W-5", "total": 10},
            userId="cust-1042",
            timestamp=at(9),
        ),
    )
    assert get(polku, "/v1/orders/W-5", status=404)["error"]["code"] == "unknown_order"
    send(polku, web_order("W-5", day=8))
    assert get(polku, "/v1/orders/W-5")["status"] == "partly_refunded"


def test_a_merge_and_an_unmerge_move_orders_with_their_events(polku: Polku) -> None:
    # Anna holds the family's loyalty card; Ben uses it at the till with his receipt email.
    send(
        polku,
        {
            "type": "identify",
            "userId": "anna",
            "traits": {"email": "anna@koti.fi", "loyalty_card": "LC-42"},
            "timestamp": at(1),
        },
        track(
            "Order Completed",
            {"order_id": "o-anna", "total": 30, "currency": "EUR"},
            userId="anna",
            context={"channel": "web"},
            timestamp=at(2),
        ),
        {
            "type": "identify",
            "anonymousId": "ben-web",
            "traits": {"email": "ben@koti.fi"},
            "timestamp": at(2, 13),
        },
    )
    anna = lookup(polku, "user_id", "anna")
    ben = lookup(polku, "email", "ben@koti.fi")
    assert [o["order_id"] for o in history(polku, anna)] == ["o-anna"]
    assert history(polku, ben) == []

    send(polku, till_receipt("r-1", 3, receipt_email="ben@koti.fi", loyalty_card="LC42"))
    # The receipt email outranks the card: Anna's profile was merged into Ben's.
    merged = get(polku, f"/v1/profiles/{anna}/orders")
    assert (merged["profile_id"], merged["redirected_from"]) == (ben, anna)
    assert [o["order_id"] for o in merged["orders"]] == ["pos:hki-kamppi:r-1", "o-anna"]
    assert {o["profile_id"] for o in merged["orders"]} == {ben}

    [merge] = get(polku, f"/v1/profiles/{ben}/merges")["merges"]
    undone = polku.client.post(
        f"/v1/identity/merges/{merge['merge_id']}/unmerge", headers=polku.admin
    )
    assert undone.status_code == 200, undone.text
    polku.settle()
    assert [o["order_id"] for o in history(polku, anna)] == ["o-anna"]
    assert [o["order_id"] for o in history(polku, ben)] == ["pos:hki-kamppi:r-1"]
    assert get(polku, "/v1/orders/o-anna")["profile_id"] == anna


def test_bad_input_gets_a_code_and_the_field(polku: Polku) -> None:
    aino = sign_in(polku)
    cases = [
        (f"/v1/profiles/{aino}/orders", {"limit": 0}, 400, "invalid_field", "limit"),
        (f"/v1/profiles/{aino}/orders", {"limit": "many"}, 400, "invalid_field", "limit"),
        (f"/v1/profiles/{aino}/orders", {"cursor": "not-a-cursor"}, 400, "invalid_field", "cursor"),
        ("/v1/profiles/p_nobody/orders", {}, 404, "not_found", "profile_id"),
        ("/v1/profiles/" + "x" * 300 + "/orders", {}, 404, "not_found", "profile_id"),
        ("/v1/orders/nope", {}, 404, "unknown_order", "order_id"),
        ("/v1/orders/" + "y" * 500, {}, 404, "unknown_order", "order_id"),
    ]
    for path, params, status, code, field in cases:
        error = get(polku, path, status, **params)["error"]
        assert (error["code"], error.get("field")) == (code, field), (path, params, error)
        assert error["message"]
    assert polku.client.get(f"/v1/profiles/{aino}/orders").status_code == 401


def _snapshot(polku: Polku) -> dict[str, list[tuple[Any, ...]]]:
    with polku.runtime.engine.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key))
            ]
            for table in (orders, order_lines, order_changes)
        }


def test_replay_rebuilds_the_same_orders(polku: Polku) -> None:
    aino = sign_in(polku)
    send(
        polku,
        web_order(),
        app_order(),
        till_receipt("R-731", 4, loyalty_card="6042-0000-1042"),
    )
    send(
        polku,
        web_order(),  # a resend under a new messageId
        track("Order Cancelled", {"order_id": "A-2001"}, userId="cust-1042", timestamp=at(6)),
        track(
            "Order Refunded",
            {"order_id": "W-1001", "total": 12.9},
            userId="cust-1042",
            timestamp=at(7),
        ),
    )
    before, listed = _snapshot(polku), history(polku, aino)
    assert len(before["orders"]) == 3 and len(before["order_changes"]) == 2
    pipeline = polku.runtime.pipeline
    assert pipeline is not None
    pipeline.replay()
    assert _snapshot(polku) == before
    assert history(polku, aino) == listed


def test_openapi_documents_the_routes(polku: Polku) -> None:
    spec = polku.client.get("/openapi.json").json()
    for path in (
        "/v1/profiles/{profile_id}/orders",
        "/v1/orders/{order_id}",
        "/v1/profiles/{profile_id}/preferences",
        "/v1/checkout/defaults",
    ):
        operation = spec["paths"][path]["get"]
        assert operation["tags"] == ["orders"], path
        assert operation["description"], path
