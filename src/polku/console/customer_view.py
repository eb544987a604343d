"""What the console's customer pages show, read from the domain packages: the search over
every identifier and order ids, and one person's 360° view (identities and the merge
ledger, traits, consent, the cross-channel timeline, cart, orders, returns, gift cards,
click & collect reservations, buying signals, recommendations and the next best offer,
journeys with their decision traces).

Reads only: the one write of the customer pages, un-merge, goes through
`identity.actions.request_unmerge`, which the page calls directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection

from polku.commerce.carts.owners import Shopper
from polku.commerce.carts.queries import Cart, get_cart
from polku.commerce.giftcards.queries import GiftCard, list_cards
from polku.commerce.orders.queries import Order, get_order, orders_of
from polku.commerce.returns.queries import Return, list_returns
from polku.commerce.stock.queries import reservations_of
from polku.errors import InvalidField, NotFound, PolkuError
from polku.identity.identifiers import IdentityConfig
from polku.identity.queries import MergeEntry, merge_ledger, require_merge
from polku.journeys import queries as journeys
from polku.profiles.queries import (
    Profile,
    ProfileSummary,
    TimelineEvent,
    TimelineFilter,
    get_profile,
    resolve,
    search,
    timeline,
)
from polku.recommend import queries as recommend
from polku.signals.queries import Signal, signals_of

__all__ = [
    "SEARCH_LIMIT",
    "TIMELINE_LIMIT",
    "CustomerView",
    "JourneyOfPerson",
    "find_customers",
    "holder_of",
    "other_of_merge",
    "view_of",
]

TIMELINE_LIMIT: Final = 100
SEARCH_LIMIT: Final = 20
_ORDERS: Final = 50
_RECOMMENDED: Final = 6


def _name(traits: dict[str, Any]) -> str | None:
    """The person's name as their traits give it (`name`, else first and last name)."""
    whole = traits.get("name")
    if isinstance(whole, str) and whole.strip():
        return whole.strip()
    parts = [traits.get(k) for k in ("first_name", "last_name")]
    named = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return named or None


def _first(profile: Profile, kind: str) -> str | None:
    found = profile.identifiers.get(kind)
    return found[0].value if found else None


def find_customers(
    conn: Connection, ws: str, q: str, config: IdentityConfig
) -> list[ProfileSummary]:
    """The people `q` names, best first: the holder of the order `q` (an order id), then
    exact identifier matches (email, phone in any format, loyalty card, user id,
    normalised as identity does), then names starting with `q`, then emails and phones
    starting with or containing it. Raises `InvalidField` for an over-long `q`."""
    text = q.strip()
    if not text:
        return []
    hits: list[ProfileSummary] = []
    order = get_order(conn, ws, text)
    holder = (
        None if order is None or order.profile_id is None else resolve(conn, ws, order.profile_id)
    )
    profile = None if holder is None else get_profile(conn, ws, holder, config)
    if profile is not None:
        hits.append(
            ProfileSummary(
                profile_id=profile.profile_id,
                name=_name(profile.traits),
                email=_first(profile, "email"),
                phone=_first(profile, "phone"),
                first_seen=profile.first_seen,
                last_seen=profile.last_seen,
                event_count=profile.event_count,
                order_count=profile.order_count,
                matched="order_id",
            )
        )
    seen = {h.profile_id for h in hits}
    hits.extend(h for h in search(conn, ws, text, SEARCH_LIMIT, config) if h.profile_id not in seen)
    return hits[:SEARCH_LIMIT]


def holder_of(conn: Connection, ws: str, profile_id: str) -> str | None:
    """The profile that holds `profile_id` now (itself or the one it was merged into)."""
    return resolve(conn, ws, profile_id)


def other_of_merge(conn: Connection, ws: str, profile_id: str, merge_id: str) -> str | None:
    """The other profile of merge `merge_id` in the ledger of the person `profile_id`
    holds now; None when the merge is not theirs. Raises `NotFound` for an unknown merge."""
    entry = require_merge(conn, ws, merge_id)
    holder = resolve(conn, ws, profile_id)
    if holder == entry.winner_id:
        return entry.loser_id
    if holder == entry.loser_id:
        return entry.winner_id
    return None


