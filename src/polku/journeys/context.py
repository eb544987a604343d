"""What a journey message may say about its person: `message_context` builds the values the
templates of `polku.journeys.content` render, for one send.

It reads the person as they are at the moment of sending (profile, cart priced today, their
store and its hours, a few recommendations with the stock at that store), because a reminder
that shows a price or a stock level from an hour ago is wrong when it lands. Each part is
optional: a person without a cart, a store or a trained model gets a message without that
part (the key is None or empty), never an exception, since one missing projection must not
stop a thank-you or a pick-up notice. The reads are the public query functions of commerce,
profiles and recommendations, a handful of indexed queries per message.

`Links` signs what a message links to: a tracked link for every URL the templates print
(``{{ track(url) }}``) and the one-click unsubscribe link of the footer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from polku.channels.links import tracked_url, unsubscribe_url
from polku.commerce.carts.owners import Shopper, find_holder
from polku.commerce.carts.queries import Cart, view
from polku.commerce.catalog.queries import Product, get_products, get_variants
from polku.commerce.locations.hours import load_schedules
from polku.commerce.locations.queries import Location, get_location
from polku.commerce.locations.schedule import format_interval
from polku.commerce.orders.preferences import preferred_store
from polku.commerce.stock.queries import levels_of
from polku.errors import InvalidField, NotFound
from polku.identity.identifiers import IdentityConfig
from polku.journeys.content import format_money, locale_of, normal_locale
from polku.profiles.queries import Profile, get_profile
from polku.recommend.queries import Ask, recommend

__all__ = ["FEW_LEFT", "Links", "message_context"]

FEW_LEFT: Final = 5
"""At most this many units at the store is shown as "n left", more as "in stock"."""

_WORKSPACE_ZONE: Final = "Europe/Helsinki"
_DASH: Final = "\u2013"  # an en dash between opening and closing time, as shops print it
_NAME_TRAITS: Final = ("first_name", "firstName", "name")


@dataclass(frozen=True, slots=True)
class Links:
    """Signs the links of one send: `track(url)` records a click on the person's timeline
    before it redirects; `unsubscribe(purpose, channel)` is the footer's one-click link.
    `base_url` is where Polku serves ``/l/`` and ``/u/``; `shop_url` is the shop's front
    page, the target of links that have no page of their own (empty: none)."""

    base_url: str
    secret: str
    workspace_id: str
    profile_id: str
    send_id: str
    shop_url: str = ""

    def track(self, url: Any) -> str:
        """A tracked link to `url`; empty for an empty URL (a template can print it as is)."""
        if not isinstance(url, str) or not url.strip():
            return ""
        return tracked_url(
            self.base_url,
            self.secret,
            workspace_id=self.workspace_id,
            profile_id=self.profile_id,
            send_id=self.send_id,
            url=url.strip(),
        )

    def unsubscribe(self, purpose: str, channel: str) -> str:
        """The one-click unsubscribe link for `purpose` on `channel`."""
        return unsubscribe_url(
            self.base_url,
            self.secret,
            workspace_id=self.workspace_id,
            profile_id=self.profile_id,
            purpose=purpose,
            channel=channel,
        )


# -- words -----------------------------------------------------------------------------------


def _stock_words(locale: str, at_store: int | None, online: int | None, store: str | None) -> str:
    """Where a line or an item can be had, in the person's language ('' when unknown)."""
    fi = locale == "fi"
    if store and at_store is not None and at_store > 0:
        if at_store <= FEW_LEFT:
            return (
                f"{at_store} jäljellä myymälässä {store}, varaa noudettavaksi"
                if fi
                else f"{at_store} left at {store}, reserve for pickup"
            )
        return (
            f"Saatavilla myymälässä {store}, varaa ja nouda"
            if fi
            else f"In stock at {store}, reserve and collect"
        )
    if online is not None and online > 0:
        if store and at_store == 0:
            return (
                f"Loppu myymälästä {store}, saatavilla verkkokaupasta"
                if fi
                else f"Sold out at {store}, available online"
            )
        return "Saatavilla verkkokaupasta" if fi else "Available online"
    if online == 0 and (at_store or 0) == 0:
        return "Tilapäisesti loppu" if fi else "Temporarily out of stock"
    return ""


def _first_name(traits: Mapping[str, Any]) -> str:
    for key in _NAME_TRAITS:
        value = traits.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().split()[0] if key == "name" else value.strip()
    return ""


