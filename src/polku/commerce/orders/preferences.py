"""Preferences learnt from a person's history ("omotenashi"): the delivery method, the store
and the payment method type they choose, and the defaults a checkout preselects from them.

Computed when read, from little: the person's last `WINDOW` orders (every channel,
cancelled ones left out) and last `WINDOW` store interactions on their timeline
(click-and-collect reservations, store visits), in three indexed queries. Nothing is kept,
so a merge, an un-merge, a cancellation or a replay is reflected at once.

- **Recency-weighted counts.** Each observation weighs ``0.5 ** (age / HALF_LIFE_DAYS)``,
  its age counted from the person's newest observation of the same kind (so the answer
  depends on the person's history, not on the day it is asked); a store visit weighs half a
  purchase. The value with the highest weight wins (ties: the more recent).
- **Confidence** = the winner's share of the weight, times ``n / (n + 1)`` for `n` observations:
  one order says 0.5 at most, four orders of four say 0.8.
- **Stated beats inferred.** A trait the customer set (`preferred_store`,
  `preferred_delivery_method`, `preferred_payment_method` in identify traits) is the
  preference, with confidence 1; the inferred one is still shown next to it.
- **Consent.** A checkout preselects an inferred choice only while the person has not
  withdrawn consent to `personalisation` (for the checkout's channel or all channels);
  stated choices are theirs and always apply.

Store observations: a till receipt (`POS Order Completed` at the store), an online order
with a `store_id` (collected there), a `Click and Collect Reserved` there, and, at half
weight, a `Store Visited` there. Delivery: the `shipping_method` of orders. Payment: the
`payment_method` of orders (a type such as `card`, or a provider's token; never a card
number, which collection refuses); a checkout leaves `cash` out, which cannot be paid online.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select

from polku.commerce.locations.hours import opening_statuses
from polku.commerce.locations.queries import get_location
from polku.commerce.orders.queries import Order, orders_of
from polku.errors import InvalidField
from polku.events import to_iso
from polku.identity.identifiers import IdentityConfig
from polku.identity.tables import event_profiles
from polku.profiles.queries import consent_of, find_by_identifier, get_profile, resolve

__all__ = [
    "HALF_LIFE_DAYS",
    "WINDOW",
    "Evidence",
    "Observation",
    "Preference",
    "Preferences",
    "checkout_defaults",
    "preferences_body",
    "preferences_of",
    "preferred_store",
]

WINDOW: Final = 20
"""How many of the newest orders, and of the newest store interactions, are looked at."""

HALF_LIFE_DAYS: Final = 180.0
"""An observation this much older than the newest counts half as much."""

VISIT_WEIGHT: Final = 0.5
STATED_TRAITS: Final = {
    "delivery_method": "preferred_delivery_method",
    "store": "preferred_store",
    "payment_method": "preferred_payment_method",
}
NOT_ONLINE: Final = frozenset({"cash"})
"""Payment method types a checkout can never use."""

_DAY_MS: Final = 86_400_000
_STORE_EVENTS: Final = ("Click and Collect Reserved", "Store Visited")
_KIND_WORDS: Final = {
    "receipt": ("till purchase", "till purchases"),
    "pickup": ("online order collected", "online orders collected"),
    "reservation": ("click-and-collect reservation", "click-and-collect reservations"),
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One choice the person made: `value` (a method or a store id) at event time `at`."""

    value: str
    at: int
    kind: str  # order, receipt, pickup, reservation, visit
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Evidence:
    count: int  # observations with the preferred value
    of: int  # observations looked at
    last_used: int  # event time of the newest observation with the value, epoch ms
    by_kind: tuple[tuple[str, int], ...] = ()  # (kind, count) for the preferred value


@dataclass(frozen=True, slots=True)
class Preference:
    """One preference: its value, whether the customer stated it or Polku inferred it, how
    sure that is, why (in words), and the evidence."""

    value: str
    source: str  # "stated" or "inferred"
    confidence: float
    reason: str
    evidence: Evidence | None = None  # None for a stated preference
    alternatives: tuple[tuple[str, int], ...] = ()  # other values seen, with their counts
    inferred: Preference | None = None  # with a stated preference: what history says