@dataclass(frozen=True, slots=True)
class JourneyOfPerson:
    """A journey the person is or was in: its name, their enrollments and why (`explain`)."""

    key: str
    name: dict[str, str]
    explained: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerView:
    """Everything the 360° page shows of one person."""

    profile: Profile
    name: str | None
    merges: list[MergeEntry]
    channel: str | None  # the timeline's filter, None for every channel
    timeline: list[TimelineEvent]
    cart: Cart | None  # None: the person has no identifier a cart is kept under
    orders: list[Order]
    returns: list[Return]
    giftcards: list[GiftCard]
    reservations: list[dict[str, Any]]
    signals: list[Signal]
    recommendations: dict[str, Any] | None
    next_best_offer: dict[str, Any] | None
    journeys: list[JourneyOfPerson]


def _timeline_filter(channel: str | None) -> TimelineFilter:
    return TimelineFilter.build(channels=[channel] if channel else [])


def _cart(conn: Connection, ws: str, holder: str, config: IdentityConfig) -> Cart | None:
    try:
        return get_cart(conn, ws, Shopper(profile_id=holder), config)
    except (InvalidField, NotFound):
        # A person known only by an email or a loyalty card has no cart (carts are kept
        # under a user id or a device's anonymous id).
        return None


def _giftcards(
    conn: Connection, ws: str, profile: Profile, refunds: list[Return]
) -> list[GiftCard]:
    found: dict[str, GiftCard] = {}
    for user in profile.identifiers.get("user_id", []):
        for card in list_cards(conn, ws, user_id=user.value, limit=50):
            found[card.giftcard_id] = card
    if refunds:
        ids = [r.return_id for r in refunds]
        for card in list_cards(conn, ws, return_ids=ids, limit=10 * len(ids)):
            found[card.giftcard_id] = card
    return sorted(found.values(), key=lambda c: (-c.issued_at, c.giftcard_id))


def _recommended(
    conn: Connection, ws: str, holder: str, context: str, k: int, lang: str
) -> dict[str, Any] | None:
    ask = recommend.Ask(context=context, k=k, profile=holder, lang=lang)
    try:
        return recommend.recommend(conn, ws, ask, at=datetime.now(UTC))
    except PolkuError:
        return None


def _journeys(conn: Connection, ws: str, holder: str, ids: list[str]) -> list[JourneyOfPerson]:
    enrolled = journeys.enrollments_of(conn, ws, profile_ids=ids, limit=200)
    keys = list(dict.fromkeys(e.journey_key for e in enrolled))
    names = {j["key"]: j["name"] for j in journeys.list_journeys(conn, ws)}
    found = []
    for key in keys:
        try:
            explained = journeys.explain(conn, ws, holder, key)
        except NotFound:
            continue  # the journey was deleted since
        found.append(JourneyOfPerson(key, names.get(key, {}), explained))
    return found


def view_of(
    conn: Connection,
    ws: str,
    holder: str,
    config: IdentityConfig,
    *,
    channel: str | None,
    lang: str,
) -> CustomerView | None:
    """The 360° view of the profile `holder` (an id that holds itself, see `holder_of`),
    the timeline kept to `channel` when given; None when the workspace has no such
    profile. Raises `InvalidField` naming ``channel`` for an unknown channel."""
    only = _timeline_filter(channel)
    profile = get_profile(conn, ws, holder, config)
    if profile is None:
        return None
    merges = merge_ledger(conn, ws, holder)
    ids = sorted({holder} | {m.loser_id for m in merges if m.winner_id == holder and not m.undone})
    page = timeline(conn, ws, holder, limit=TIMELINE_LIMIT, only=only)
    orders = orders_of(conn, ws, holder, limit=_ORDERS)
    # One read for every order's returns (newest first), at most 20 an order on average.
    refunds = (
        list_returns(conn, ws, order_ids=[o.order_id for o in orders], limit=20 * len(orders))
        if orders
        else []
    )
    return CustomerView(
        profile=profile,
        name=_name(profile.traits),
        merges=merges,
        channel=channel,
        timeline=[] if page is None else page.events,
        cart=_cart(conn, ws, holder, config),
        orders=orders,
        returns=refunds,
        giftcards=_giftcards(conn, ws, profile, refunds),
        reservations=reservations_of(
            conn,
            ws,
            user_ids=[i.value for i in profile.identifiers.get("user_id", [])],
            anonymous_ids=[i.value for i in profile.identifiers.get("anonymous_id", [])],
        ),
        signals=signals_of(conn, ws, ids),
        recommendations=_recommended(conn, ws, holder, "home", _RECOMMENDED, lang),
        next_best_offer=_recommended(conn, ws, holder, "next_best_offer", 1, lang),
        journeys=_journeys(conn, ws, holder, ids),
    )