# -- the parts -------------------------------------------------------------------------------


def _store_of(
    conn: Connection,
    ws: str,
    profile: Profile | None,
    event: Mapping[str, Any],
    config: IdentityConfig,
) -> Location | None:
    """The store the message is about: the event's (a pick-up, a till receipt), else the
    person's stated ``preferred_store``, else the one their history points to; the first
    of those that is an active store."""
    candidates: list[Any] = [event.get("store_id")]
    if profile is not None:
        candidates.append(profile.traits.get("preferred_store"))
    tried: set[str] = set()
    for value in candidates:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            found = get_location(conn, ws, str(value))
            tried.add(str(value))
            if found is not None and found.active and found.kind == "store":
                return found
    if profile is None:
        return None
    inferred = preferred_store(conn, ws, profile.profile_id, config)
    if inferred is None or inferred in tried:
        return None
    found = get_location(conn, ws, inferred)
    return found if found is not None and found.active and found.kind == "store" else None


def _clock(text: str, locale: str) -> str:
    """``09:00`` as Finnish writes it on a door (``9``, ``9.30``); English keeps ``09:00``."""
    if locale != "fi":
        return text
    hour, _, minute = text.partition(":")
    return str(int(hour)) if minute == "00" else f"{int(hour)}.{minute}"


def _hours(intervals: Sequence[tuple[int, int]], locale: str) -> str:
    spans = []
    for interval in intervals:
        opens, closes = format_interval(interval)
        spans.append(f"{_clock(opens, locale)}{_DASH}{_clock(closes, locale)}")
    return ", ".join(spans)


def _store(
    conn: Connection, ws: str, location: Location | None, at: datetime, locale: str
) -> dict[str, Any] | None:
    if location is None:
        return None
    zone = ZoneInfo(location.timezone)
    today = at.astimezone(zone).date()
    schedule = load_schedules(conn, ws, [location.location_id], today, today).get(
        location.location_id
    )
    intervals = schedule.intervals_on(today) if schedule is not None else ()
    note = schedule.exceptions[today].note if schedule and today in schedule.exceptions else None
    if schedule is None:
        hours = ""
    elif intervals:
        hours = _hours(intervals, locale)
    else:
        hours = "suljettu" if locale == "fi" else "closed"
    street = ", ".join(location.address)
    return {
        "id": location.location_id,
        "name": location.name,
        "city": location.city,
        "street": street,
        "postal_code": location.postal_code,
        "address": ", ".join(p for p in (street, f"{location.postal_code} {location.city}") if p),
        "phone": location.phone or "",
        "email": location.email or "",
        "click_and_collect": location.click_and_collect,
        "open_today": bool(intervals),
        "hours_today": hours,
        "hours_note": note or "",
        "timezone": location.timezone,
    }


def _product_url(attributes: Mapping[str, Any]) -> str:
    value = attributes.get("url")
    return value if isinstance(value, str) else ""


def _cart(
    conn: Connection,
    ws: str,
    profile: Profile | None,
    store_id: str | None,
    store_name: str | None,
    config: IdentityConfig,
    locale: str,
) -> tuple[dict[str, Any] | None, Cart | None]:
    if profile is None:
        return None, None
    try:
        holder = find_holder(conn, ws, Shopper(profile_id=profile.profile_id), config)
    except (NotFound, InvalidField):  # unknown profile, or none of their ids can hold a cart
        return None, None
    found = view(conn, ws, holder, config, store=store_id)
    if not found.lines:
        return None, found
    # The cart names products by their default name; the message uses the person's language.
    products = get_products(conn, ws, {line.product_id for line in found.lines})
    lines = []
    for line in found.lines:
        product = products.get(line.product_id)
        stock = line.stock or {}
        online, at_store = stock.get("online"), stock.get("store")
        lines.append(
            {
                "sku": line.sku,
                "product_id": line.product_id,
                "name": product.name_in(locale) if product else line.name,
                "variant": line.variant or "",
                "brand": line.brand or "",
                "image_url": line.image_url or "",
                "quantity": line.quantity,
                "price": line.price,
                "currency": line.currency,
                "line_total": line.line_total,
                "price_changed": line.price_changed,
                "price_when_added": line.price_when_added,
                "available": line.available,
                "reason": line.reason or "",
                "online": online,
                "at_store": at_store,
                "availability": _stock_words(locale, at_store, online, store_name),
            }
        )
    total = found.totals[0] if found.totals else None
    return {
        "lines": lines,
        "value": total.subtotal if total else Decimal(0),
        "currency": total.currency if total else (found.lines[0].currency or "EUR"),
        "quantity": found.quantity,
        "unavailable": sum(1 for line in found.lines if not line.available),
        "all_at_store": store_id is not None
        and all((line.stock or {}).get("store") for line in found.lines if line.stock),
    }, found