@dataclass(frozen=True, slots=True)
class Preferences:
    profile_id: str
    delivery_method: Preference | None
    store: Preference | None
    payment_method: Preference | None
    observations: dict[str, tuple[Observation, ...]] = field(default_factory=dict)


# -- inference --------------------------------------------------------------------------------


def _plural(count: int, words: tuple[str, str]) -> str:
    return f"{count} {words[0] if count == 1 else words[1]}"


def _date(ms: int) -> str:
    return to_iso(ms)[:10]


def _order_reason(count: int, of: int, last_used: int) -> str:
    if of == 1:
        return f"used in their only order so far ({_date(last_used)})"
    if count == of:
        return f"used in all of the last {of} orders"
    return f"used in {count} of the last {of} orders"


def _store_reason(evidence: Evidence, purchases: int, visits: int) -> str:
    kinds = dict(evidence.by_kind)
    chosen = sum(n for kind, n in kinds.items() if kind != "visit")
    seen = kinds.get("visit", 0)
    parts: list[str] = []
    if chosen:
        detail = ", ".join(
            _plural(kinds[kind], words) for kind, words in _KIND_WORDS.items() if kinds.get(kind)
        )
        if purchases == 1:
            parts.append(f"chosen for their only store purchase or pickup so far ({detail})")
        elif chosen == purchases:
            parts.append(f"chosen in all of the last {purchases} store purchases and pickups")
            parts[-1] += f" ({detail})"
        else:
            parts.append(f"chosen in {chosen} of the last {purchases} store purchases and pickups")
            parts[-1] += f" ({detail})"
    if seen:
        times = "once" if seen == 1 else f"{seen} times"
        if chosen:
            parts.append(f"visited {times}")
        elif seen == visits:
            parts.append(f"visited in all of the last {visits} store visits")
        else:
            parts.append(f"visited in {seen} of the last {visits} store visits")
    return "; ".join(parts)


def infer(
    observations: Sequence[Observation], *, store: bool = False, exclude: Iterable[str] = ()
) -> Preference | None:
    """The preferred value among `observations` (see the module doc), or None if none."""
    left_out = frozenset(value.lower() for value in exclude)
    seen = [o for o in observations if o.value.lower() not in left_out]
    if not seen:
        return None
    newest = max(o.at for o in seen)
    scores: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    last: dict[str, int] = {}
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for o in seen:
        age_days = max(0, newest - o.at) / _DAY_MS
        scores[o.value] += o.weight * 0.5 ** (age_days / HALF_LIFE_DAYS)
        counts[o.value] += 1
        last[o.value] = max(last.get(o.value, o.at), o.at)
        kinds[o.value][o.kind] += 1
    best = max(scores, key=lambda v: (scores[v], last[v], v))
    n = len(seen)
    confidence = round(scores[best] / sum(scores.values()) * n / (n + 1), 2)
    evidence = Evidence(
        count=counts[best],
        of=n,
        last_used=last[best],
        by_kind=tuple(sorted(kinds[best].items())),
    )
    if store:
        purchases = sum(1 for o in seen if o.kind != "visit")
        visits = n - purchases
        reason = _store_reason(evidence, purchases, visits)
    else:
        reason = _order_reason(counts[best], n, last[best])
    others = sorted(
        ((v, c) for v, c in counts.items() if v != best), key=lambda item: (-item[1], item[0])
    )
    return Preference(
        value=best,
        source="inferred",
        confidence=confidence,
        reason=reason,
        evidence=evidence,
        alternatives=tuple(others),
    )


def _stated(traits: dict[str, Any], kind: str, inferred: Preference | None) -> Preference | None:
    trait = STATED_TRAITS[kind]
    value = traits.get(trait)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        return inferred
    return Preference(
        value=str(value).strip(),
        source="stated",
        confidence=1.0,
        reason=f"stated by the customer (trait {trait})",
        inferred=inferred,
    )


# -- reading the history ----------------------------------------------------------------------


