"""Routing: candidate signals become signals on queues, inside the pipeline's transaction.

`route(conn, candidates)` is called by the signals consumer while it applies a batch, in the
transaction that moves its checkpoint. Each candidate is inserted once per
``(workspace, dedupe_key)`` (``INSERT ... ON CONFLICT DO NOTHING``, so a redelivery, a
replay or two workers racing on the same key add nothing); only a newly inserted signal is
put on queues and gets its webhook deliveries.

Queues: ``store:<location_id>`` (that store's staff), ``agents`` (online customer service)
and ``automation`` (journeys). A workspace's routing rules (`RoutingConfig`, stored in
`signal_routing_configs`, edited through ``PUT /v1/signals/routing``) are tried in order
and every rule that matches adds its queue, so a signal may be on several. A rule matches
on kind, score threshold, channel and cart value (``details["cart_value"]`` of the
candidate). A rule to ``store`` picks the store:

1. the store the candidate names (stock was checked there, the person visited it);
2. else the person's preferred store (the `preferred_store` trait, else inferred from their
   orders and visits: `polku.commerce.orders.preferences`);
3. else the nearest store with click and collect to the person's `postal_code` trait (or
   `latitude`/`longitude` traits);

and uses it if it is open at the event's time or opens within `opens_within_minutes`;
otherwise (or with no store at all) the rule's `fallback` queue (``agents`` by default).

Times are the event's (`Candidate.at_ms`), so a replay routes the same way.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import Connection, text

from polku.commerce.locations.geo import locate_postal_code
from polku.commerce.locations.hours import opening_statuses
from polku.commerce.locations.queries import get_location, nearest
from polku.commerce.orders.facts import PLACING_EVENTS
from polku.commerce.orders.preferences import STATED_TRAITS, preferred_store
from polku.errors import InvalidField
from polku.identity.identifiers import IdentityConfig
from polku.profiles.queries import resolve
from polku.signals.candidates import Candidate
from polku.signals.tables import deliveries, routes, routing_configs, signals, webhooks
from polku.storage.bulk import fetch_rows

__all__ = [
    "AGENTS",
    "AUTOMATION",
    "DEFAULT_CONFIG",
    "NOTIFY_CHANNEL",
    "ROUTED",
    "RoutingConfig",
    "Rule",
    "check_queue",
    "config_body",
    "config_of",
    "decide",
    "parse_config",
    "route",
]

AGENTS: Final = "agents"
AUTOMATION: Final = "automation"
STORE_PREFIX: Final = "store:"
ROUTED: Final = "polku.signals.routed"
"""Set in a connection's `info` when `route` wrote a signal; the live feed wakes on commit."""
NOTIFY_CHANNEL: Final = "polku_signals"
"""PostgreSQL: routing's ``NOTIFY`` when it wrote a signal, heard by the live feeds of
every API process when the transaction commits."""

_TARGETS: Final = ("store", AGENTS, AUTOMATION)
_QUEUE: Final = re.compile(r"(agents|automation|store:[A-Za-z0-9][A-Za-z0-9._-]{0,99})")
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_MAX_RULES: Final = 50
_STORE_TRAITS: Final = ("preferred_store",)


@dataclass(frozen=True, slots=True)
class Rule:
    """One routing rule: which candidates (all conditions must hold) go to which queue."""

    name: str
    to: str  # "store" (the store chosen for the person), "agents", "automation", "store:<id>"
    kinds: tuple[str, ...] | None = None  # None: any kind
    min_score: float = 0.0
    channels: tuple[str, ...] | None = None  # None: any channel (or none)
    min_cart_value: float | None = None
    fallback: str | None = AGENTS  # for "store": where it goes when no store is open (or soon)

    def matches(self, candidate: Candidate) -> bool:
        if self.kinds is not None and candidate.kind not in self.kinds:
            return False
        if candidate.score < self.min_score:
            return False
        if self.channels is not None and candidate.channel not in self.channels:
            return False
        if self.min_cart_value is not None:
            value = cart_value(candidate)
            if value is None or value < self.min_cart_value:
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "to": self.to, "min_score": self.min_score}
        if self.kinds is not None:
            body["kinds"] = list(self.kinds)
        if self.channels is not None:
            body["channels"] = list(self.channels)
        if self.min_cart_value is not None:
            body["min_cart_value"] = self.min_cart_value
        if self.to == "store":
            body["fallback"] = self.fallback
        return body


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """A workspace's routing: its rules, and the times routing and suppression use."""

    rules: tuple[Rule, ...]
    opens_within_minutes: int = 60  # a closed store that opens this soon still gets it
    hold_hours: float = 24.0  # suppression lasts this long after a claim ends
    conversion_days: int = 7  # an order this soon after a signal is its conversion
    defaults: bool = field(default=False, compare=False)  # not stored: the built-in default


