"""The production mode runs the orders consumer in several workers at once (other partitions
of the log, `shared=True`): writers that meet on the same orders neither deadlock nor
disagree, and the result is the same whatever the interleaving. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import orjson

from conftest import Polku
from polku.commerce.orders.projection import OrdersConsumer
from polku.commerce.orders.queries import get_order
from polku.events import LoggedEvent
from polku.storage.engine import writing

WS = "default"


def event(offset: int, name: str, properties: dict[str, object]) -> LoggedEvent:
    message = {
        "type": "track",
        "event": name,
        "userId": f"shopper-{offset % 3}",
        "messageId": f"m-{offset}",
        "properties": properties,
        "context": {"channel": "web"},
    }
    return LoggedEvent(
        offset=offset,
        workspace_id=WS,
        message_id=f"m-{offset}",
        type="track",
        partition_key=str(message["userId"]),
        received_at=1_780_000_000_000 + offset,
        timestamp=1_780_000_000_000 + offset,
        payload=orjson.dumps(message),
        event=name,
    )


def completed(offset: int, order_id: str) -> LoggedEvent:
    return event(
        offset,
        "Order Completed",
        {
            "order_id": order_id,
            "total": offset,
            "products": [{"sku": f"sku-{offset}", "quantity": 1, "price": offset}],
        },
    )


def test_workers_on_the_same_orders_agree_and_never_deadlock(polku: Polku) -> None:
    orders = [f"o-{n}" for n in range(6)]
    # Each worker holds a different share of the same orders' events, in another order: every
    # order is completed (resent) by each worker, and refunded once by each.
    workers = [
        [
            e
            for n, order_id in enumerate(reversed(orders) if w % 2 else orders)
            for e in (
                completed(1000 + 100 * w + n, order_id),
                event(5000 + 100 * w + n, "Order Refunded", {"order_id": order_id, "total": 1}),
            )
        ]
        for w in range(4)
    ]
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def work(events: list[LoggedEvent]) -> None:
        start.wait()
        try:
            for _ in range(3):  # redelivered twice: nothing changes twice
                with writing(polku.runtime.engine) as conn:
                    OrdersConsumer().prepare(conn, events, shared=True)(conn)
        except BaseException as exc:  # reported below, with the worker's failure
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(events,)) for events in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures

    with polku.runtime.engine.connect() as conn:
        for n, order_id in enumerate(orders):
            found = get_order(conn, WS, order_id)
            assert found is not None
            # The earliest completing event in the log wins, whichever worker wrote last.
            assert found.offset == 1000 + n
            assert found.total == Decimal(1000 + n)
            assert [line.sku for line in found.lines] == [f"sku-{1000 + n}"]
            assert found.refunded_total == Decimal(4)
            assert found.status == "partly_refunded"
