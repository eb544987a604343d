"""Buying-signal features, updated incrementally from each event.

One event changes three small states, and nothing else is read:

* the person's **session** (`SessionState`): keyed by the person, closed by 30 minutes
  without an event (`SESSION_GAP_MS`); page views per page type and the seconds spent on
  them, research actions, cart adds, checkout;
* the **person** (`PersonState`): across sessions: visits, purchases, the open cart, the
  products viewed in the last 7 days, stores whose stock they checked, channel hops;
* the **page statistics** of the workspace (`PageStats`, one per page): entrances, bounces,
  exits, unique views and the revenue of the sessions that bought after viewing it. Each
  event changes them only by increments (`PageBook.add`), which commute, so workers on
  different partitions can add them to the same rows in any order.

`step` is the one function that does it; `Tracker` runs it in memory over Segment-shaped
messages (offline data sets, the demo simulator, tests), and the signals consumer runs it in
the pipeline with the states kept in tables (`polku.signals.consumer`), so a replay of the
log gives the same features. `Snapshot` is what the rules and the model read after an event,
and `Snapshot.uci_row` its row in the shape of the UCI Online Shoppers data set.

Page types (the data set's three kinds of page), from the message:

* **ProductRelated**: product pages and what belongs to them (`Product Viewed`, `Product
  List Viewed`, `Product List Filtered`, `Products Searched`, `Size Guide Viewed`,
  `Reviews Viewed`), and `page` messages whose category, name or first path segment says
  product, category, search, collection, brand, sale (`tuote`, `haku`, `kategoria`, `ale`...).
* **Administrative**: the shopper managing their own business: account, login, cart,
  checkout, orders, wishlist (`Cart Viewed`, `Checkout Started`, `Checkout Step Viewed`,
  `Payment Info Entered`, `Order Completed`; `tili`, `ostoskori`, `kassa`...).
* **Informational**: everything else a shopper reads: the home page, help, delivery and
  returns, stores, about, contact (`Delivery Info Viewed`); an unknown page counts here.

A view's duration is the time until the next event of the session (as in Google Analytics,
the last view of a session has none). A `page` message followed within 2 s by a view event
of the same kind (shops often send both for one product page) counts as one view.

Rates, the Google Analytics way, per page and workspace: bounce rate = sessions that started
on the page and saw nothing else / sessions that started on it; exit rate = views that were
the last of their session / views; page value = revenue of the sessions that bought after
viewing the page / its unique views. While a session is open its last view counts as its exit
and a one-view session as a bounce; the next view moves them (an increment and a decrement).
A session's `BounceRates`, `ExitRates` and `PageValues` are the means over its views of the
viewed page's figures when it was viewed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import orjson

from polku.signals.candidates import UCI_COLUMNS

__all__ = [
    "ADMINISTRATIVE",
    "INFORMATIONAL",
    "PAGE_FIELDS",
    "PRODUCT_RELATED",
    "SESSION_GAP_MS",
    "TIME_ZONE",
    "PageBook",
    "PageStats",
    "PersonState",
    "SessionState",
    "Snapshot",
    "Tracker",
    "message_time_ms",
    "page_key",
    "page_type",
    "special_day",
    "step",
]

SESSION_GAP_MS: Final = 30 * 60 * 1000
"""A session ends after 30 minutes without an event (Google Analytics' default)."""
TIME_ZONE: Final = ZoneInfo("Europe/Helsinki")
"""Where the shoppers and the stores are: `Month`, `Weekend` and special days use it."""

DAY_MS: Final = 24 * 3600 * 1000
WEEK_MS: Final = 7 * DAY_MS
_DOUBLE_VIEW_MS: Final = 2000
_MAX_PAGES: Final = 60  # unique pages remembered per session
_MAX_PRODUCTS: Final = 50  # products remembered per person (most recent)
_MAX_VIEWS: Final = 20  # view times remembered per product
_MAX_STORES: Final = 10

PageType = Literal["Administrative", "Informational", "ProductRelated"]
ADMINISTRATIVE: Final = "Administrative"
INFORMATIONAL: Final = "Informational"
PRODUCT_RELATED: Final = "ProductRelated"

_VIEW_EVENTS: Final[Mapping[str, PageType]] = {
    "Product Viewed": PRODUCT_RELATED,
    "Product List Viewed": PRODUCT_RELATED,
    "Product List Filtered": PRODUCT_RELATED,
    "Products Searched": PRODUCT_RELATED,
    "Size Guide Viewed": PRODUCT_RELATED,
    "Reviews Viewed": PRODUCT_RELATED,
    "Delivery Info Viewed": INFORMATIONAL,
    "Cart Viewed": ADMINISTRATIVE,
    "Checkout Started": ADMINISTRATIVE,
    "Checkout Step Viewed": ADMINISTRATIVE,
    "Payment Info Entered": ADMINISTRATIVE,
    "Order Completed": ADMINISTRATIVE,
}
_PRODUCT_WORDS: Final = frozenset(
    [
        "product",
        "products",
        "p",
        "c",
        "category",
        "categories",
        "search",
        "list",
        "collection",
        "collections",
        "brand",
        "brands",
        "sale",
        "shop",
        "tuote",
        "tuotteet",
        "haku",
        "kategoria",
        "kategoriat",
        "ale",
        "merkki",
        "merkit",
    ]
)
_ADMIN_WORDS: Final = frozenset(
    [
        "account",
        "login",
        "signin",
        "sign-in",
        "register",
        "signup",
        "cart",
        "basket",
        "checkout",
        "order",
        "orders",
        "profile",
        "wishlist",
        "my",
        "tili",
        "kirjaudu",
        "rekisteroidy",
        "ostoskori",
        "kassa",
        "tilaus",
        "tilaukset",
        "omat",
        "toivelista",
    ]
)

_TYPE_INDEX: Final = {ADMINISTRATIVE: 0, INFORMATIONAL: 1, PRODUCT_RELATED: 2}  # counts, seconds
_PURCHASES: Final = frozenset({"Order Completed", "POS Order Completed"})
_ONLINE: Final = frozenset({"web", "app"})
_STORE_EVENTS: Final = frozenset({"Store Visited", "POS Order Completed"})
_NOT_VISITS: Final = frozenset({"identify", "group", "alias"})


# -- reading messages ----------------------------------------------------------------------


def _text(value: Any, limit: int = 200) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
        return str(value)[:limit]
    return None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def _properties(message: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = message.get("properties")
    if type(properties) is dict:  # what JSON gives; the Mapping check is 10x slower
        return properties
    return properties if isinstance(properties, Mapping) else _EMPTY


def _context(message: Mapping[str, Any]) -> Mapping[str, Any]:
    context = message.get("context")
    if type(context) is dict:
        return context
    return context if isinstance(context, Mapping) else _EMPTY


def _channel(message: Mapping[str, Any]) -> str:
    context = _context(message)
    channel = context.get("channel")
    if isinstance(channel, str) and channel:
        return channel
    return "web" if isinstance(context.get("page"), Mapping) else "other"


def message_time_ms(message: Mapping[str, Any]) -> int:
    """The message's `timestamp` (or `receivedAt`) in epoch milliseconds; 0 when neither."""
    for name in ("timestamp", "receivedAt", "sentAt"):
        value = message.get(name)
        if isinstance(value, str) and value:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=TIME_ZONE)
            return int(moment.timestamp() * 1000)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return 0


def _product_of(message: Mapping[str, Any]) -> str | None:
    properties = _properties(message)
    product = _text(properties.get("product_id")) or _text(properties.get("sku"))
    if product is None:
        products = properties.get("products")
        if isinstance(products, list) and products and isinstance(products[0], Mapping):
            product = _text(products[0].get("product_id")) or _text(products[0].get("sku"))
    return product


def _path_of(message: Mapping[str, Any]) -> str:
    properties = _properties(message)
    path = properties.get("path")
    if not isinstance(path, str):
        page = _context(message).get("page")
        path = page.get("path") if isinstance(page, Mapping) else None
    if not isinstance(path, str):
        url = properties.get("url")
        path = url.split("://", 1)[-1].partition("/")[2] if isinstance(url, str) else ""
        path = "/" + path
    return path.split("?", 1)[0].split("#", 1)[0][:200] or "/"


def page_type(message: Mapping[str, Any]) -> PageType | None:
    """The UCI page type a message is a view of (see the module doc); None for a message
    that is no page view (a cart add, a store visit, an identify)."""
    kind = message.get("type")
    if kind == "track":
        event = message.get("event")
        return _VIEW_EVENTS.get(event) if isinstance(event, str) else None
    if kind not in ("page", "screen"):
        return None
    properties = _properties(message)
    for value in (properties.get("category"), message.get("category"), message.get("name")):
        if isinstance(value, str) and value:
            word = value.strip().lower()
            if word in _PRODUCT_WORDS:
                return PRODUCT_RELATED
            if word in _ADMIN_WORDS:
                return ADMINISTRATIVE
    if _text(properties.get("product_id")):
        return PRODUCT_RELATED
    segment = _path_of(message).strip("/").split("/", 1)[0].lower()
    if segment in _PRODUCT_WORDS:
        return PRODUCT_RELATED
    if segment in _ADMIN_WORDS:
        return ADMINISTRATIVE
    return INFORMATIONAL


def page_key(message: Mapping[str, Any], kind: PageType | None = None) -> str | None:
    """The page a view message is of, for the page statistics: ``product:<id>`` for a
    product's pages, the event name for other view events, the path for `page`s. (`kind`:
    the message's `page_type`, when the caller has it.)"""
    kind = kind or page_type(message)
    if kind is None:
        return None
    product = _product_of(message)
    if kind == PRODUCT_RELATED and product is not None:
        return "product:" + product
    if message.get("type") == "track":
        return "event:" + str(message.get("event"))
    return "path:" + _path_of(message)


# -- device and traffic codes ---------------------------------------------------------------

# The data set's OperatingSystems, Browser, Region and TrafficType are integer codes whose
# meanings it does not publish; these are Polku's, with 1 for the most common.
_OS_CODES: Final = (
    ("windows", 2),
    ("mac", 3),
    ("ios", 4),
    ("android", 1),
    ("linux", 5),
    ("chrome os", 6),
    ("cros", 6),
)
_BROWSER_CODES: Final = (
    ("edg", 4),
    ("opr", 5),
    ("samsung", 6),
    ("firefox", 3),
    ("chrome", 2),
    ("crios", 2),
    ("safari", 1),
)
# Finnish regions by the first digit of the postal code (0 Uusimaa ... 9 Lapland).
_TRAFFIC_CODES: Final = (
    ("cpc", 3),
    ("paid", 3),
    ("email", 4),
    ("newsletter", 4),
    ("social", 5),
    ("facebook", 5),
    ("instagram", 5),
    ("sms", 6),
    ("display", 7),
    ("affiliate", 8),
    ("google", 2),
    ("bing", 2),
    ("duckduckgo", 2),
)


def _code(text: str, codes: tuple[tuple[str, int], ...], other: int) -> int:
    lowered = text.lower()
    for needle, code in codes:
        if needle in lowered:
            return code
    return other


def _device_codes(message: Mapping[str, Any]) -> tuple[int, int, int, int]:
    context = _context(message)
    agent = context.get("userAgent")
    agent = agent if isinstance(agent, str) else ""
    os_info = context.get("os")
    os_name = os_info.get("name") if isinstance(os_info, Mapping) else None
    system = _code(os_name if isinstance(os_name, str) else agent, _OS_CODES, 8 if agent else 7)
    browser = _code(agent, _BROWSER_CODES, 13 if agent else 12)
    region = 9
    location = context.get("location")
    traits = context.get("traits")
    for holder in (location, traits):
        if isinstance(holder, Mapping):
            code = holder.get("postal_code") or holder.get("postalCode")
            address = holder.get("address")
            if code is None and isinstance(address, Mapping):
                code = address.get("postal_code") or address.get("postalCode")
            if isinstance(code, str) and code[:1].isdigit():
                region = int(code[0]) + 1 if code[0] != "9" else 9
                break
    traffic = 1  # direct
    campaign = context.get("campaign")
    if isinstance(campaign, Mapping):
        medium = " ".join(str(campaign.get(k, "")) for k in ("medium", "source", "name"))
        traffic = _code(medium, _TRAFFIC_CODES, 9)
    else:
        page = context.get("page")
        referrer = page.get("referrer") if isinstance(page, Mapping) else None
        if not isinstance(referrer, str):
            referrer = _properties(message).get("referrer")
        if isinstance(referrer, str) and referrer:
            traffic = _code(referrer, _TRAFFIC_CODES, 10)
    return system, browser, region, traffic


# -- calendar -------------------------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


@lru_cache(maxsize=16)
def _special_days(year: int) -> tuple[date, ...]:
    """Finnish retail's days of gifts: Valentine's (ystävänpäivä), Mother's Day (second
    Sunday of May), Midsummer Eve (the Friday of 19-25 June), Black Friday (after the fourth
    Thursday of November), Father's Day (second Sunday of November), Christmas Eve."""
    return (
        date(year, 2, 14),
        _nth_weekday(year, 5, 6, 2),
        date(year, 6, 19) + timedelta(days=(4 - date(year, 6, 19).weekday()) % 7),
        _nth_weekday(year, 11, 3, 4) + timedelta(days=1),
        _nth_weekday(year, 11, 6, 2),
        date(year, 12, 24),
    )


def special_day(day: date) -> float:
    """The UCI `SpecialDay`: how close `day` is to a day of gifts, allowing for delivery.

    As in the data set (Valentine's: non-zero from 2 to 12 February, 1 on the 8th): a day
    that comes 2 to 12 days before a special day gets 0.2..1 in steps of 0.2, highest 6
    days before; any other day 0. The nearest special day decides."""
    best = 0.0
    for year in (day.year, day.year + 1):
        for special in _special_days(year):
            ahead = (special - day).days
            if 2 <= ahead <= 12:
                raw = 1 - (ahead - 6) / 7 if ahead >= 6 else 1 - (6 - ahead) / 5
                best = max(best, round(round(raw / 0.2) * 0.2, 1))
    return best


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=TIME_ZONE)


