"""The demo store: Pohjoisretki's stores, catalogue, stock and customers, seeded for `polku demo`.

`seed_demo_store` gives a workspace a realistic Finnish retailer, so that every commerce API
answers something meaningful before the first simulated shopper arrives:

- **Locations**: the chain's `STORES` in six cities and the web shop's `WAREHOUSE` in Vantaa,
  at the real shopping centres' coordinates and postal codes, open Monday to Friday 10-21,
  Saturday 10-18 and Sunday 12-18 (Europe/Helsinki), with the Finnish public holidays of the
  coming year as exceptions (Itsenäisyyspäivä closed, Christmas Eve until 13, ...).
- **Catalogue**: the simulator's `CATALOGUE`, one SKU per colour and size, in Finnish with
  English translations, so a search for "takki" or "jacket" finds the jackets.
- **Stock**: one stock count per location of every SKU (`shoppers.stock_level`): some sold
  out, some down to their last units.
- **Customers with a history** (`CUSTOMERS`): web and app orders and till receipts (with the
  loyalty card) of the past months, sent as Segment messages through the collection API's own
  validation into the log with their own timestamps, so profiles have a timeline; stated and
  learnt preferences; a click and collect reservation; and a return received at a store,
  inspected into the outlet and refunded as a gift card.

Every write goes through the same actions the APIs call. Running it again changes nothing:
locations, stock counts, the return and the reservation are made only when missing, the
catalogue writes nothing when unchanged, and the history's messageIds are fixed, so the log
keeps each message once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection

from polku.access.actions import create_write_key
from polku.access.queries import list_write_keys
from polku.collect.validate import EventRejected, prepare
from polku.commerce.catalog.actions import save_products
from polku.commerce.catalog.validation import ProductInput, VariantInput
from polku.commerce.locations.actions import create_location, set_exceptions
from polku.commerce.locations.queries import get_location
from polku.commerce.returns import actions as returns
from polku.commerce.returns.queries import get_return
from polku.commerce.stock import actions as stock
from polku.commerce.stock.queries import movements_of
from polku.demo.shoppers import (
    BRAND,
    CATALOGUE,
    STORES,
    WAREHOUSE,
    DemoProduct,
    DemoStore,
    stock_level,
)
from polku.errors import Unavailable
from polku.events import to_iso
from polku.profiles.queries import find_by_identifier
from polku.storage.engine import writing

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = [
    "CUSTOMERS",
    "DemoCustomer",
    "SeedReport",
    "curl_examples",
    "ensure_write_key",
    "finnish_holidays",
    "seed_demo_store",
]

_SOURCE: Final = "demo-store"  # the write key the seeded history is collected under
_HELSINKI: Final = ZoneInfo("Europe/Helsinki")
_SHIPPING_CENTS: Final = 590
_FREE_SHIPPING_CENTS: Final = 7900

_WEEK: Final = {
    **{day: [["10:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "sat": [["10:00", "18:00"]],
    "sun": [["12:00", "18:00"]],
}
_WAREHOUSE_WEEK: Final = {day: [["07:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@dataclass(frozen=True, slots=True)
class DemoCustomer:
    """A customer of the demo store whose history is seeded (the simulator's shoppers are
    others, invented as the demo runs)."""

    user_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    loyalty_card: str | None
    home_store_id: str
    postal_code: str
    stated: dict[str, str] = field(default_factory=dict)  # preferred_* traits they set

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


CUSTOMERS: Final[tuple[DemoCustomer, ...]] = (
    DemoCustomer(
        "demo-aino",
        "Aino",
        "Virtanen",
        "aino.virtanen@esimerkki.fi",
        "+358401230001",
        "LC90000001",
        "store-hki-kamppi",
        "00100",
    ),
    DemoCustomer(
        "demo-eino",
        "Eino",
        "Korhonen",
        "eino.korhonen@esimerkki.fi",
        "+358401230002",
        "LC90000002",
        "store-tre-ratina",
        "33100",
        stated={
            "preferred_store": "store-tre-ratina",
            "preferred_delivery_method": "click_and_collect",
        },
    ),
    DemoCustomer(
        "demo-helmi",
        "Helmi",
        "Mäkinen",
        "helmi.makinen@esimerkki.fi",
        "+358401230003",
        None,  # not a loyalty member: the till asks for an email for the receipt
        "store-oulu-valkea",
        "90100",
    ),
)
"""Aino (Helsinki): web orders delivered home, till receipts at Kamppi, a jacket ordered in
two sizes of which she returned the smaller (into the outlet, refunded as a gift card), and a
click and collect order waiting at Kamppi. Eino (Tampere): says he prefers Ratina and click
and collect, and buys there. Helmi (Oulu): orders online to a parcel locker and pays with
MobilePay."""

RETURN_ID: Final = "demo-return-aino-1"
RESERVATION_ID: Final = "demo-cc-aino-1"


@dataclass
class SeedReport:
    """What `seed_demo_store` found and did; the counts are of what this run added."""

    workspace_id: str
    locations_created: int = 0
    products: int = 0  # in the catalogue (unchanged ones are written and recorded nowhere)
    stock_counts: int = 0
    events_appended: int = 0
    return_id: str = RETURN_ID
    reservation_id: str = RESERVATION_ID
    giftcard_code: str | None = None  # only on the run that issued the refund card
    profiles: dict[str, str] = field(default_factory=dict)  # userId -> profile id


# -- holidays -----------------------------------------------------------------------------


def _easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous algorithm of 1876)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _weekday_between(year: int, month: int, first: int, weekday: int) -> date:
    """The day of `weekday` (Monday 0) in the week starting `first` of `month`."""
    start = date(year, month, first)
    return start + timedelta(days=(weekday - start.weekday()) % 7)


def finnish_holidays(year: int) -> list[tuple[date, list[list[str]] | None, str]]:
    """The days a Finnish shopping-centre store keeps other hours in `year`: (date, opening
    intervals or None when closed, the day's Finnish name)."""
    easter = _easter(year)
    short = [["12:00", "18:00"]]
    return [
        (date(year, 1, 1), None, "Uudenvuodenpäivä"),
        (date(year, 1, 6), short, "Loppiainen"),
        (easter - timedelta(days=2), None, "Pitkäperjantai"),
        (easter, None, "Pääsiäispäivä"),
        (easter + timedelta(days=1), short, "2. pääsiäispäivä"),
        (date(year, 5, 1), short, "Vappu"),
        (easter + timedelta(days=39), short, "Helatorstai"),
        (_weekday_between(year, 6, 19, 4), [["10:00", "14:00"]], "Juhannusaatto"),
        (_weekday_between(year, 6, 20, 5), None, "Juhannuspäivä"),
        (date(year, 12, 6), None, "Itsenäisyyspäivä"),
        (date(year, 12, 24), [["10:00", "13:00"]], "Jouluaatto"),
        (date(year, 12, 25), None, "Joulupäivä"),
        (date(year, 12, 26), short, "Tapaninpäivä"),
        (date(year, 12, 31), [["10:00", "18:00"]], "Uudenvuodenaatto"),
    ]


def _exceptions(today: date) -> list[dict[str, Any]]:
    """The holidays of the coming year, in the format of the locations API."""
    until = today + timedelta(days=366)
    found: list[dict[str, Any]] = []
    for year in (today.year, today.year + 1):
        for day, hours, note in finnish_holidays(year):
            if today <= day <= until:
                item: dict[str, Any] = {"date": day.isoformat(), "note": note}
                if hours is None:
                    item["closed"] = True
                else:
                    item["hours"] = hours
                found.append(item)
    return found


# -- locations, catalogue, stock ------------------------------------------------------------


def _all_locations() -> tuple[DemoStore, ...]:
    return (*STORES, WAREHOUSE)


def _seed_locations(runtime: Runtime, ws: str, today: date, report: SeedReport) -> None:
    dated = _exceptions(today)
    for place in _all_locations():
        with runtime.engine.connect() as conn:
            exists = get_location(conn, ws, place.id) is not None
        if not exists:
            create_location(
                runtime,
                ws,
                {
                    "location_id": place.id,
                    "name": place.name,
                    "kind": place.kind,
                    "address": [place.address],
                    "postal_code": place.postal_code,
                    "city": place.city,
                    "country": "FI",
                    "latitude": place.latitude,
                    "longitude": place.longitude,
                    "timezone": "Europe/Helsinki",
                    "click_and_collect": place.click_and_collect,
                },
                hours=_WAREHOUSE_WEEK if place.kind == "warehouse" else _WEEK,
                requested_by="polku demo",
            )
            report.locations_created += 1
        if place.kind == "store":
            # Hours record no event, so keeping the coming year's holidays current is free.
            set_exceptions(runtime, ws, place.id, dated)


def product_input(product: DemoProduct) -> ProductInput:
    """The catalogue entry of a simulator product: every colour in every size a SKU."""
    return ProductInput(
        product_id=product.id,
        name=product.name,
        description=product.about_fi,
        brand=BRAND,
        category=tuple(product.category.split("/")),
        image_url=product.image_url,
        attributes={"material": product.material},
        translations={
            "fi": {"name": product.name, "description": product.about_fi},
            "en": {"name": product.name_en, "description": product.about_en},
        },
        variants=tuple(
            VariantInput(
                sku=product.sku(size, colour),
                price_minor=product.price_cents,
                currency="EUR",
                colour=colour,
                size=size,
                image_url=product.variant_image_url(colour),
            )
            for colour in product.colours
            for size in product.sizes
        ),
    )


def _seed_catalogue(runtime: Runtime, ws: str, report: SeedReport) -> None:
    batch = [product_input(product) for product in CATALOGUE]
    problems = [problem for problem in save_products(runtime, ws, batch) if problem is not None]
    if problems:
        raise problems[0]
    report.products = len(batch)


def _counted(conn: Connection, ws: str, place: DemoStore, probe: str) -> bool:
    """Whether the demo's opening count of `place` was made (its movement of SKU `probe`)."""
    return any(
        movement["reference"] == _count_id(place)
        for movement in movements_of(conn, ws, probe, location_id=place.id, limit=500)
    )


def _count_id(place: DemoStore) -> str:
    return f"demo-opening-count-{place.id}"


def _seed_stock(runtime: Runtime, ws: str, report: SeedReport) -> None:
    """Count every SKU at every location, once. The count comes after the history's till
    sales in the log (it is today's count, they are past sales), so it sets the levels."""
    skus = [sku for product in CATALOGUE for sku in product.skus]
    for place in _all_locations():
        probe = next(sku for sku in skus if stock_level(sku, place.id) > 0)
        with runtime.engine.connect() as conn:
            if _counted(conn, ws, place, probe):
                continue
        lines = [stock.Line(sku, stock_level(sku, place.id)) for sku in skus]
        stock.count(runtime, ws, place.id, lines, count_id=_count_id(place))
        report.stock_counts += 1


# -- the customers' history -----------------------------------------------------------------


_PRODUCTS: Final = {product.id: product for product in CATALOGUE}
_STORES: Final = {store.id: store for store in STORES}


def _item(product_id: str, colour: str, size: str, quantity: int = 1) -> dict[str, Any]:
    product = _PRODUCTS[product_id]
    return {
        "product_id": product.id,
        "sku": product.sku(size, colour),
        "name": product.name,
        "category": product.category,
        "brand": BRAND,
        "variant": colour,
        "size": size,
        "price": product.price,
        "quantity": quantity,
    }


def _amounts(items: Sequence[dict[str, Any]], *, delivered: bool) -> dict[str, Any]:
    goods = sum(round(item["price"] * 100) * item["quantity"] for item in items)
    shipping = _SHIPPING_CENTS if delivered and goods < _FREE_SHIPPING_CENTS else 0
    return {
        "total": (goods + shipping) / 100,
        "shipping": shipping / 100,
        "currency": "EUR",
        "products": list(items),
    }


class _History:
    """One customer's messages as their shop, app and tills sent them, `days` ago."""

    def __init__(self, customer: DemoCustomer, now: datetime) -> None:
        self.customer = customer
        self.now = now
        self.messages: list[dict[str, Any]] = []

    def _at(self, days: int, clock: str) -> str:
        """`days` before now at `clock` (HH:MM) Helsinki time (a day earlier if that is
        still to come), so till receipts fall within opening hours."""
        hour, minute = (int(part) for part in clock.split(":"))
        local = (self.now - timedelta(days=days)).astimezone(_HELSINKI)
        moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if moment > self.now:
            moment -= timedelta(days=1)
        return to_iso(int(moment.timestamp() * 1000))

    def _add(self, key: str, days: int, clock: str, body: dict[str, Any]) -> None:
        self.messages.append(
            {
                "messageId": f"demo-seed-{self.customer.user_id.removeprefix('demo-')}-{key}",
                "timestamp": self._at(days, clock),
                **body,
            }
        )

    def identify(self, key: str, days: int, channel: str, extra: dict[str, Any]) -> None:
        c = self.customer
        traits: dict[str, Any] = {
            "firstName": c.first_name,
            "lastName": c.last_name,
            "email": c.email,
            "phone": c.phone,
            "postal_code": c.postal_code,
            "consent": {"marketing": {"email": True, "sms": False}, "personalisation": True},
            **extra,
        }
        if c.loyalty_card is not None:
            traits["loyalty_card"] = c.loyalty_card
        self._add(
            key,
            days,
            "19:30",
            {
                "type": "identify",
                "userId": c.user_id,
                "traits": traits,
                "context": {"channel": channel},
            },
        )

    def online(
        self,
        key: str,
        days: int,
        channel: str,
        items: Sequence[dict[str, Any]],
        *,
        shipping_method: str,
        payment_method: str,
        store_id: str | None = None,
    ) -> str:
        order_id = f"PR-DEMO-{self.customer.user_id.removeprefix('demo-').upper()}-{key}"
        properties = {
            "order_id": order_id,
            **_amounts(items, delivered=shipping_method != "click_and_collect"),
            "shipping_method": shipping_method,
            "payment_method": payment_method,
        }
        if store_id is not None:
            properties["store_id"] = store_id
        self._add(
            key,
            days,
            "20:15",
            {
                "type": "track",
                "event": "Order Completed",
                "userId": self.customer.user_id,
                "properties": properties,
                "context": {"channel": channel},
            },
        )
        return order_id

    def _till(self, store_id: str) -> dict[str, Any]:
        return {
            "channel": "store",
            "device": {"id": _STORES[store_id].till_id(1), "type": "pos", "shared": True},
        }

    def till(
        self, key: str, days: int, store_id: str, items: Sequence[dict[str, Any]], payment: str
    ) -> None:
        c = self.customer
        found: dict[str, Any] = (
            {"loyalty_card": c.loyalty_card}
            if c.loyalty_card is not None
            else {"receipt_email": c.email}
        )
        self._add(
            key,
            days,
            "15:40",
            {
                "type": "track",
                "event": "POS Order Completed",
                "anonymousId": f"pos-session-{c.user_id}-{key}",
                "properties": {
                    "store_id": store_id,
                    "receipt_id": f"R-DEMO-{c.user_id.removeprefix('demo-').upper()}-{key}",
                    **found,
                    **_amounts(items, delivered=False),
                    "payment_method": payment,
                },
                "context": self._till(store_id),
            },
        )

    def visit(self, key: str, days: int, store_id: str) -> None:
        self._add(
            key,
            days,
            "15:20",
            {
                "type": "track",
                "event": "Store Visited",
                "anonymousId": f"tablet-session-{self.customer.user_id}-{key}",
                "properties": {
                    "store_id": store_id,
                    "method": "loyalty_card",
                    "loyalty_card": self.customer.loyalty_card,
                },
                "context": {
                    "channel": "store",
                    "device": {
                        "id": _STORES[store_id].tablet_id,
                        "type": "store_tablet",
                        "shared": True,
                    },
                },
            },
        )

    def viewed(self, key: str, days: int, clock: str, item: dict[str, Any]) -> None:
        product = _PRODUCTS[item["product_id"]]
        self._add(
            key,
            days,
            clock,
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": self.customer.user_id,
                "properties": {
                    **item,
                    "currency": "EUR",
                    "url": product.url,
                    "image_url": product.image_url,
                },
                "context": {"channel": "web", "page": {"url": product.url, "path": product.path}},
            },
        )


