"""What should this person see now: `recommend` for one context, with reasons and rules.

1. **Who.** The profile (following merges) and whether they allow personalisation (their
   newest answer on ``personalisation`` for the channel, or for every channel; never
   answered counts as allowed). An unknown profile, or no consent, gets the non-personal
   answer, and the response says so (`fallback`).
2. **Candidates** from the context's sources, each score scaled to 0..1 and weighted:
   personal factors (ALS), the person's recent views (viewed next, live), bought together
   (live, from orders and receipts), people-who-liked (item-item co-occurrence), similar by
   content (TF-IDF, for new products), search hits, and popularity at the person's store or
   overall. The source that gave an item most of its score is its reason.
3. **Rules.** Only active products with an active variant; not what the person bought
   (unless the product's ``replenishable`` attribute is true), not what they returned, not
   what the context is already about; only products with sellable units online (any
   warehouse) or at the person's store (the one asked for, else stated, else inferred from
   their history, else nearest to lat/lon), naming the store; at most `per_category` of one
   category before others (diversity); optional boosts by the ``margin`` attribute (0..1)
   and for ``outlet`` products.

Everything is read in a handful of indexed queries; the models are in memory
(`polku.recommend.serving`), so an answer takes a few milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import orjson
from sqlalchemy import Connection, func, select

from polku.commerce.catalog.search import search
from polku.commerce.catalog.tables import pairs
from polku.commerce.locations.geo import distance_km
from polku.commerce.stock.reference import reference
from polku.errors import InvalidField, NotFound
from polku.identity.tables import event_profiles
from polku.journeys.tables import segment_members
from polku.profiles.queries import resolve
from polku.profiles.tables import profiles
from polku.recommend.bundle import Bundle
from polku.recommend.models import top_k
from polku.recommend.reasons import Reason, availability_words, words
from polku.recommend.serving import bundle as current_bundle
from polku.recommend.shelf import Shelved, names_of, on_shelf
from polku.recommend.tables import interactions, transitions
from polku.storage.bulk import fetch_in, fetch_rows

__all__ = ["BOOSTS", "CONTEXTS", "MAX_K", "Ask", "recommend"]

CONTEXTS: Final = ("home", "product", "cart", "post_purchase", "search", "next_best_offer")
BOOSTS: Final = ("margin", "outlet")
MAX_K: Final = 50
_POOL: Final = 100  # candidates per model source
_HISTORY: Final = 300  # newest interactions of a person read
_SEEDS: Final = 10  # items a context starts from (cart lines, recent views, hits)
_NEIGHBOURS: Final = 20  # model neighbours taken per seed
_PARTNERS: Final = 30  # live partners read per seed


@dataclass(frozen=True)
class Ask:
    """One request for recommendations (see `recommend`)."""

    context: str = "home"
    k: int = 10
    profile: str | None = None
    product: str | None = None
    items: tuple[str, ...] = ()  # the cart's products (context cart), or what was bought
    q: str | None = None
    store: str | None = None
    near: tuple[float, float] | None = None
    lang: str = "en"
    channel: str = "web"
    boosts: tuple[str, ...] = ()
    at: datetime | None = None


@dataclass
class _Person:
    holder: str | None = None
    allowed: bool = False
    fallback: str | None = None
    stated_store: str | None = None
    bought: dict[str, int] = field(default_factory=dict)
    returned: set[str] = field(default_factory=set)
    recent: list[str] = field(default_factory=list)  # viewed or added, newest first
    history: dict[str, float] = field(default_factory=dict)  # product -> net weight
    last_order: list[str] = field(default_factory=list)
    cart: list[str] = field(default_factory=list)
    stores: Counter[str] = field(default_factory=Counter)  # till purchases by store
    segments: list[str] = field(default_factory=list)  # the segments they are in now


@dataclass
class _Pool:
    """Candidates: product -> summed score, and the best-contributing reason."""

    scores: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    best: dict[str, tuple[float, Reason]] = field(default_factory=dict)

    def add(self, found: Iterable[tuple[str, float, Reason]], weight: float) -> None:
        isfinite = math.isfinite
        listed = [(p, s, r) for p, s, r in found if s > 0 and isfinite(s)]
        if not listed:
            return
        top = max([s for _, s, _ in listed])
        scores, best = self.scores, self.best
        for pid, score, reason in listed:
            part = weight * score / top
            scores[pid] += part
            held = best.get(pid)
            if held is None or held[0] < part:
                best[pid] = (part, reason)


# -- the person ---------------------------------------------------------------------------------


# The hot path's statements are plain SQL with ``?`` markers (`polku.storage.bulk`, rendered
# once per dialect and list size): compiling SQLAlchemy expressions, above all their expanding
# ``IN`` lists, cost more per request than SQLite's own work.
_PROFILE: Final = (
    f"SELECT merged_into, traits, consent FROM {profiles.name}"
    " WHERE workspace_id = ? AND profile_id = ?"
)
_HISTORY_OF: Final = (
    f'SELECT ri.product_id, ri.kind, ri.weight, ri."offset", ri.store_id'
    f' FROM {event_profiles.name} ep JOIN {interactions.name} ri ON ri."offset" = ep."offset"'
    " WHERE ep.workspace_id = ? AND ep.profile_id = ?"
    f' ORDER BY ep."timestamp" DESC, ep."offset" DESC LIMIT {_HISTORY}'
)


def _allowed(consent: Mapping[str, Any], channel: str) -> bool:
    """False when the newest answer on personalisation for `channel` (or every channel)
    withdrew it; never answered counts as allowed."""
    answers = consent.get("personalisation")
    if not isinstance(answers, dict):
        return True
    given = [answers[c] for c in (channel, "*") if isinstance(answers.get(c), dict)]
    if not given:
        return True
    latest = max(given, key=lambda e: e.get("at") or 0)
    return bool(latest.get("granted", True))


def _profile_row(conn: Connection, ws: str, profile: str) -> Any:
    """(merged_into, traits, consent) of `profile`, or None."""
    rows = fetch_rows(conn, _PROFILE, (ws, profile))
    return rows[0] if rows else None


def _person(conn: Connection, ws: str, ask: Ask, *, segmented: bool = False) -> _Person:
    """Who is asking: their history, consent, cart and (when the models know segments,
    `segmented`) the segments they are in."""
    person = _Person()
    if ask.profile is None:
        person.fallback = "no_profile"
        return person
    row = _profile_row(conn, ws, ask.profile)
    holder: str | None = ask.profile
    if row is None or row[0] is not None:  # merged (or not projected yet)
        holder = resolve(conn, ws, ask.profile)
        row = None if holder is None else _profile_row(conn, ws, holder)
    if row is None or holder is None:
        person.fallback = "unknown_profile"
        return person
    person.holder = holder
    _merged_into, raw_traits, raw_consent = row
    traits = orjson.loads(raw_traits or "{}")
    stated = traits.get("preferred_store") if isinstance(traits, dict) else None
    if isinstance(stated, str | int) and not isinstance(stated, bool):
        person.stated_store = str(stated)
    consent = orjson.loads(raw_consent or "{}")
    person.allowed = _allowed(consent if isinstance(consent, dict) else {}, ask.channel)
    if not person.allowed:
        person.fallback = "no_consent"
    last_order: int | None = None
    cart: dict[str, bool] = {}
    for pid, kind, weight, offset, store in fetch_rows(
        conn, _HISTORY_OF, (ws, holder)
    ):  # newest first
        person.history[pid] = person.history.get(pid, 0.0) + float(weight)
        if kind == "purchase":
            person.bought[pid] = person.bought.get(pid, 0) + 1
            if last_order is None:
                last_order = offset
            if offset == last_order:
                person.last_order.append(pid)
            cart.setdefault(pid, False)  # bought after it was added: not in the cart
            if store:
                person.stores[store] += 1
        elif kind == "return":
            person.returned.add(pid)
        else:
            if pid not in person.recent:
                person.recent.append(pid)
            if kind == "cart":
                cart.setdefault(pid, True)
    person.cart = [pid for pid, open_ in cart.items() if open_]
    if person.allowed and segmented:
        m = segment_members.c
        person.segments = list(
            conn.execute(
                select(m.segment_key).where(m.workspace_id == ws, m.profile_id == holder)
            ).scalars()
        )
    return person


# -- sources ------------------------------------------------------------------------------------


_LIVE: Final = {
    "pairs": f"SELECT product_id, other_id, orders FROM {pairs.name}"
    " WHERE workspace_id = ? AND product_id IN (?*) ORDER BY orders DESC LIMIT {limit}",
    "transitions": f'SELECT product_id, next_id, "count" FROM {transitions.name}'
    ' WHERE workspace_id = ? AND product_id IN (?*) ORDER BY "count" DESC LIMIT {limit}',
}


def _popular_in_segments(b: Bundle, person: _Person) -> list[tuple[str, float, Reason]]:
    """What the members of the person's segments took to (the first three segments the
    models know, each scaled to its own best)."""
    found: list[tuple[str, float, Reason]] = []
    known = [b.segment_index[s] for s in person.segments if s in b.segment_index][:3]
    for index in known:
        idx, sc = b.popular_in_segment(index, _POOL)
        if not len(sc) or float(sc[0]) <= 0:
            continue
        top = float(sc[0])
        reason = Reason("popular_segment", segment=b.popularity.segment_ids[index])
        found.extend(
            (b.item_ids[i], v / top, reason) for i, v in zip(idx.tolist(), sc.tolist(), strict=True)
        )
    return found


def _live_partners(
    conn: Connection, ws: str, seeds: Sequence[str], code: str, *, table: str
) -> list[tuple[str, float, Reason]]:
    """Bought together (orders and receipts) or viewed next (sessions), as counted live by
    the pipeline: the strongest pairs of the first `_SEEDS` seeds."""
    chosen = list(dict.fromkeys(seeds))[:_SEEDS]
    if not chosen:
        return []
    # The limit is a literal (one of `_SEEDS` sizes), so each size is one cached statement.
    sql = _LIVE[table].replace("{limit}", str(_PARTNERS * len(chosen)))
    # Reasons are immutable: one per seed serves all of its partners.
    reasons = {seed: Reason(code, because=seed) for seed in chosen}
    return [
        (other, float(n), reasons[seed]) for seed, other, n in fetch_in(conn, sql, chosen, (ws,))
    ]


def _neighbours(
    b: Bundle, seeds: Sequence[str], code: str, *, content: bool = False
) -> list[tuple[str, float, Reason]]:
    model = b.content.neighbours if content else b.itemitem.neighbours
    found: list[tuple[str, float, Reason]] = []
    for seed in seeds[:_SEEDS]:
        i = b.item_index.get(seed)
        if i is None or i >= len(model.index):
            continue
        idx, sc = model.of(i)
        reason, ids = Reason(code, because=seed), b.item_ids
        found.extend(
            [
                (ids[j], s, reason)
                for j, s in zip(idx[:_NEIGHBOURS].tolist(), sc[:_NEIGHBOURS].tolist(), strict=True)
            ]
        )
    return found


def _personal(b: Bundle, person: _Person) -> list[tuple[str, float, Reason]]:
    if not person.allowed or person.holder is None:
        return []
    mf = b.factors
    user = b.user_index.get(person.holder)
    if user is not None and mf.user_top is not None and mf.user_top_scores is not None:
        idx, sc = mf.user_top[user][:_POOL], mf.user_top_scores[user][:_POOL]
    else:  # not in the training data: fold them in from their history
        items = [b.item_index[p] for p in person.history if p in b.item_index]
        weights = [max(0.0, person.history[b.item_ids[i]]) for i in items]
        scores = mf.scores(user, items, weights)
        if scores is None:
            return []
        idx, sc = top_k(scores, _POOL)
    low = float(sc.min()) if len(sc) else 0.0
    reason, ids = Reason("personal"), b.item_ids
    return [
        (ids[i], s - low + 1e-6, reason) for i, s in zip(idx.tolist(), sc.tolist(), strict=True)
    ]


def _popular(
    conn: Connection, ws: str, b: Bundle | None, store: str | None, store_name: str | None
) -> list[tuple[str, float, Reason]]:
    if b is None:  # no models yet: plain counts of the newest interactions
        ri = interactions.c
        newest = (
            select(ri.product_id, ri.weight)
            .where(ri.workspace_id == ws)
            .order_by(ri.offset.desc())
            .limit(20_000)
            .subquery()
        )
        rows = conn.execute(
            select(newest.c.product_id, func.sum(newest.c.weight).label("w"))
            .group_by(newest.c.product_id)
            .order_by(func.sum(newest.c.weight).desc())
            .limit(_POOL)
        ).all()
        return [(pid, float(w), Reason("popular")) for pid, w in rows]
    s = b.store_index.get(store) if store else None
    idx, sc = b.popular_top(s, _POOL)
    reason = Reason("popular_store", store=store_name) if s is not None else Reason("popular")
    return [
        (b.item_ids[i], float(v), reason) for i, v in zip(idx.tolist(), sc.tolist(), strict=True)
    ]


# -- rules --------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "1"))


def _margin(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return 0.0


# -- the answer ---------------------------------------------------------------------------------


def _check(ask: Ask) -> None:
    if ask.context not in CONTEXTS:
        raise InvalidField(
            f"Unknown context {ask.context[:40]!r}.",
            field="context",
            code="unknown_context",
            hint=f"Use one of {', '.join(CONTEXTS)}.",
        )
    if not 1 <= ask.k <= MAX_K:
        raise InvalidField(
            f"k must be between 1 and {MAX_K}, not {ask.k}.", field="k", code="invalid_k"
        )
    for boost in ask.boosts:
        if boost not in BOOSTS:
            raise InvalidField(
                f"Unknown boost {boost[:40]!r}.",
                field="boost",
                code="unknown_boost",
                hint=f"Use any of {', '.join(BOOSTS)}, comma-separated.",
            )
    if ask.context == "product" and not ask.product:
        raise InvalidField(
            "The product context needs the product the page shows.",
            field="product",
            code="missing_product",
            hint="Add product=<product_id>.",
        )
    if ask.context == "search" and not (ask.q and ask.q.strip()):
        raise InvalidField(
            "The search context needs the query.",
            field="q",
            code="missing_query",
            hint="Add q=<what the shopper typed>.",
        )


def recommend(conn: Connection, ws: str, ask: Ask, *, at: datetime) -> dict[str, Any]:
    """The `ask.k` recommendations for `ask` (see the module doc), as the API returns them.

    Raises `InvalidField` for a bad context, k or boost, or a missing product or query, and
    `NotFound` for an unknown product; an unknown profile is answered non-personally."""
    _check(ask)
    if ask.context == "product" and ask.product and not names_of(conn, ws, [ask.product]):
        raise NotFound(
            f"Unknown product {ask.product[:80]!r}.",
            field="product",
            code="unknown_product",
            hint="Send the retailer's product_id as the catalogue has it.",
        )
    b = current_bundle(conn, ws)
    person = _person(conn, ws, ask, segmented=b is not None and bool(b.segment_index))
    ref, _statuses = reference(conn, ws, at)
    places = ref.by_id()
    warehouses = [loc.location_id for loc in ref.locations if loc.kind != "store"]
    store = _store(ask, person, places)
    store_name = places[store].name if store in places else None
    pool = _Pool()
    seeds = _sources(conn, ws, ask, person, b, pool, store, store_name)
    return _answer(conn, ws, ask, person, b, pool, seeds, store, store_name, places, warehouses)


def _store(ask: Ask, person: _Person, places: Mapping[str, Any]) -> str | None:
    """The store to stock from: asked for, else stated by the person, else where most of
    their store purchases were (with consent to personalisation), else the nearest."""

    def usable(store: str | None) -> bool:
        return store is not None and store in places and places[store].kind == "store"

    if ask.store is not None:
        if not usable(ask.store):
            raise InvalidField(
                f"Unknown or closed store {ask.store[:80]!r}.",
                field="store",
                code="unknown_store",
                hint="Send the location_id of an active store, or leave store out.",
            )
        return ask.store
    if usable(person.stated_store):
        return person.stated_store
    if person.allowed:
        for inferred, _count in person.stores.most_common():
            if usable(inferred):
                return inferred
    if ask.near is not None:
        stores = [p for p in places.values() if p.kind == "store"]
        if stores:
            lat, lon = ask.near
            nearest = min(stores, key=lambda p: distance_km(lat, lon, p.latitude, p.longitude))
            return str(nearest.location_id)
    return None


def _sources(
    conn: Connection,
    ws: str,
    ask: Ask,
    person: _Person,
    b: Bundle | None,
    pool: _Pool,
    store: str | None,
    store_name: str | None,
) -> list[str]:
    """Fill `pool` for the context; returns the items the context is about (never shown)."""
    personal = _personal(b, person) if b is not None else []
    recent = person.recent if person.allowed else []
    context = ask.context
    seeds: list[str] = []
    if context in ("home", "next_best_offer"):
        # Someone the models have not met yet (an anonymous visitor) is best served by
        # what their session's views lead to; the models fold them in at half weight.
        known = b is not None and person.holder in b.user_index
        pool.add(personal, 1.0 if known else 0.5)
        session = _live_partners(conn, ws, recent, "viewed_next", table="transitions")
        pool.add(session, 0.5 if known else 1.0)
        if b is not None:
            pool.add(_neighbours(b, recent, "also_liked"), 0.3)
    elif context == "product":
        assert ask.product is not None
        seeds = [ask.product]
        pool.add(_live_partners(conn, ws, seeds, "bought_together", table="pairs"), 1.0)
        pool.add(_live_partners(conn, ws, seeds, "viewed_next", table="transitions"), 0.8)
        if b is not None:
            pool.add(_neighbours(b, seeds, "also_liked"), 0.6)
            pool.add(_neighbours(b, seeds, "similar", content=True), 0.5)
        pool.add(personal, 0.2)
    elif context in ("cart", "post_purchase"):
        if context == "cart":
            seeds, code = list(ask.items or person.cart), "completes_cart"
        else:
            seeds, code = list(ask.items or person.last_order), "after_purchase"
        pool.add(_live_partners(conn, ws, seeds, code, table="pairs"), 1.0)
        if b is not None:
            pool.add(_neighbours(b, seeds, code), 0.7)
            pool.add(_neighbours(b, seeds, "similar", content=True), 0.2)
        pool.add(personal, 0.3)
    elif context == "search":
        assert ask.q is not None
        result = search(conn, ws, ask.q, lang=ask.lang if ask.lang in ("fi", "en") else None, k=20)
        hits = [(h.product.product_id, h.score, Reason("search", query=ask.q)) for h in result.hits]
        pool.add(hits, 1.0)
        if b is not None:
            pool.add(_neighbours(b, [h[0] for h in hits], "also_liked"), 0.3)
        pool.add(personal, 0.3)
    if b is not None:
        pool.add(_popular_in_segments(b, person), 0.1 if pool.scores else 0.8)
    pool.add(_popular(conn, ws, b, store, store_name), 0.05 if pool.scores else 1.0)
    return seeds


def _answer(
    conn: Connection,
    ws: str,
    ask: Ask,
    person: _Person,
    b: Bundle | None,
    pool: _Pool,
    seeds: Sequence[str],
    store: str | None,
    store_name: str | None,
    places: Mapping[str, Any],
    warehouses: Sequence[str],
) -> dict[str, Any]:
    about = set(seeds)
    ranked = sorted(
        ((p, sc) for p, sc in pool.scores.items() if p not in about),
        key=lambda kv: (-kv[1], kv[0]),
    )
    items: list[dict[str, Any]] = []
    deferred: list[tuple[float, Shelved]] = []
    per_category = max(2, math.ceil(ask.k / 3))
    in_category: dict[str, int] = defaultdict(int)
    excluded: dict[str, int] = defaultdict(int)
    stock_filter = bool(places)
    locations = [*warehouses, *([store] if store else [])]
    window = max(4 * ask.k + 10, 30)
    start = 0
    while start < len(ranked) and len(items) < ask.k:
        chunk = ranked[start : start + window]
        start += window
        found = on_shelf(conn, ws, [pid for pid, _ in chunk], locations)
        scored: list[tuple[float, str]] = []
        for pid, score in chunk:
            product = found.get(pid)
            if product is None:
                excluded["inactive"] += 1
                continue
            if pid in person.returned:
                excluded["returned"] += 1
                continue
            if pid in person.bought and not _truthy(product.attributes.get("replenishable")):
                excluded["bought"] += 1
                continue
            if stock_filter and not product.units:
                excluded["no_stock"] += 1
                continue
            boosted = score
            if "margin" in ask.boosts:
                boosted *= 1.0 + _margin(product.attributes.get("margin"))
            if "outlet" in ask.boosts and _truthy(product.attributes.get("outlet")):
                boosted *= 1.25
            scored.append((boosted, pid))
        scored.sort(key=lambda sp: (-sp[0], sp[1]))
        for score, pid in scored:
            product = found[pid]
            if in_category[product.category] >= per_category:
                deferred.append((score, product))
                continue
            in_category[product.category] += 1
            items.append(_item(product, score, pool, store, store_name, warehouses, ask))
            if len(items) >= ask.k:
                break
    for score, product in deferred[: max(0, ask.k - len(items))]:
        items.append(_item(product, score, pool, store, store_name, warehouses, ask))
    _name_becauses(conn, ws, items, b, person, ask.lang)
    return {
        "profile_id": person.holder,
        "context": ask.context,
        "personalised": person.allowed and person.holder is not None,
        "fallback": person.fallback,
        "note": _NOTES.get(person.fallback or ""),
        "store": None if store is None else {"location_id": store, "name": store_name},
        "stock_filter": "online and store"
        if store and stock_filter
        else ("online" if stock_filter else "off (no locations)"),
        "model_version": None if b is None else b.version,
        "excluded": dict(excluded),
        "items": items,
    }


_NOTES: Final = {
    "no_profile": "No profile given: popular and related items, not personal ones.",
    "unknown_profile": "Polku does not know this profile: popular and related items instead "
    "of personal ones.",
    "no_consent": "The customer has withdrawn consent to personalisation: popular and related "
    "items only, nothing from their history.",
}


def _item(
    product: Shelved,
    score: float,
    pool: _Pool,
    store: str | None,
    store_name: str | None,
    warehouses: Sequence[str],
    ask: Ask,
) -> dict[str, Any]:
    online = sum(product.units.get(w, 0) for w in warehouses)
    at_store = product.units.get(store, 0) if store else 0
    return {
        "product_id": product.product_id,
        "name": product.name_in(ask.lang),
        "category": product.category_path(),
        "score": round(score, 4),
        "reason": pool.best[product.product_id][1],  # put in words by _name_becauses
        "availability": {
            "online": online,
            "store": None
            if store is None
            else {"location_id": store, "name": store_name, "sellable": at_store},
            "words": availability_words(store_name, at_store > 0, online > 0),
        },
    }


def _name_becauses(
    conn: Connection,
    ws: str,
    items: list[dict[str, Any]],
    b: Bundle | None,
    person: _Person,
    lang: str,
) -> None:
    """Turn each item's reason into words, naming the product it comes from."""
    if b is not None and person.allowed and person.history:
        # A personal pick names the history item closest to it in the factor space.
        hist = [b.item_index[p] for p in person.history if p in b.item_index][:50]
        if hist:
            factors = b.factors.item_factors
            history = factors[hist]
            for item in items:
                reason = item["reason"]
                j = b.item_index.get(item["product_id"])
                if reason.code == "personal" and j is not None:
                    sims = history @ factors[j]
                    best = hist[int(np.argmax(sims))]
                    item["reason"] = Reason("personal", because=b.item_ids[best])
    becauses = {i["reason"].because for i in items if i["reason"].because}
    names = names_of(conn, ws, becauses)
    for item in items:
        r: Reason = item["reason"]
        named = Reason(r.code, r.because, names.get(r.because or ""), r.query, r.store)
        text = words(named)
        item["reason"] = {
            "code": r.code,
            "because": r.because,
            **({"segment": r.segment} if r.segment else {}),
            "text": text.get(lang, text["en"]),
            "en": text["en"],
            "fi": text["fi"],
        }