@lru_cache(maxsize=64)
def _calendar(day: date) -> tuple[float, str, bool]:
    """`SpecialDay`, `Month` and `Weekend` of a local day (the same for every session that
    starts on it)."""
    name = day.strftime("%b")
    return special_day(day), ("June" if name == "Jun" else name), day.weekday() >= 5


# -- state ------------------------------------------------------------------------------------


@dataclass(slots=True)
class PageStats:
    """One page's counters in a workspace (see the module doc for the rates)."""

    entrances: int = 0
    bounces: int = 0
    views: int = 0
    exits: int = 0
    unique_views: int = 0
    value: float = 0.0  # revenue of the sessions that bought after viewing the page

    @property
    def bounce_rate(self) -> float:
        return min(1.0, max(0.0, self.bounces / self.entrances)) if self.entrances > 0 else 0.0

    @property
    def exit_rate(self) -> float:
        return min(1.0, max(0.0, self.exits / self.views)) if self.views > 0 else 0.0

    @property
    def page_value(self) -> float:
        return self.value / self.unique_views if self.unique_views > 0 else 0.0


PAGE_FIELDS: Final = ("entrances", "bounces", "views", "exits", "unique_views", "value")
_PAGE_INDEX: Final = {name: i for i, name in enumerate(PAGE_FIELDS)}


