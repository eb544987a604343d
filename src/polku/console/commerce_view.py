"""What the console's commerce pages show, read from the commerce packages: a product's
stock in every store with distances, a store's reservations to prepare and hand over, and
its returns to inspect and refund with what came of them.

Reads only: every write goes through `commerce.stock.actions` and
`commerce.returns.actions`, which the pages call directly. Which stores a user may work is
decided here too (`stores_of`, `may_work`): a store clerk their own stores, an admin every
store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from polku.commerce.catalog.money import minor_digits
from polku.commerce.catalog.queries import get_product, get_products, get_variants
from polku.commerce.catalog.search import search
from polku.commerce.giftcards.queries import GiftCard, get_card
from polku.commerce.locations.geo import postal_area
from polku.commerce.locations.queries import get_location, list_locations, unknown_location
from polku.commerce.returns.queries import Listing, Return, list_listings, list_returns
from polku.commerce.stock import queries as stock
from polku.console.queries import User
from polku.errors import InvalidField, NotFound

__all__ = [
    "Found",
    "OpenReservation",
    "Origin",
    "Outcome",
    "ProductStock",
    "StoreReturns",
    "StoreStock",
    "Worked",
    "find_products",
    "may_work",
    "open_reservations",
    "origin_of",
    "product_stock",
    "store_returns",
    "stores_of",
]

_Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Found:
    """A catalogue search hit, named in the reader's language."""

    product_id: str
    name: str
    brand: str | None
    category: str


def find_products(conn: Connection, ws: str, q: str, lang: str) -> list[Found]:
    """The catalogue's best matches for `q` (searched in every language, named in `lang`)."""
    if not q.strip():
        return []
    result = search(conn, ws, q, k=20, related=0)
    return [
        Found(
            h.product.product_id,
            h.product.name_in(lang),
            h.product.brand,
            " > ".join(h.product.category),
        )
        for h in result.hits
    ]


# -- availability ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where distances are measured from: a store, or a postal code's area."""

    point: _Point
    store: str | None = None  # the location id
    postal_code: str | None = None
    place: str = ""  # the store's name or the post office


def origin_of(
    conn: Connection, ws: str, *, store: str | None, postal_code: str | None
) -> Origin | None:
    """The reference point chosen on the page: a postal code wins over a store. Raises
    `InvalidField` for a postal code Polku cannot place, `NotFound` for an unknown store."""
    if postal_code:
        area = postal_area(postal_code)
        if area is None:
            raise InvalidField(
                f"Polku cannot place the postal code {postal_code[:20]!r}.",
                field="postal_code",
                code="unknown_postal_code",
                hint="Type a five-digit Finnish postal code, e.g. 00100, or choose a store.",
                params={"postal_code": postal_code[:20]},
            )
        return Origin((area.latitude, area.longitude), postal_code=area.code, place=area.place)
    if store:
        location = get_location(conn, ws, store)
        if location is None:
            raise unknown_location(store)
        return Origin((location.latitude, location.longitude), store=store, place=location.name)
    return None


@dataclass(frozen=True, slots=True)
class StoreStock:
    """One store's units of a product (all its variants, or the one chosen)."""

    location_id: str
    name: str
    city: str
    available: int
    reserved: int
    distance_km: float | None
    low_stock: bool
    open_now: bool
    click_and_collect: bool


@dataclass(frozen=True, slots=True)
class ProductStock:
    product_id: str
    name: str
    skus: tuple[tuple[str, str], ...]  # (sku, "colour size") of the active variants
    sku: str | None  # the variant shown, or None for all of them
    stores: tuple[StoreStock, ...]  # nearest first when there is an origin, else by name
    online: int  # sellable in the warehouses
    currency: str | None
    price_minor: int | None  # the lowest price of the variants shown


def product_stock(
    conn: Connection,
    ws: str,
    product_id: str,
    *,
    sku: str | None,
    origin: Origin | None,
    lang: str,
    at: datetime | None = None,
) -> ProductStock:
    """A product's stock in every store and online, nearest first from `origin`. Raises
    `NotFound` for an unknown product, or a `sku` that is not one of its active variants."""
    product = get_product(conn, ws, product_id)
    if product is None:
        raise NotFound(
            f"There is no product {product_id[:200]!r} in the catalogue.",
            field="product_id",
            code="unknown_product",
            hint="Search for the product by its name or SKU.",
            message_id="console_unknown_product",
            params={"product": product_id[:200]},
        )
    body = stock.availability(
        conn,
        ws,
        product_id=product_id,
        near=origin.point if origin else None,
        at=at or datetime.now(UTC),
    )
    variants = body["variants"]
    if sku is not None:
        variants = [v for v in variants if v["sku"] == sku]
        if not variants:
            raise NotFound(
                f"Product {product_id[:200]!r} has no variant {sku[:200]!r} on sale.",
                field="sku",
                code="unknown_sku",
                hint="Choose one of the product's variants, or all of them.",
                message_id="console_unknown_variant",
                params={"product": product_id[:200], "sku": sku[:200]},
            )
    reserved: dict[str, int] = {}
    for variant in variants:
        for level in stock.levels_of(conn, ws, sku=variant["sku"]):
            reserved[level["location_id"]] = reserved.get(level["location_id"], 0) + int(
                level["reserved"]
            )
    stores: dict[str, StoreStock] = {}
    for variant in variants:
        for row in variant["stores"]:
            before = stores.get(row["location_id"])
            available = row["sellable"] + (before.available if before else 0)
            stores[row["location_id"]] = StoreStock(
                location_id=row["location_id"],
                name=row["name"],
                city=row["city"],
                available=available,
                reserved=reserved.get(row["location_id"], 0),
                distance_km=row["distance_km"],
                low_stock=0 < available <= stock.LOW_STOCK,
                open_now=row["open_now"],
                click_and_collect=row["click_and_collect"],
            )
    prices = [v.price for v in product.variants if v.active and (sku is None or v.sku == sku)]
    currency = product.variants[0].currency if product.variants else None
    cheapest = min(prices) if prices else None
    price_minor = None
    if cheapest is not None and currency is not None:
        price_minor = int(cheapest.scaleb(minor_digits(currency)))
    return ProductStock(
        product_id=product.product_id,
        name=product.name_in(lang),
        skus=tuple(
            (v.sku, " ".join(x for x in (v.colour, v.size) if x))
            for v in product.variants
            if v.active
        ),
        sku=sku,
        stores=tuple(stores.values()),
        online=sum(v["online"]["sellable"] for v in variants),
        currency=currency,
        price_minor=price_minor,
    )