def _cheapest(product: Product) -> tuple[Decimal | None, str | None]:
    prices = [(v.price, v.currency) for v in product.variants if v.active]
    if not prices:
        return None, None
    price, currency = min(prices)
    return price, currency


def _recommendations(
    conn: Connection,
    ws: str,
    profile: Profile | None,
    cart: Cart | None,
    event: Mapping[str, Any],
    store_id: str | None,
    at: datetime,
    locale: str,
    k: int,
) -> list[dict[str, Any]]:
    if k <= 0:
        return []
    bought = [
        str(p.get("product_id"))
        for p in event.get("products") or []
        if isinstance(p, Mapping) and p.get("product_id")
    ]
    if cart is not None and cart.lines:
        context, items = "cart", tuple(line.product_id for line in cart.lines)
    elif bought:
        context, items = "post_purchase", tuple(bought)
    else:
        context, items = "home", ()
    ask = Ask(
        context=context,
        items=items,
        k=min(k, 10),
        profile=profile.profile_id if profile else None,
        store=store_id,
        lang=locale,
        channel="email",
    )
    try:
        answer = recommend(conn, ws, ask, at=at)
    except (InvalidField, NotFound):  # the store is no longer a store, or junk in the event
        try:
            answer = recommend(conn, ws, replace(ask, store=None), at=at)
        except (InvalidField, NotFound):
            return []
    listed = answer.get("items") or []
    products = get_products(conn, ws, [item["product_id"] for item in listed])
    store = answer.get("store") or {}
    found = []
    for item in listed:
        product = products.get(item["product_id"])
        price, currency = _cheapest(product) if product else (None, None)
        availability = item.get("availability") or {}
        at_store = (availability.get("store") or {}).get("sellable") if store else None
        online = availability.get("online")
        found.append(
            {
                "product_id": item["product_id"],
                "name": item.get("name") or "",
                "price": price,
                "currency": currency,
                "price_text": format_money(price, currency, locale),
                "image_url": (product.image_url if product else None) or "",
                "url": _product_url(product.attributes) if product else "",
                "reason": (item.get("reason") or {}).get(locale)
                or (item.get("reason") or {}).get("text")
                or "",
                "online": online,
                "at_store": at_store,
                "stock": _stock_words(locale, at_store, online, store.get("name")),
            }
        )
    return found