def _observations(
    conn: Connection, workspace_id: str, holder: str
) -> dict[str, tuple[Observation, ...]]:
    orders: list[Order] = [
        o for o in orders_of(conn, workspace_id, holder, limit=WINDOW) if o.status != "cancelled"
    ]
    delivery = tuple(
        Observation(o.shipping_method.strip().lower(), o.placed_at, "order")
        for o in orders
        if o.shipping_method and o.shipping_method.strip()
    )
    payment = tuple(
        Observation(o.payment_method.strip(), o.placed_at, "order")
        for o in orders
        if o.payment_method and o.payment_method.strip()
    )
    stores: list[Observation] = [
        Observation(o.store_id, o.placed_at, "receipt" if o.channel == "store" else "pickup")
        for o in orders
        if o.store_id
    ]
    ep = event_profiles.c
    rows = conn.execute(
        select(ep.event, ep.store_id, ep.timestamp)
        .where(
            ep.workspace_id == workspace_id,
            ep.profile_id == holder,
            ep.event.in_(_STORE_EVENTS),
            ep.store_id.is_not(None),
        )
        .order_by(ep.timestamp.desc(), ep.offset.desc())
        .limit(WINDOW)
    )
    for name, store_id, at in rows:
        if name == "Store Visited":
            stores.append(Observation(store_id, int(at), "visit", VISIT_WEIGHT))
        else:
            stores.append(Observation(store_id, int(at), "reservation"))
    return {"delivery_method": delivery, "store": tuple(stores), "payment_method": payment}


def preferences_of(
    conn: Connection, workspace_id: str, profile_id: str, config: IdentityConfig
) -> Preferences | None:
    """The preferences of `profile_id` (or of the profile it was merged into); None for a
    profile the workspace does not have."""
    profile = get_profile(conn, workspace_id, profile_id, config)
    if profile is None:
        return None
    holder = profile.profile_id
    seen = _observations(conn, workspace_id, holder)
    return Preferences(
        profile_id=holder,
        delivery_method=_stated(profile.traits, "delivery_method", infer(seen["delivery_method"])),
        store=_stated(profile.traits, "store", infer(seen["store"], store=True)),
        payment_method=_stated(profile.traits, "payment_method", infer(seen["payment_method"])),
        observations=seen,
    )


def preferred_store(
    conn: Connection, workspace_id: str, profile_id: str, config: IdentityConfig
) -> str | None:
    """The store the person prefers (stated, else inferred); None if there is none or the
    profile is unknown. What availability uses when a profile has no `preferred_store`."""
    found = preferences_of(conn, workspace_id, profile_id, config)
    return None if found is None or found.store is None else found.store.value


# -- shaping ----------------------------------------------------------------------------------


def _evidence_body(evidence: Evidence | None) -> dict[str, Any] | None:
    if evidence is None:
        return None
    return {
        "count": evidence.count,
        "of": evidence.of,
        "last_used": to_iso(evidence.last_used),
        "by_kind": dict(evidence.by_kind),
    }


def preference_body(found: Preference | None) -> dict[str, Any] | None:
    """A preference as the API shows it."""
    if found is None:
        return None
    return {
        "value": found.value,
        "source": found.source,
        "confidence": found.confidence,
        "reason": found.reason,
        "evidence": _evidence_body(found.evidence),
        "alternatives": [{"value": v, "count": c} for v, c in found.alternatives],
        "inferred": preference_body(found.inferred),
    }


def preferences_body(found: Preferences, asked: str) -> dict[str, Any]:
    """`GET /v1/profiles/{id}/preferences`: `asked` is the id in the request."""
    return {
        "profile_id": found.profile_id,
        "redirected_from": asked if asked != found.profile_id else None,
        "delivery_method": preference_body(found.delivery_method),
        "store": preference_body(found.store),
        "payment_method": preference_body(found.payment_method),
    }


# -- checkout defaults ------------------------------------------------------------------------


def _personalisation_allowed(
    conn: Connection, workspace_id: str, holder: str, channel: str
) -> bool:
    """False when the person's newest answer on `personalisation` for `channel` (or for
    every channel) withdrew it; never answered counts as allowed."""
    found = consent_of(conn, workspace_id, holder)
    if found is None:
        return True
    answers = found[1].get("personalisation", {})
    latest = max(
        (answers[c] for c in (channel, "*") if c in answers), key=lambda e: e.at, default=None
    )
    return latest is None or latest.granted