def _histories(now: datetime) -> tuple[list[dict[str, Any]], str]:
    """Every seeded customer's messages, and the order id of the jacket Aino returns."""
    aino, eino, helmi = (_History(c, now) for c in CUSTOMERS)

    aino.identify("signup", 240, "web", {"city": "Helsinki"})
    aino.online(
        "W1",
        200,
        "web",
        [_item("P1008", "Musta", "S"), _item("P1009", "Musta", "S")],
        shipping_method="home_delivery",
        payment_method="card",
    )
    aino.till("R1", 150, "store-hki-kamppi", [_item("P1016", "Harmaa", "OS")], "card")
    aino.online(
        "W2",
        110,
        "web",
        [_item("P1013", "Khaki", "S")],
        shipping_method="home_delivery",
        payment_method="card",
    )
    aino.till(
        "R2",
        75,
        "store-hki-kamppi",
        [_item("P1021", "Punainen", "36-38", 2), _item("P1029", "Teräs", "OS")],
        "card",
    )
    aino.online(
        "A1",
        40,
        "app",
        [_item("P1006", "Luonnonvalkoinen", "S")],
        shipping_method="home_delivery",
        payment_method="mobilepay",
    )
    aino.visit("V1", 20, "store-hki-kamppi")
    aino.till("R3", 20, "store-hki-kamppi", [_item("P1020", "Valkoinen", "S")], "card")
    returned = aino.online(
        "W3",
        12,
        "web",
        [_item("P1001", "Tummansininen", "S"), _item("P1001", "Tummansininen", "M")],
        shipping_method="home_delivery",
        payment_method="card",
    )
    aino.viewed("PV1", 1, "21:05", _item("P1002", "Musta", "S"))
    aino.viewed("PV2", 0, "07:40", _item("P1002", "Musta", "S"))

    eino.identify("signup", 300, "app", {"city": "Tampere", **eino.customer.stated})
    eino.online(
        "W1",
        280,
        "web",
        [_item("P1027", "Oranssi", "L")],
        shipping_method="parcel_locker",
        payment_method="invoice",
    )
    eino.till("R1", 190, "store-tre-ratina", [_item("P1022", "Ruskea", "44")], "card")
    eino.online(
        "A1",
        95,
        "app",
        [_item("P1003", "Petrooli", "L")],
        shipping_method="click_and_collect",
        payment_method="card",
        store_id="store-tre-ratina",
    )
    eino.till("R2", 60, "store-tre-ratina", [_item("P1019", "Musta", "L")], "cash")
    eino.online(
        "A2",
        25,
        "app",
        [_item("P1014", "Musta", "L"), _item("P1017", "Sininen", "OS")],
        shipping_method="click_and_collect",
        payment_method="card",
        store_id="store-tre-ratina",
    )
    eino.till("R3", 6, "store-tre-ratina", [_item("P1029", "Musta", "OS")], "card")

    helmi.identify("signup", 180, "web", {"city": "Oulu"})
    helmi.online(
        "W1",
        170,
        "web",
        [_item("P1023", "Musta", "38")],
        shipping_method="parcel_locker",
        payment_method="mobilepay",
    )
    helmi.online(
        "W2",
        90,
        "web",
        [_item("P1010", "Harmaa", "M")],
        shipping_method="parcel_locker",
        payment_method="mobilepay",
    )
    helmi.till("R1", 50, "store-oulu-valkea", [_item("P1018", "Sininen", "OS")], "card")
    helmi.online(
        "W3",
        8,
        "web",
        [_item("P1024", "Sininen", "39"), _item("P1021", "Harmaa", "39-41")],
        shipping_method="parcel_locker",
        payment_method="mobilepay",
    )

    messages = [m for history in (aino, eino, helmi) for m in history.messages]
    messages.sort(key=lambda m: str(m["timestamp"]))
    return messages, returned