# -- the stores a user works -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Worked:
    """A store the user may work, for the store picker."""

    location_id: str
    name: str


def stores_of(conn: Connection, ws: str, user: User) -> list[Worked]:
    """The stores whose reservations and returns `user` may work: a clerk's own stores, an
    admin's every active store (warehouses too, where returns by post arrive)."""
    if user.role == "admin":
        return [Worked(loc.location_id, loc.name) for loc in list_locations(conn, ws)]
    if user.role != "store_staff":
        return []
    found: list[Worked] = []
    for location_id in sorted(set(user.stores)):
        location = get_location(conn, ws, location_id)
        found.append(Worked(location_id, location.name if location else location_id))
    return found


def may_work(user: User, location_id: str | None) -> bool:
    """Whether `user` may prepare, hand over, inspect and refund at `location_id`."""
    if user.role == "admin":
        return True
    return user.role == "store_staff" and location_id is not None and location_id in user.stores


# -- reservations ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenReservation:
    """A click-and-collect reservation still to prepare (held) or to hand over (ready)."""

    reservation_id: str
    status: str
    lines: tuple[tuple[str, str, int], ...]  # sku, product name, quantity
    created_at: int
    expires_at: int
    customer: str


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def open_reservations(
    conn: Connection, ws: str, location_id: str, lang: str
) -> list[OpenReservation]:
    """The store's held and ready reservations, the soonest due first."""
    rows = [
        *stock.list_reservations(conn, ws, location_id=location_id, status="held"),
        *stock.list_reservations(conn, ws, location_id=location_id, status="ready"),
    ]
    rows.sort(key=lambda r: (r["expires_at"], r["reservation_id"]))
    skus = {line["sku"] for r in rows for line in r["lines"]}
    variants = get_variants(conn, ws, skus)
    products = get_products(conn, ws, {v.product_id for v in variants.values()})

    def name(sku: str) -> str:
        variant = variants.get(sku)
        product = products.get(variant.product_id) if variant else None
        return product.name_in(lang) if product else ""

    return [
        OpenReservation(
            reservation_id=r["reservation_id"],
            status=r["status"],
            lines=tuple(
                (line["sku"], name(line["sku"]), int(line["quantity"]))
                for line in sorted(r["lines"], key=lambda x: x["sku"])
            ),
            created_at=_ms(r["created_at"]),
            expires_at=_ms(r["expires_at"]),
            customer=r["user_id"] or r["anonymous_id"] or "",
        )
        for r in rows
    ]


# -- returns -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an inspected return became: its outlet units and its refund card, if any."""

    ret: Return
    listings: tuple[Listing, ...]
    card: GiftCard | None


@dataclass(frozen=True, slots=True)
class StoreReturns:
    to_inspect: tuple[Return, ...]  # received here
    to_refund: tuple[Outcome, ...]  # inspected
    refunded: tuple[Outcome, ...]  # the latest refunded


def _outcome(conn: Connection, ws: str, ret: Return, now_ms: int) -> Outcome:
    listings = list_listings(conn, ws, now_ms=now_ms, return_id=ret.return_id)
    card = get_card(conn, ws, ret.giftcard_id) if ret.giftcard_id else None
    return Outcome(ret, tuple(listings), card)


def store_returns(conn: Connection, ws: str, location_id: str, now_ms: int) -> StoreReturns:
    """A store's returns to inspect, to refund, and the last ten refunded."""
    received = list_returns(conn, ws, status="received", location_id=location_id)
    inspected = list_returns(conn, ws, status="inspected", location_id=location_id)
    refunded = list_returns(conn, ws, status="refunded", location_id=location_id, limit=10)
    return StoreReturns(
        to_inspect=tuple(received),
        to_refund=tuple(_outcome(conn, ws, r, now_ms) for r in inspected),
        refunded=tuple(_outcome(conn, ws, r, now_ms) for r in refunded),
    )