def _holder(
    conn: Connection,
    workspace_id: str,
    config: IdentityConfig,
    profile_id: str | None,
    user_id: str | None,
    anonymous_id: str | None,
) -> tuple[str | None, bool]:
    """(holder, known): the profile behind the request's customer, and whether a profile id
    was given (an unknown one is then an error, an unknown shopper is not)."""
    if profile_id is not None:
        return resolve(conn, workspace_id, profile_id), True
    kind, field_name, value = (
        ("user_id", "userId", user_id)
        if user_id is not None
        else ("anonymous_id", "anonymousId", anonymous_id)
    )
    assert value is not None
    try:
        found = find_by_identifier(conn, workspace_id, kind, value, config)
    except InvalidField as exc:
        raise InvalidField(
            exc.message.replace("value", field_name, 1), field=field_name, hint=exc.hint
        ) from None
    return (None if found is None else found[0]), False


def _store_choice(
    conn: Connection, workspace_id: str, chosen: Preference, at: datetime
) -> dict[str, Any]:
    location = get_location(conn, workspace_id, chosen.value)
    body: dict[str, Any] = {
        "location_id": chosen.value,
        "name": None,
        "known": location is not None,
        "active": False,
        "click_and_collect": False,
        "open_now": None,
        "closes_at": None,
        "next_opening": None,
        "preselect": False,
    }
    if location is not None:
        status = opening_statuses(conn, workspace_id, [location.location_id], at).get(
            location.location_id
        )
        body.update(
            name=location.name,
            active=location.active,
            click_and_collect=location.click_and_collect,
            preselect=location.active and location.click_and_collect,
        )
        if status is not None:
            body.update(
                open_now=status.open_now,
                closes_at=None if status.closes_at is None else status.closes_at.isoformat(),
                next_opening=None
                if status.next_opening is None
                else status.next_opening.isoformat(),
            )
    reason = chosen.reason
    if location is None:
        reason += "; not in the location list, so not preselected"
    elif not location.active:
        reason += "; it has closed for good, so it is not preselected"
    elif not location.click_and_collect:
        reason += "; it does not offer click and collect, so it is not preselected"
    body.update(source=chosen.source, confidence=chosen.confidence, reason=reason)
    return body


def _choice(found: Preference | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "value": found.value,
        "source": found.source,
        "confidence": found.confidence,
        "reason": found.reason,
    }


def checkout_defaults(
    conn: Connection,
    workspace_id: str,
    config: IdentityConfig,
    *,
    profile_id: str | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    channel: str = "web",
    at: datetime,
) -> dict[str, Any] | None:
    """What a checkout on `channel` preselects for the customer named by exactly one of
    `profile_id`, `user_id` or `anonymous_id`: delivery method, store (with its
    click-and-collect and opening status at `at`) and payment method type, each with its
    reason. None when `profile_id` names no profile; a shopper unknown by user or anonymous
    id gets every choice null."""
    holder, by_id = _holder(conn, workspace_id, config, profile_id, user_id, anonymous_id)
    if holder is None:
        if by_id:
            return None
        return {
            "profile_id": None,
            "redirected_from": None,
            "personalised": False,
            "delivery_method": None,
            "store": None,
            "payment_method": None,
            "note": "Polku does not know this shopper yet: no defaults.",
        }
    found = preferences_of(conn, workspace_id, holder, config)
    if found is None:  # resolved a moment ago; gone only if deleted meanwhile
        return None
    allowed = _personalisation_allowed(conn, workspace_id, found.profile_id, channel)

    def usable(chosen: Preference | None) -> Preference | None:
        if chosen is None or chosen.source == "stated" or allowed:
            return chosen
        return None

    payment = found.payment_method
    if payment is not None and payment.value.lower() in NOT_ONLINE:
        payment = infer(found.observations["payment_method"], exclude=NOT_ONLINE)
    store = usable(found.store)
    body: dict[str, Any] = {
        "profile_id": found.profile_id,
        "redirected_from": profile_id if by_id and profile_id != found.profile_id else None,
        "personalised": allowed,
        "delivery_method": _choice(usable(found.delivery_method)),
        "store": None if store is None else _store_choice(conn, workspace_id, store, at),
        "payment_method": _choice(usable(payment)),
        "note": None
        if allowed
        else "The customer has withdrawn consent to personalisation: only the choices they "
        "stated themselves are preselected.",
    }
    return body