def _decimal(value: Any) -> Decimal | None:
    """An amount an event sent (a Decimal by now, or text such as "39.90"), or None."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        try:
            found = Decimal(value.strip().replace(",", "."))
        except ArithmeticError:
            return None
        return found if found.is_finite() else None
    return None


def _product(
    conn: Connection,
    ws: str,
    event: Mapping[str, Any],
    store_id: str | None,
    store_name: str | None,
    locale: str,
) -> dict[str, Any] | None:
    """The product the trigger event is about (viewed, back in stock, cheaper), from the
    catalogue (the event's SKU when it names one, as a restock or a price change does),
    with the event's own fields where the catalogue has none, and the units of that SKU
    at the person's store."""
    raw_sku = event.get("sku")
    sku = (
        str(raw_sku) if isinstance(raw_sku, (str, int)) and not isinstance(raw_sku, bool) else None
    )
    variant = get_variants(conn, ws, [sku]).get(sku) if sku else None
    product_id = event.get("product_id") or (variant.product_id if variant else None)
    if not isinstance(product_id, (str, int)) or isinstance(product_id, bool):
        return None
    product = get_products(conn, ws, [str(product_id)]).get(str(product_id))
    price: Decimal | None
    currency: str | None
    if variant is not None and variant.active:
        price, currency = variant.price, variant.currency
    else:
        price, currency = _cheapest(product) if product else (None, None)
    if price is None and _decimal(event.get("price")) is not None:
        price, currency = _decimal(event.get("price")), str(event.get("currency") or "EUR")
    at_store: int | None = None
    if sku and store_id:
        at_store = sum(r["sellable"] for r in levels_of(conn, ws, sku=sku, location_id=store_id))
    previous = _decimal(event.get("previous_price", event.get("old_price")))
    url = event.get("url") if isinstance(event.get("url"), str) else ""
    return {
        "product_id": str(product_id),
        "name": (product.name_in(locale) if product else None) or str(event.get("name") or ""),
        "brand": (product.brand if product else None) or "",
        "image_url": (product.image_url if product else None) or event.get("image_url") or "",
        "url": url or (_product_url(product.attributes) if product else ""),
        "price": price,
        "currency": currency,
        "previous_price": previous,
        "sku": sku or "",
        "at_store": at_store,
        "stock": _stock_words(locale, at_store, None, store_name),
    }


_MONEY_KEYS: Final = frozenset(
    {"price", "total", "subtotal", "revenue", "tax", "discount", "shipping", "value"}
    | {"previous_price", "old_price", "amount"}
)


def _amounts(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with its money fields as Decimals: an event's ``total: 49`` is 49 euros,
    while the `money` filter reads a bare int as cents (as Polku stores prices)."""
    found = dict(values)
    for key, value in values.items():
        if key in _MONEY_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
            found[key] = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return found


def _properties(event: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(name, properties) of the trigger: a logged event (with `properties`) or its
    properties alone; money fields as Decimals, in the products too."""
    if not event:
        return "", {}
    props = event.get("properties")
    name = event.get("event") if isinstance(props, Mapping) else None
    found = _amounts(props if isinstance(props, Mapping) else event)
    products = found.get("products")
    if isinstance(products, list):
        found["products"] = [_amounts(p) if isinstance(p, Mapping) else p for p in products]
    return (name if isinstance(name, str) else ""), found


def message_context(
    conn: Connection,
    workspace_id: str,
    profile_id: str,
    *,
    event: Mapping[str, Any] | None,
    send_id: str,
    links: Links,
    locale: str | None = None,
    recommendations: int = 3,
    coupon: Mapping[str, Any] | None = None,
    giftcard: Mapping[str, Any] | None = None,
    purpose: str = "marketing",
    channel: str = "email",
    at: datetime | None = None,
    extra: Mapping[str, Any] | None = None,
    identity: IdentityConfig | None = None,
) -> dict[str, Any]:
    """Everything a message template may use for `profile_id` now (see the module doc).

    `event` is the trigger (a logged event, or just its properties); `at` the moment of
    sending (the event's time on replay; default now); `purpose` and `channel` pick the
    unsubscribe link; `extra` adds journey-specific values (``survey_url``, ``partner``).
    `coupon` and `giftcard` are what the journey issued (templates put them in words with
    the ``benefit`` filter). Keys: profile, locale, timezone, event, event_name, cart,
    cart_url, store, product, recommendations, coupon, giftcard, unsubscribe_url, track,
    shop_url, send_id."""
    config = identity or IdentityConfig()
    moment = at or datetime.now(UTC)
    profile = get_profile(conn, workspace_id, profile_id, config)
    traits = dict(profile.traits) if profile else {}
    chosen = normal_locale(locale) if locale else locale_of(traits)
    name, props = _properties(event)
    location = _store_of(conn, workspace_id, profile, props, config)
    store = _store(conn, workspace_id, location, moment, chosen)
    store_id = location.location_id if location is not None else None
    store_name = location.name if location is not None else None
    cart, raw_cart = _cart(conn, workspace_id, profile, store_id, store_name, config, chosen)
    shop = links.shop_url
    zone = traits.get("timezone")
    return {
        **(extra or {}),
        "profile": {
            "id": profile.profile_id if profile else profile_id,
            "first_name": _first_name(traits),
            "traits": traits,
            "order_count": profile.order_count if profile else 0,
        },
        "locale": chosen,
        "timezone": zone if isinstance(zone, str) and zone else _WORKSPACE_ZONE,
        "event": props,
        "event_name": name,
        "cart": cart,
        "cart_url": str(props.get("cart_url") or props.get("checkout_url") or shop),
        "store": store,
        "product": _product(conn, workspace_id, props, store_id, store_name, chosen),
        "recommendations": _recommendations(
            conn,
            workspace_id,
            profile,
            raw_cart,
            props,
            store_id,
            moment,
            chosen,
            recommendations,
        ),
        "coupon": dict(coupon) if coupon else None,
        "giftcard": dict(giftcard) if giftcard else None,
        "unsubscribe_url": links.unsubscribe(purpose, channel),
        "track": links.track,
        "shop_url": shop,
        "send_id": send_id,
    }