DEFAULT_CONFIG: Final = RoutingConfig(
    rules=(
        Rule("store_staff", "store", min_score=0.6),
        Rule(
            "high_value_online",
            AGENTS,
            min_score=0.7,
            channels=("web", "app"),
            min_cart_value=150.0,
        ),
        Rule("journeys", AUTOMATION),
    ),
    defaults=True,
)


def cart_value(candidate: Candidate) -> float | None:
    """The cart value scoring saw (``details["cart_value"]``), if it is a number."""
    value = candidate.details.get("cart_value")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# -- the config: parse, validate, store ------------------------------------------------------


def check_queue(value: object, name: str = "queue") -> str:
    """`value` if it names a queue, else `InvalidField` saying what queues look like."""
    if not isinstance(value, str) or _QUEUE.fullmatch(value) is None:
        raise InvalidField(
            f"{str(value)[:120]!r} is not a queue.",
            field=name,
            code="invalid_queue",
            hint="Queues are `agents`, `automation` or `store:<location_id>` "
            "(e.g. store:hki-kamppi).",
            params={"queue": str(value)[:120]},
        )
    return value


def _strings(value: object, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > 100:
        raise InvalidField(
            f"{name} must be a list of 1 to 100 strings, or left out for any.", field=name
        )
    for i, item in enumerate(value):
        if not isinstance(item, str) or not 0 < len(item) <= 100:
            raise InvalidField(f"{name}[{i}] must be a string of 1 to 100 characters.", field=name)
    return tuple(value)


def _number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidField(f"{name} must be a number from {low:g} to {high:g}.", field=name)
    return float(value)


def _rule(value: object, name: str) -> Rule:
    if not isinstance(value, dict):
        raise InvalidField(f"{name} must be an object.", field=name)
    known = {"name", "to", "kinds", "min_score", "channels", "min_cart_value", "fallback"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidField(
            f"{name} has an unknown key {unknown[0]!r}.",
            field=f"{name}.{unknown[0]}",
            hint="A rule has: " + ", ".join(sorted(known)) + ".",
        )
    rule_name = value.get("name")
    if not isinstance(rule_name, str) or _NAME.fullmatch(rule_name) is None:
        raise InvalidField(
            f"{name}.name must be a lower-case name (letters, digits, _ . -), e.g. store_staff.",
            field=f"{name}.name",
        )
    to = value.get("to")
    if to not in _TARGETS:
        to = check_queue(to, f"{name}.to") if isinstance(to, str) and ":" in to else None
    if to is None:
        raise InvalidField(
            f"{name}.to must be `store`, `agents`, `automation` or `store:<location_id>`.",
            field=f"{name}.to",
            code="invalid_queue",
        )
    fallback = value.get("fallback", AGENTS)
    if fallback is not None:
        fallback = check_queue(fallback, f"{name}.fallback")
    cart = value.get("min_cart_value")
    return Rule(
        name=rule_name,
        to=to,
        kinds=_strings(value.get("kinds"), f"{name}.kinds"),
        min_score=_number(value.get("min_score", 0.0), f"{name}.min_score", 0.0, 1.0),
        channels=_strings(value.get("channels"), f"{name}.channels"),
        min_cart_value=None if cart is None else _number(cart, f"{name}.min_cart_value", 0, 1e12),
        fallback=fallback,
    )


def parse_config(value: object) -> RoutingConfig:
    """A routing config from its JSON form (see docs/signals.md); `InvalidField` naming the
    field for anything wrong."""
    if not isinstance(value, dict):
        raise InvalidField("The routing config must be a JSON object.", field="rules")
    known = {"rules", "opens_within_minutes", "hold_hours", "conversion_days"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidField(
            f"Unknown key {unknown[0]!r} in the routing config.",
            field=unknown[0],
            hint="The config has: " + ", ".join(sorted(known)) + ".",
        )
    raw = value.get("rules")
    if not isinstance(raw, list) or not 0 < len(raw) <= _MAX_RULES:
        raise InvalidField(
            f"rules must be a list of 1 to {_MAX_RULES} rules.",
            field="rules",
            hint="GET /v1/signals/routing shows the current rules to start from.",
        )
    rules = tuple(_rule(item, f"rules[{i}]") for i, item in enumerate(raw))
    names = [rule.name for rule in rules]
    for i, rule_name in enumerate(names):
        if rule_name in names[:i]:
            raise InvalidField(
                f"Two rules are named {rule_name!r}.",
                field=f"rules[{i}].name",
                code="duplicate_rule",
            )
    return RoutingConfig(
        rules=rules,
        opens_within_minutes=int(
            _number(value.get("opens_within_minutes", 60), "opens_within_minutes", 0, 10_080)
        ),
        hold_hours=_number(value.get("hold_hours", 24), "hold_hours", 0, 24 * 90),
        conversion_days=int(_number(value.get("conversion_days", 7), "conversion_days", 1, 365)),
    )


def config_body(config: RoutingConfig) -> dict[str, Any]:
    """The JSON form `parse_config` reads back."""
    return {
        "rules": [rule.as_dict() for rule in config.rules],
        "opens_within_minutes": config.opens_within_minutes,
        "hold_hours": config.hold_hours,
        "conversion_days": config.conversion_days,
    }


def config_of(conn: Connection, workspace_id: str) -> RoutingConfig:
    """The workspace's stored routing config, or `DEFAULT_CONFIG`."""
    found = fetch_rows(
        conn,
        f"SELECT config FROM {routing_configs.name} WHERE workspace_id = ?",
        (workspace_id,),
    )
    if not found:
        return DEFAULT_CONFIG
    return parse_config(orjson.loads(found[0][0]))


# -- deciding --------------------------------------------------------------------------------


@functools.cache
def _identity() -> IdentityConfig:
    return IdentityConfig()


def _traits(
    conn: Connection, workspace_id: str, profile_id: str
) -> tuple[str | None, dict[str, Any], bool]:
    """The profile holding `profile_id` now, its traits, and whether that profile has a row
    of its own that is merged into no other; (None, {}, False) for no profile."""
    holder = resolve(conn, workspace_id, profile_id)
    if holder is None:
        return None, {}, False
    found = fetch_rows(
        conn,
        "SELECT traits, merged_into FROM profiles WHERE workspace_id = ? AND profile_id = ?",
        (workspace_id, holder),
    )
    raw = found[0][0] if found else None
    traits = orjson.loads(raw) if raw else {}
    return holder, traits if isinstance(traits, dict) else {}, bool(found) and found[0][1] is None


# What the inferred preferred store is made of (`polku.commerce.orders.preferences`): the
# person's orders (events that place one) and their store visits and click-and-collect
# reservations. A person with none of these infers no store.
_STORE_HISTORY: Final = tuple(
    sorted(PLACING_EVENTS | {"Click and Collect Reserved", "Store Visited"})
)
_HAS_STORE_HISTORY: Final = (
    "SELECT 1 FROM identity_event_profiles WHERE profile_id = ? AND workspace_id = ? "
    f"AND event IN ({', '.join('?' * len(_STORE_HISTORY))}) LIMIT 1"
)


def _preferred_store(
    conn: Connection, workspace_id: str, holder: str, traits: Mapping[str, Any], own_row: bool
) -> str | None:
    """`preferred_store` of `holder`, whose traits are `traits`: without its reads (the
    whole profile, the orders, the visits) when the person has no store history at all,
    which is most people a signal is raised for (a first visit online); the answer is then
    the stated store, as `preferred_store` would give it."""
    if not own_row or fetch_rows(conn, _HAS_STORE_HISTORY, (holder, workspace_id, *_STORE_HISTORY)):
        return preferred_store(conn, workspace_id, holder, _identity())
    value = traits.get(STATED_TRAITS["store"])
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        return None
    return str(value).strip()


def _point(traits: Mapping[str, Any]) -> tuple[float, float] | None:
    lat, lon = traits.get("latitude"), traits.get("longitude")
    if (
        isinstance(lat, (int, float))
        and isinstance(lon, (int, float))
        and not isinstance(lat, bool)
        and not isinstance(lon, bool)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
    ):
        return float(lat), float(lon)
    code = traits.get("postal_code")
    address = traits.get("address")
    if code is None and isinstance(address, dict):
        code = address.get("postal_code") or address.get("postalCode")
    if isinstance(code, (str, int)) and not isinstance(code, bool):
        return locate_postal_code(str(code))
    return None


def _store_of(conn: Connection, candidate: Candidate) -> str | None:
    """The store for the person behind `candidate` (see the module doc), or None."""
    ws = candidate.workspace_id
    if candidate.store_id is not None:
        found = get_location(conn, ws, candidate.store_id)
        if found is not None and found.active and found.kind == "store":
            return found.location_id
    holder, traits, own_row = _traits(conn, ws, candidate.profile_id)
    for trait in _STORE_TRAITS:
        value = traits.get(trait)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            found = get_location(conn, ws, str(value))
            if found is not None and found.active:
                return found.location_id
    inferred = None if holder is None else _preferred_store(conn, ws, holder, traits, own_row)
    if inferred is not None:
        found = get_location(conn, ws, inferred)
        if found is not None and found.active:
            return found.location_id
    point = _point(traits)
    if point is None:
        return None
    near = nearest(conn, ws, point[0], point[1], k=1, click_and_collect=True)
    return near[0].location.location_id if near else None


def _open_soon(conn: Connection, candidate: Candidate, store: str, minutes: int) -> bool:
    at = datetime.fromtimestamp(candidate.at_ms / 1000, UTC)
    status = opening_statuses(conn, candidate.workspace_id, [store], at).get(store)
    if status is None:
        return False
    if status.open_now:
        return True
    return status.next_opening is not None and status.next_opening - at <= timedelta(
        minutes=minutes
    )


def decide(
    conn: Connection, candidate: Candidate, config: RoutingConfig
) -> tuple[list[tuple[str, str]], str | None]:
    """The (queue, rule) pairs `candidate` goes to, in rule order and each queue once, and
    the store chosen for it (None when no store rule matched or none was found)."""
    chosen: list[tuple[str, str]] = []
    store: str | None = None
    looked = False
    for rule in config.rules:
        if not rule.matches(candidate):
            continue
        queue: str | None = rule.to
        if rule.to == "store":
            if not looked:
                looked = True
                store = _store_of(conn, candidate)
                if store is not None and not _open_soon(
                    conn, candidate, store, config.opens_within_minutes
                ):
                    store = None
            queue = STORE_PREFIX + store if store is not None else rule.fallback
        if queue is not None and all(queue != q for q, _ in chosen):
            chosen.append((queue, rule.name))
    return chosen, store


# -- writing ---------------------------------------------------------------------------------


def _endpoints(conn: Connection, workspace_id: str) -> list[tuple[str, frozenset[str]]]:
    rows = fetch_rows(
        conn,
        f"SELECT endpoint_id, queues FROM {webhooks.name} WHERE workspace_id = ? AND active = ?",
        (workspace_id, True),
    )
    return [(row[0], frozenset(orjson.loads(row[1]))) for row in rows]


_INSERT_SIGNAL: Final = (
    "INSERT INTO signals (workspace_id, profile_id, kind, score, products, channel, "
    'session_id, reasons, details, event_id, "offset", at, dedupe_key, status, created_at) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (workspace_id, dedupe_key) DO NOTHING RETURNING id"
)


def route(conn: Connection, candidates: Sequence[Candidate], *, to: str | None = None) -> None:
    """Turn `candidates` into signals on queues, in `conn`'s transaction; idempotent on
    `Candidate.dedupe_key` (see the module doc). Webhook deliveries are queued as due rows
    in the same transaction; the delivery chore sends them after the commit.

    `to` skips the routing rules and puts every candidate on one queue (``agents``), or with
    ``store`` on the person's store's queue (agents when they have none): a journey's alert
    step names its queue itself."""
    if not candidates:
        return
    now = int(time.time() * 1000)
    configs: dict[str, RoutingConfig] = {}
    hooks: dict[str, list[tuple[str, frozenset[str]]]] = {}
    wrote = False
    for candidate in candidates:
        ws = candidate.workspace_id
        config = configs.get(ws)
        if config is None:
            config = configs[ws] = config_of(conn, ws)
        inserted = fetch_rows(
            conn,
            _INSERT_SIGNAL,
            (
                ws,
                candidate.profile_id,
                candidate.kind,
                float(candidate.score),
                orjson.dumps(list(candidate.products)).decode(),
                candidate.channel,
                candidate.session_id,
                orjson.dumps(
                    [
                        {"code": r.code, "en": r.en, "fi": r.fi, "weight": r.weight}
                        for r in candidate.reasons
                    ]
                ).decode(),
                orjson.dumps(candidate.details, default=str).decode(),
                candidate.event_id,
                candidate.offset,
                candidate.at_ms,
                candidate.dedupe_key,
                "open",
                now,
            ),
        )
        if not inserted:
            continue  # routed before: a redelivery, a replay, or another worker
        signal_id = int(inserted[0][0])
        wrote = True
        if to is None:
            queues, store = decide(conn, candidate, config)
        elif to == "store":
            store = _store_of(conn, candidate)
            queues = [(STORE_PREFIX + store if store else "agents", "journey")]
        else:
            queues, store = [(to, "journey")], None
        if store is not None:
            conn.execute(signals.update().where(signals.c.id == signal_id).values(store_id=store))
        if queues:
            conn.execute(
                routes.insert(),
                [
                    {"workspace_id": ws, "signal_id": signal_id, "queue": q, "rule": rule}
                    for q, rule in queues
                ],
            )
        endpoints = hooks.get(ws)
        if endpoints is None:
            endpoints = hooks[ws] = _endpoints(conn, ws)
        names = {q for q, _ in queues}
        due = [e for e, wanted in endpoints if not wanted or wanted & names]
        if due:
            conn.execute(
                deliveries.insert(),
                [
                    {
                        "workspace_id": ws,
                        "endpoint_id": endpoint,
                        "signal_id": signal_id,
                        "status": "pending",
                        "attempts": 0,
                        "due_at": now,
                        "created_at": now,
                    }
                    for endpoint in due
                ],
            )
    if wrote:
        conn.info[ROUTED] = True
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