class PageBook:
    """The page statistics an event reads and the increments it adds.

    In memory (`Tracker`) it is the whole truth; in the pipeline it holds the pages a batch
    views, read at once, and `pending` the increments to add to the stored rows."""

    def __init__(self, pages: MutableMapping[str, PageStats] | None = None) -> None:
        self.pages: MutableMapping[str, PageStats] = pages if pages is not None else {}
        self.pending: dict[str, list[float]] = {}

    def get(self, key: str) -> PageStats:
        stats = self.pages.get(key)
        return stats if stats is not None else PageStats()

    def add(self, key: str, **deltas: float) -> None:
        stats = self.pages.get(key)
        if stats is None:
            stats = self.pages[key] = PageStats()
        pending = self.pending.get(key)
        if pending is None:
            pending = self.pending[key] = [0.0] * len(PAGE_FIELDS)
        for name, delta in deltas.items():
            setattr(stats, name, getattr(stats, name) + delta)
            pending[_PAGE_INDEX[name]] += delta


@dataclass(slots=True)
class SessionState:
    """A person's current session (see the module doc)."""

    start_ms: int = 0
    last_ms: int = 0
    channel: str = "other"
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])  # admin, info, product
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    open_type: int = -1  # the page type the person is on now (index into counts), -1 none
    open_page: str | None = None
    last_page_msg_ms: int = -1  # when the last `page` message came (double-view check)
    views: int = 0
    first_page: str | None = None
    pages: list[str] = field(default_factory=list)  # unique pages viewed, in order
    rate_sums: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # bounce/exit/value
    cart_adds: int = 0
    cart_added_value: float = 0.0
    checkout_started: bool = False
    searches: int = 0
    size_guide_views: int = 0
    review_views: int = 0
    delivery_info_views: int = 0
    stock_checks: int = 0
    collect_views: int = 0
    purchases: int = 0
    revenue: float = 0.0
    codes: list[int] = field(default_factory=lambda: [1, 1, 9, 1])  # os, browser, region, traffic

    def to_bytes(self) -> bytes:
        return orjson.dumps(_SESSION_VALUES(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionState:
        values = orjson.loads(data)
        if len(values) == _SESSION_SIZE:  # as written now: every field, in order
            return cls(*values)
        state = cls()  # written by another version: the fields it has, defaults for the rest
        for name, value in zip(cls.__slots__, values, strict=False):
            setattr(state, name, value)
        return state


@dataclass(slots=True)
class PersonState:
    """What one person did across sessions (see the module doc)."""

    sessions: int = 0
    first_ms: int = 0
    last_ms: int = 0
    purchases: int = 0
    last_purchase_ms: int = 0
    cart_value: float = 0.0  # what the open cart is worth (adds - removes since the last buy)
    cart_items: int = 0
    cart_products: list[str] = field(default_factory=list)
    cart_last_ms: int = 0  # the last change to the open cart
    checkout_started_ms: int = 0
    product_views: dict[str, list[int]] = field(default_factory=dict)  # product -> times (7 d)
    product_names: dict[str, str] = field(default_factory=dict)
    stock_checks: dict[str, list[Any]] = field(default_factory=dict)  # store -> [n, ms, product]
    collect: dict[str, list[int]] = field(default_factory=dict)  # store -> [n, ms]
    last_online_ms: int = 0
    last_store_ms: int = 0
    last_store_id: str | None = None
    hops_online_to_store: int = 0
    hops_store_to_online: int = 0
    postal_code: str | None = None
    preferred_store: str | None = None

    def absorb(self, other: PersonState) -> None:
        """Take in the history of a profile merged into this one (the same person)."""
        self.sessions += other.sessions
        self.first_ms = (
            min(t for t in (self.first_ms, other.first_ms) if t)
            if (self.first_ms or other.first_ms)
            else 0
        )
        self.last_ms = max(self.last_ms, other.last_ms)
        self.purchases += other.purchases
        self.last_purchase_ms = max(self.last_purchase_ms, other.last_purchase_ms)
        if other.cart_last_ms > self.cart_last_ms:  # the latest cart is the person's cart
            self.cart_value, self.cart_items = other.cart_value, other.cart_items
            self.cart_products, self.cart_last_ms = list(other.cart_products), other.cart_last_ms
        self.checkout_started_ms = max(self.checkout_started_ms, other.checkout_started_ms)
        for product, times in other.product_views.items():
            merged = sorted({*self.product_views.get(product, []), *times})
            self.product_views[product] = merged[-_MAX_VIEWS:]
        for product, name in other.product_names.items():
            self.product_names.setdefault(product, name)
        for mine, theirs in (
            (self.stock_checks, other.stock_checks),
            (self.collect, other.collect),
        ):
            for store, entry in theirs.items():
                held = mine.get(store)
                if held is None or entry[1] > held[1]:
                    mine[store] = [entry[0] + (held[0] if held else 0), *entry[1:]]
                else:
                    held[0] += entry[0]
            _trim(mine)
        self.last_online_ms = max(self.last_online_ms, other.last_online_ms)
        if other.last_store_ms > self.last_store_ms:
            self.last_store_ms, self.last_store_id = other.last_store_ms, other.last_store_id
        self.hops_online_to_store += other.hops_online_to_store
        self.hops_store_to_online += other.hops_store_to_online
        self.postal_code = self.postal_code or other.postal_code
        self.preferred_store = self.preferred_store or other.preferred_store

    def to_bytes(self) -> bytes:
        return orjson.dumps(_PERSON_VALUES(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonState:
        values = orjson.loads(data)
        if len(values) == _PERSON_SIZE:
            return cls(*values)
        state = cls()
        for name, value in zip(cls.__slots__, values, strict=False):
            setattr(state, name, value)
        return state


# The stored form of the states: a JSON array of the fields in declaration order (a tuple
# from one `attrgetter` call encodes as the same array as a list of each `getattr`).
_SESSION_VALUES: Final = attrgetter(*SessionState.__slots__)
_SESSION_SIZE: Final = len(SessionState.__slots__)
_PERSON_VALUES: Final = attrgetter(*PersonState.__slots__)
_PERSON_SIZE: Final = len(PersonState.__slots__)


# -- the snapshot ----------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: its 40-odd fields cost microseconds per event to freeze
class Snapshot:
    """The features after one event: its session, its person, and the event itself (a
    value: read it, never change it)."""

    at_ms: int
    event: str | None  # the track event's name, or the message type ("page", "identify")
    channel: str
    product_id: str | None
    product_name: str | None
    store_id: str | None
    session_id: str
    session_start_ms: int
    page_counts: tuple[int, int, int]  # Administrative, Informational, ProductRelated
    page_seconds: tuple[float, float, float]
    views: int
    bounce_rate: float  # means over the session's views
    exit_rate: float
    page_value: float
    cart_adds: int
    cart_added_value: float
    checkout_started: bool
    searches: int
    size_guide_views: int
    review_views: int
    delivery_info_views: int
    stock_checks: int
    collect_views: int
    session_purchases: int
    returning: bool
    sessions: int
    days_since_last_purchase: float | None
    product_views_24h: int  # of this event's product, this one included
    product_views_7d: int
    cart_value: float  # the person's open cart
    cart_items: int
    cart_products: tuple[str, ...]
    cart_last_ms: int
    stock_checked_stores: tuple[str, ...]  # stores checked in the last 7 days, latest first
    collect_stores: tuple[str, ...]
    hop: str | None  # "online_to_store" / "store_to_online" when this event is one
    hops_online_to_store: int
    hops_store_to_online: int
    postal_code: str | None
    preferred_store: str | None
    codes: tuple[int, int, int, int]

    def uci_row(self) -> dict[str, object]:
        """The session as a row of the UCI Online Shoppers data set (`UCI_COLUMNS`)."""
        special, month, weekend = _calendar(_local(self.session_start_ms).date())
        visitor = (
            "Returning_Visitor"
            if self.returning
            else ("New_Visitor" if self.channel in _ONLINE else "Other")
        )
        values: tuple[object, ...] = (
            self.page_counts[0],
            round(self.page_seconds[0], 3),
            self.page_counts[1],
            round(self.page_seconds[1], 3),
            self.page_counts[2],
            round(self.page_seconds[2], 3),
            self.bounce_rate,
            self.exit_rate,
            self.page_value,
            special,
            month,
            self.codes[0],
            self.codes[1],
            self.codes[2],
            self.codes[3],
            visitor,
            weekend,
        )
        return dict(zip(UCI_COLUMNS, values, strict=True))


# -- the step ---------------------------------------------------------------------------------


def _order_revenue(properties: Mapping[str, Any]) -> float:
    for name in ("revenue", "total"):
        value = _number(properties.get(name))
        if value > 0:
            return value
    total = 0.0
    products = properties.get("products")
    if isinstance(products, list):
        for item in products:
            if isinstance(item, Mapping):
                total += _number(item.get("price")) * max(1.0, _number(item.get("quantity")))
    return total


def _traits_postal(message: Mapping[str, Any]) -> str | None:
    holders = [message.get("traits"), _context(message).get("traits")]
    for holder in holders:
        if not isinstance(holder, Mapping):
            continue
        address = holder.get("address")
        for source in (holder, address if isinstance(address, Mapping) else {}):
            code = source.get("postal_code") or source.get("postalCode")
            if isinstance(code, (str, int)) and not isinstance(code, bool) and str(code):
                return str(code)[:20]
    return None


def _preferred_store(message: Mapping[str, Any]) -> str | None:
    for holder in (message.get("traits"), _context(message).get("traits")):
        if isinstance(holder, Mapping):
            store = _text(holder.get("preferred_store") or holder.get("preferred_store_id"))
            if store:
                return store
    return None


def step(
    session: SessionState | None,
    person: PersonState,
    pages: PageBook,
    message: Mapping[str, Any],
    at_ms: int,
    session_key: str,
) -> tuple[SessionState | None, Snapshot]:
    """Apply one message, at `at_ms` (event time), to its person's states; returns the
    (possibly new) session and the snapshot. `person` and `pages` change in place.

    Messages of one person must come in time order (the log's order); one that is older
    than the session's last event counts at that last event's time. An `identify`,
    `group` or `alias` outside a session (a sign-up by the back office, a CRM import)
    says who someone is, not that they visited: it starts no session."""
    at_ms = max(at_ms, session.last_ms) if session is not None else at_ms
    kind = message.get("type")
    event = message.get("event") if kind == "track" else kind
    event = event if isinstance(event, str) else None
    properties = _properties(message)
    channel = _channel(message)
    product = _product_of(message)
    store = _text(properties.get("store_id"))

    # the session: continue it, or close it and start a new one
    kept: SessionState | None = None
    detached = False
    if session is None or at_ms - session.last_ms > SESSION_GAP_MS:
        if kind in _NOT_VISITS:
            kept, detached = session, True  # read through a session of its own, not kept
        else:
            person.sessions += 1
            if person.first_ms == 0:
                person.first_ms = at_ms
        session = SessionState(start_ms=at_ms, last_ms=at_ms, channel=channel)
        session.codes = list(_device_codes(message))
    elif session.open_type >= 0:
        session.seconds[session.open_type] += (at_ms - session.last_ms) / 1000
    session.last_ms = at_ms
    if session.channel == "other" and channel != "other":
        session.channel = channel
    days_since_purchase = (
        (at_ms - person.last_purchase_ms) / DAY_MS if person.purchases > 0 else None
    )

    # a page view
    view_type = page_type(message)
    if view_type is not None:
        index = _TYPE_INDEX[view_type]
        key = page_key(message, view_type) or "path:/"
        same_view = (
            kind == "track"
            and session.last_page_msg_ms >= 0
            and at_ms - session.last_page_msg_ms <= _DOUBLE_VIEW_MS
            and session.open_type == index
        )
        session.last_page_msg_ms = at_ms if kind in ("page", "screen") else -1
        if not same_view:
            # the page's figures without what this session itself added for now
            stats = pages.get(key)
            own_exit = 1 if key == session.open_page else 0
            own_bounce = 1 if session.views == 1 and key == session.first_page else 0
            session.rate_sums[0] += PageStats(
                entrances=stats.entrances - own_bounce, bounces=stats.bounces - own_bounce
            ).bounce_rate
            session.rate_sums[1] += PageStats(
                views=stats.views, exits=stats.exits - own_exit
            ).exit_rate
            session.rate_sums[2] += stats.page_value
            session.counts[index] += 1
            session.views += 1
            if session.views == 1:
                session.first_page = key
                pages.add(key, entrances=1, bounces=1, views=1, exits=1)
            else:
                if session.views == 2 and session.first_page is not None:
                    pages.add(session.first_page, bounces=-1)
                if session.open_page is not None:
                    pages.add(session.open_page, exits=-1)
                pages.add(key, views=1, exits=1)
            if key not in session.pages and len(session.pages) < _MAX_PAGES:
                session.pages.append(key)
                pages.add(key, unique_views=1)
            session.open_page = key
        session.open_type = index
    else:
        session.last_page_msg_ms = -1

    # research, cart and purchases
    hop: str | None = None
    if event == "Products Searched":
        session.searches += 1
    elif event == "Size Guide Viewed":
        session.size_guide_views += 1
    elif event == "Reviews Viewed":
        session.review_views += 1
    elif event == "Delivery Info Viewed":
        session.delivery_info_views += 1
        if store:
            session.collect_views += 1
            _count_store(person.collect, store, at_ms)
    elif event == "Click and Collect Reserved" and store:
        session.collect_views += 1
        _count_store(person.collect, store, at_ms)
    elif event == "Store Stock Checked" and store:
        session.stock_checks += 1
        entry = person.stock_checks.get(store)
        person.stock_checks[store] = [(entry[0] if entry else 0) + 1, at_ms, product]
        _trim(person.stock_checks)
    elif event in ("Product Added", "Product Removed"):
        quantity = max(1.0, _number(properties.get("quantity")))
        value = _number(properties.get("price")) * quantity
        if event == "Product Added":
            session.cart_adds += 1
            session.cart_added_value += value
            person.cart_value += value
            person.cart_items += int(quantity)
            if product is not None:
                if product in person.cart_products:
                    person.cart_products.remove(product)
                person.cart_products.insert(0, product)
                del person.cart_products[_MAX_PRODUCTS:]
        else:
            person.cart_value = max(0.0, person.cart_value - value)
            person.cart_items = max(0, person.cart_items - int(quantity))
            if product is not None and person.cart_items == 0:
                person.cart_products = []
        person.cart_last_ms = at_ms
    elif event == "Checkout Started":
        session.checkout_started = True
        person.checkout_started_ms = at_ms
        person.cart_last_ms = at_ms
    elif event in _PURCHASES:
        revenue = _order_revenue(properties)
        session.purchases += 1
        session.revenue += revenue
        person.purchases += 1
        person.last_purchase_ms = at_ms
        person.cart_value = 0.0
        person.cart_items = 0
        person.cart_products = []
        person.cart_last_ms = at_ms
        person.checkout_started_ms = 0
        if revenue > 0:  # the pages viewed before the purchase, not its own confirmation
            bought_on = page_key(message, view_type) if view_type is not None else None
            for key in session.pages:
                if key != bought_on:
                    pages.add(key, value=revenue)
    elif kind == "identify":
        pass
    if kind == "identify" or "traits" in _context(message):
        postal = _traits_postal(message)
        if postal is not None:
            person.postal_code = postal
        preferred = _preferred_store(message)
        if preferred is not None:
            person.preferred_store = preferred

    # product views of the person
    views_24h = views_7d = 0
    if product is not None:
        name = _text(properties.get("name"))
        if name is not None:
            person.product_names[product] = name
        if event == "Product Viewed" or (
            kind in ("page", "screen")
            and view_type is not None
            and view_type == PRODUCT_RELATED
            and _text(properties.get("product_id"))
        ):
            times = [t for t in person.product_views.pop(product, []) if at_ms - t < WEEK_MS]
            if not (times and at_ms - times[-1] <= _DOUBLE_VIEW_MS):
                times.append(at_ms)
            person.product_views[product] = times[-_MAX_VIEWS:]
            if len(person.product_views) > _MAX_PRODUCTS:
                oldest = min(person.product_views, key=lambda p: person.product_views[p][-1])
                del person.product_views[oldest]
                person.product_names.pop(oldest, None)
        recent = [t for t in person.product_views.get(product, []) if at_ms - t < WEEK_MS]
        views_7d = len(recent)
        views_24h = sum(1 for t in recent if at_ms - t < DAY_MS)

    # channel hops: research online, then the store within 7 days, or the other way round
    in_store = channel == "store" or event in _STORE_EVENTS
    online_research = channel in _ONLINE and (
        view_type is not None
        or event in ("Store Stock Checked", "Product Added", "Click and Collect Reserved")
    )
    if in_store:
        if (
            person.last_online_ms
            and at_ms - person.last_online_ms < WEEK_MS
            and (person.last_online_ms > person.last_store_ms)
        ):
            hop = "online_to_store"
            person.hops_online_to_store += 1
        person.last_store_ms = at_ms
        if store:
            person.last_store_id = store
    elif online_research:
        if (
            person.last_store_ms
            and at_ms - person.last_store_ms < WEEK_MS
            and (person.last_store_ms > person.last_online_ms)
        ):
            hop = "store_to_online"
            person.hops_store_to_online += 1
        person.last_online_ms = at_ms
    person.last_ms = at_ms

    views = session.views
    snapshot = Snapshot(
        at_ms=at_ms,
        event=event,
        channel=channel,
        product_id=product,
        product_name=person.product_names.get(product) if product else None,
        store_id=store,
        session_id=f"{session_key}:{session.start_ms}",
        session_start_ms=session.start_ms,
        page_counts=(session.counts[0], session.counts[1], session.counts[2]),
        page_seconds=(session.seconds[0], session.seconds[1], session.seconds[2]),
        views=views,
        bounce_rate=session.rate_sums[0] / views if views else 0.0,
        exit_rate=session.rate_sums[1] / views if views else 0.0,
        page_value=session.rate_sums[2] / views if views else 0.0,
        cart_adds=session.cart_adds,
        cart_added_value=session.cart_added_value,
        checkout_started=session.checkout_started,
        searches=session.searches,
        size_guide_views=session.size_guide_views,
        review_views=session.review_views,
        delivery_info_views=session.delivery_info_views,
        stock_checks=session.stock_checks,
        collect_views=session.collect_views,
        session_purchases=session.purchases,
        returning=person.sessions > 1,
        sessions=person.sessions,
        days_since_last_purchase=days_since_purchase,
        product_views_24h=views_24h,
        product_views_7d=views_7d,
        cart_value=person.cart_value,
        cart_items=person.cart_items,
        cart_products=tuple(person.cart_products),
        cart_last_ms=person.cart_last_ms,
        stock_checked_stores=_recent_stores(person.stock_checks, at_ms)
        if person.stock_checks
        else (),
        collect_stores=_recent_stores(person.collect, at_ms) if person.collect else (),
        hop=hop,
        hops_online_to_store=person.hops_online_to_store,
        hops_store_to_online=person.hops_store_to_online,
        postal_code=person.postal_code,
        preferred_store=person.preferred_store,
        codes=(session.codes[0], session.codes[1], session.codes[2], session.codes[3]),
    )
    return (kept if detached else session), snapshot


def _count_store(stores: dict[str, list[int]], store: str, at_ms: int) -> None:
    entry = stores.get(store)
    stores[store] = [(entry[0] if entry else 0) + 1, at_ms]
    _trim(stores)


def _trim(stores: Mapping[str, list[Any]]) -> None:
    if len(stores) > _MAX_STORES and isinstance(stores, dict):
        del stores[min(stores, key=lambda s: stores[s][1])]


def _recent_stores(stores: Mapping[str, list[Any]], at_ms: int) -> tuple[str, ...]:
    recent = [(v[1], s) for s, v in stores.items() if at_ms - v[1] < WEEK_MS]
    return tuple(s for _, s in sorted(recent, reverse=True))


# -- in memory ---------------------------------------------------------------------------------


class Tracker:
    """The features of Segment-shaped messages in memory, for data sets and simulations.

    `observe(message)` takes one message at a time, in time order per person, and returns
    its `Snapshot`. The person is the message's `userId`, or its `anonymousId` (a message
    with both links them, so a device's history follows the person who signs in); pass
    `person=` to key by something else (the pipeline passes identity's profile)."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionState] = {}
        self.people: dict[str, PersonState] = {}
        self.pages = PageBook()
        self._links: dict[str, str] = {}

    def _person_key(self, message: Mapping[str, Any]) -> str:
        user = _text(message.get("userId"))
        anonymous = _text(message.get("anonymousId"))
        if user is not None:
            key = "user:" + user
            if anonymous is not None:
                device = "anon:" + anonymous
                linked = self._links.get(device)
                if linked is None:  # the device's history joins the person's, as a merge
                    self._links[device] = key
                    if device in self.people:
                        moved = self.people.pop(device)
                        if key in self.people:
                            self.people[key].absorb(moved)
                        else:
                            self.people[key] = moved
                    if device in self.sessions:
                        theirs = self.sessions.pop(device)
                        mine = self.sessions.get(key)
                        if mine is None or theirs.last_ms > mine.last_ms:
                            self.sessions[key] = theirs
            return key
        if anonymous is not None:
            device = "anon:" + anonymous
            return self._links.get(device, device)
        return "unknown"

    def observe(
        self, message: Mapping[str, Any], *, person: str | None = None, at_ms: int | None = None
    ) -> Snapshot:
        """The features after `message` (a Segment message dict, with its `timestamp`)."""
        key = person if person is not None else self._person_key(message)
        state = self.people.get(key)
        if state is None:
            state = self.people[key] = PersonState()
        moment = at_ms if at_ms is not None else message_time_ms(message)
        session, snapshot = step(self.sessions.get(key), state, self.pages, message, moment, key)
        if session is not None:
            self.sessions[key] = session
        self.pages.pending.clear()  # in memory, the pages are the truth
        return snapshot