def ensure_write_key(conn: Connection, workspace_id: str, source_name: str) -> str:
    """The workspace's active write key of `source_name`, made when it has none, so running
    the demo again sends under the same source instead of adding keys."""
    for row in list_write_keys(conn):
        if (
            row["workspace_id"] == workspace_id
            and row["source_name"] == source_name
            and not row["revoked"]
        ):
            return str(row["write_key"])
    return create_write_key(conn, workspace_id, source_name)


def _source_id(runtime: Runtime, ws: str) -> str:
    """The source the history is collected under: the workspace's ``demo-store`` write key."""
    with writing(runtime.engine) as conn:
        key = ensure_write_key(conn, ws, _SOURCE)
    source = runtime.keys.source(key)
    assert source is not None, "a write key made a moment ago is known"
    return source.source_id


def _collect(runtime: Runtime, ws: str, messages: Iterable[dict[str, Any]]) -> int:
    """Validate and stamp `messages` as the collection API does and append them to the log
    (which keeps a messageId once); return how many were new."""
    source_id = _source_id(runtime, ws)
    received_at = int(time.time() * 1000)
    events = []
    for index, raw in enumerate(messages):
        try:
            events.append(
                prepare(
                    raw,
                    implied_type=None,
                    received_at=received_at,
                    batch_sent_at=None,
                    workspace_id=ws,
                    source_id=source_id,
                    max_event_bytes=runtime.settings.max_event_bytes,
                    identity=runtime.identity,
                    index=index,
                )
            )
        except EventRejected as exc:  # the seed's own messages: a bug here, not bad input
            raise AssertionError(f"demo history message refused: {exc.rejection}") from exc
    before = runtime.log.head()
    after = runtime.log.append_sync(events)
    return max(0, after - before)


def _settle(runtime: Runtime, timeout: float = 120.0) -> None:
    """Wait until the pipeline has projected the whole log (orders, identity, profiles)."""
    if runtime.pipeline is not None:
        runtime.pipeline.run_until_caught_up(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while any(runtime.progress.lags().values()):  # production mode: the workers project it
        if time.monotonic() > deadline:
            raise Unavailable(
                f"The demo history was not projected within {timeout:g} s.",
                hint="Start `polku worker` (the production mode's pipeline) and run again.",
            )
        time.sleep(0.05)


# -- the return, the reservation --------------------------------------------------------------


def _seed_return(runtime: Runtime, ws: str, order_id: str, report: SeedReport) -> None:
    """Aino's jacket in size S: returned at Kamppi, too worn to sell as new (outlet), and
    refunded as a gift card. Each step is taken when the return has not reached it yet."""
    sku = _PRODUCTS["P1001"].sku("S", "Tummansininen")
    with runtime.engine.connect() as conn:
        found = get_return(conn, ws, RETURN_ID)
    if found is None:
        returns.request(
            runtime,
            ws,
            order_id,
            [returns.RequestLine(sku, 1, "wrong_size", "Liian pieni, M sopii")],
            channel="store",
            location_id="store-hki-kamppi",
            return_id=RETURN_ID,
        )
        status = "received"
    else:
        status = found.status
    if status == "received":
        returns.inspect(
            runtime,
            ws,
            RETURN_ID,
            [returns.Inspection(sku, 1, "outlet", "Sovitettu, hintalappu irrotettu")],
        )
        status = "inspected"
    if status == "inspected":
        refunded = returns.refund(runtime, ws, RETURN_ID, "gift_card")
        if refunded.giftcard is not None:
            report.giftcard_code = refunded.giftcard.code


def _seed_reservation(runtime: Runtime, ws: str) -> None:
    """A fleece jacket Aino ordered to collect at Kamppi, picked and waiting for her."""
    with runtime.engine.connect() as conn:
        if stock.get_reservation(conn, ws, RESERVATION_ID) is not None:
            return
    product = _PRODUCTS["P1006"]
    sku = next(s for s in product.skus if stock_level(s, "store-hki-kamppi") >= 3)
    stock.reserve(
        runtime,
        ws,
        "store-hki-kamppi",
        [stock.Line(sku, 1)],
        user_id="demo-aino",
        hold=timedelta(days=7),
        reservation_id=RESERVATION_ID,
    )
    stock.mark_ready(runtime, ws, RESERVATION_ID)


def _policy(runtime: Runtime, ws: str) -> None:
    returns.set_policy(
        runtime,
        ws,
        default_window_days=30,
        category_windows=[(("Vaatteet", "Takit"), 100)],
        outlet_discount_percent=30,
        gift_card_bonus_percent=10,
        gift_card_validity_days=730,
    )


def _profiles(runtime: Runtime, ws: str) -> dict[str, str]:
    found: dict[str, str] = {}
    with runtime.engine.connect() as conn:
        for customer in CUSTOMERS:
            holder = find_by_identifier(conn, ws, "user_id", customer.user_id, runtime.identity)
            if holder is not None:
                found[customer.user_id] = holder[0]
    return found


def seed_demo_store(
    runtime: Runtime, workspace_id: str = "demo", *, now: datetime | None = None
) -> SeedReport:
    """Give `workspace_id` the demo retailer (see the module's docstring): locations with
    hours and holidays, the catalogue, stock, and customers with a history, a return and a
    reservation. Safe to run again: what exists is left as it is. `now` dates the history
    (its default, the wall clock, is what the demo wants: a timeline ending today).
    """
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    report = SeedReport(workspace_id)
    _seed_locations(runtime, workspace_id, moment.date(), report)
    _seed_catalogue(runtime, workspace_id, report)
    _policy(runtime, workspace_id)
    messages, returned = _histories(moment)
    report.events_appended = _collect(runtime, workspace_id, messages)
    _settle(runtime)
    _seed_stock(runtime, workspace_id, report)
    _seed_return(runtime, workspace_id, returned, report)
    _seed_reservation(runtime, workspace_id)
    _settle(runtime)
    report.profiles = _profiles(runtime, workspace_id)
    return report


def curl_examples(report: SeedReport, url: str, token: str) -> list[tuple[str, str]]:
    """Ready-to-run commands for the commerce APIs over the seeded store: (what it shows,
    the curl command), for `polku demo` to print."""
    auth = f"-H 'Authorization: Bearer {token}'"
    aino = report.profiles.get("demo-aino", "PROFILE_ID")
    found = [
        (
            "Talvitakki Revontuli near Kamppi",
            f"curl {auth} '{url}/v1/availability?product_id=P1001&postal_code=00100&k=3'",
        ),
        (
            "stores near Tampere, open now?",
            f"curl {auth} '{url}/v1/locations/nearest?postal_code=33100&k=3'",
        ),
        ("search 'takki'", f"curl {auth} '{url}/v1/catalog/search?q=takki&lang=fi'"),
        ("Aino's orders, every channel", f"curl {auth} '{url}/v1/profiles/{aino}/orders'"),
        ("Aino's checkout defaults", f"curl {auth} '{url}/v1/checkout/defaults?userId=demo-aino'"),
        ("Kamppi's outlet shelf", f"curl {auth} '{url}/v1/outlet?location_id=store-hki-kamppi'"),
    ]
    if report.giftcard_code is not None:
        body = orjson.dumps({"code": report.giftcard_code}).decode()
        found.append(
            (
                "Aino's refund gift card (its code is shown only now)",
                f"curl {auth} -H 'Content-Type: application/json' -d '{body}' "
                f"{url}/v1/giftcards/balance",
            )
        )
    else:
        found.append(("Aino's gift cards", f"curl {auth} '{url}/v1/giftcards?userId=demo-aino'"))
    return found
