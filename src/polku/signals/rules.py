"""Declarative buying-signal rules, read from YAML, evaluated on each event's features.

A rule file holds a list of rules; Polku ships `rules/default.yaml`. Each rule is one of:

* **feature**: `when` compares `Snapshot` features (``product_views_7d: {at_least: 3}``),
  optionally only on some `events`;
* **near_store**: the person checked a store's stock (or reserved there) and lives within
  `within_km` of it (their `postal_code` trait's area, or the store is their preferred one);
* **idle_cart**: the open cart is worth at least `min_value` and nothing happened to it for
  `minutes` (event time: the consumer keeps a due time per cart and fires it when later
  events of the workspace pass it);
* **model**: the purchase-intent model's calibrated probability reaches `threshold` (its
  kind is always `MODEL_KIND`).

Each rule has a `score` (0..1; the model's is its probability), reasons in English and
Finnish (templates over the features, ``{product}``, ``{store}``, ``{distance_km}``...), and:

* **hysteresis**: once a rule fired for a person (and product), it fires again only after
  its level fell below `rearm_below` (a feature rule's level is value / threshold, the
  model's its probability, a near-store rule's 1 within the radius and 0 beyond);
* **de-duplication**: `window` (``30m``, ``1d``, ``7d``) makes the candidate's
  `dedupe_key` one per kind, person, product and window, which routing stores once.

`load_rules` checks everything up front and raises `InvalidRule` naming the rule, the field
and what to write instead.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from polku.commerce.locations.geo import distance_km, locate_postal_code
from polku.errors import InvalidRule
from polku.signals.candidates import MODEL_KIND, Candidate, Reason
from polku.signals.features import Snapshot

__all__ = [
    "CART_EVENTS",
    "DEFAULT_RULES",
    "Fired",
    "Memory",
    "Places",
    "Rule",
    "RuleBook",
    "Timer",
    "candidate",
    "load_rules",
    "parse_rules",
]

DEFAULT_RULES: Final = "default.yaml"
CART_EVENTS: Final = frozenset(
    {
        "Product Added",
        "Product Removed",
        "Checkout Started",
        "Order Completed",
        "POS Order Completed",
    }
)
_KINDS: Final = ("feature", "near_store", "idle_cart", "model")
_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_WINDOW: Final = re.compile(r"(\d+)\s*(m|h|d)")
_UNITS_MS: Final = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
_OPERATORS: Final = ("at_least", "at_most", "equals")
_MEMORY_MS: Final = 30 * 86_400_000  # a disarmed rule is forgotten after 30 days
_SNAPSHOT_FIELDS: Final = {f.name: f.type for f in fields(Snapshot)}
_NUMERIC: Final = frozenset(
    name
    for name, kind in _SNAPSHOT_FIELDS.items()
    if str(kind) in ("int", "float", "bool", "float | None")
)
_EXTRA_PLACEHOLDERS: Final = frozenset(
    {"product", "store", "distance_km", "idle_minutes", "probability", "cart_value_eur"}
)

Memory = dict[str, int]
"""A person's disarmed rules: ``"<rule>|<product>"`` -> when it fired (ms)."""


class Places:
    """Where stores are, for near-store rules: (latitude, longitude) per store id, and
    their names for the reasons ("at Tampere Ratina", not "at store-tre-ratina")."""

    def __init__(
        self,
        stores: Mapping[str, tuple[float, float]] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.stores = dict(stores or {})
        self.names = dict(names or {})

    def store_point(self, store_id: str) -> tuple[float, float] | None:
        return self.stores.get(store_id)

    def store_name(self, store_id: str) -> str:
        return self.names.get(store_id) or store_id


@dataclass(frozen=True, slots=True)
class Condition:
    feature: str
    operator: str
    value: float


@dataclass(frozen=True, slots=True)
class Rule:
    """One checked rule (see the module doc)."""

    name: str
    kind: str  # one of _KINDS
    score: float
    rearm_below: float
    window_ms: int
    en: str
    fi: str
    on: frozenset[str] = frozenset()  # events that evaluate it; empty: all
    when: tuple[Condition, ...] = ()
    within_km: float = 10.0
    idle_ms: int = 30 * 60_000
    min_value: float = 0.0
    threshold: float = 0.5


@dataclass(frozen=True, slots=True)
class Fired:
    """A rule that fired on an event (or a due idle timer), before it becomes a Candidate."""

    rule: Rule
    score: float
    at_ms: int
    products: tuple[str, ...]
    store_id: str | None
    reasons: tuple[Reason, ...]
    details: dict[str, object]


@dataclass(frozen=True, slots=True)
class Timer:
    """An idle-cart rule's due time for one person's open cart."""

    rule: str
    due_ms: int
    products: tuple[str, ...]
    cart_value: float
    cart_items: int


# -- reading -------------------------------------------------------------------------------


def _fail(rule: str, where: str, problem: str, hint: str) -> InvalidRule:
    return InvalidRule(f"Rule {rule!r}, field {where!r}: {problem}", field=where, hint=hint)


def _number(value: Any, rule: str, where: str, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(rule, where, f"expected a number, got {value!r}", f"Write e.g. `{where}: 3`.")
    if value < low or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        raise _fail(rule, where, f"{value!r} is out of range", f"Use a number {span}.")
    return float(value)


def _window(value: Any, rule: str) -> int:
    match = _WINDOW.fullmatch(str(value).strip()) if isinstance(value, (str, int)) else None
    if match is None or int(match.group(1)) == 0:
        raise _fail(
            rule,
            "window",
            f"{value!r} is not a duration",
            "Write minutes, hours or days, e.g. `window: 30m`, `12h` or `7d`.",
        )
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def _template(value: Any, rule: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(rule, where, "a reason must be a text", f"Write e.g. `{where}: Viewed it`.")
    for _, name, _, _ in string.Formatter().parse(value):
        if name is not None and name not in _SNAPSHOT_FIELDS and name not in _EXTRA_PLACEHOLDERS:
            raise _fail(
                rule,
                where,
                f"unknown placeholder {{{name}}}",
                "Use a feature name (e.g. {product_views_7d}) or one of "
                + ", ".join(f"{{{p}}}" for p in sorted(_EXTRA_PLACEHOLDERS))
                + ".",
            )
    return value


def _rule(raw: Any, index: int, seen: set[str]) -> Rule:
    if not isinstance(raw, Mapping):
        raise InvalidRule(
            f"Rule number {index + 1} is not a mapping.",
            field=f"rules[{index}]",
            hint="Each rule is a mapping with at least `name` and `reason`.",
        )
    kinds = [k for k in ("when", "near_store", "idle_cart", "model") if k in raw]
    name = raw.get("name", MODEL_KIND if kinds == ["model"] else None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRule(
            f"Rule number {index + 1} has no valid name ({name!r}).",
            field=f"rules[{index}].name",
            hint="Name it in lower case with underscores, e.g. `name: repeat_product_views`.",
        )
    if name in seen:
        raise _fail(name, "name", "two rules have this name", "Give each rule its own name.")
    seen.add(name)
    known = {"name", "events", "score", "rearm_below", "window", "reason", *_KINDS, "when"}
    for key in raw:
        if key not in known:
            raise _fail(
                name,
                str(key),
                "unknown field" + (" (YAML reads a bare `on` as true)" if key is True else ""),
                "Rules take " + ", ".join(sorted(known - {"feature"})) + ".",
            )
    if len(kinds) != 1:
        raise _fail(
            name,
            "when",
            "a rule needs exactly one of `when`, `near_store`, `idle_cart` or `model`"
            + (f" (it has {', '.join(kinds)})" if kinds else ""),
            "Keep the one that says when the rule fires.",
        )
    kind = "feature" if kinds[0] == "when" else kinds[0]
    if kind == "model" and name != MODEL_KIND:
        raise _fail(
            name,
            "name",
            f"the model's rule raises signals of kind {MODEL_KIND!r}",
            f"Name it `{MODEL_KIND}` or leave the name out.",
        )
    reason = raw.get("reason")
    if kind != "model" or reason is not None:
        if not isinstance(reason, Mapping) or set(reason) != {"en", "fi"}:
            raise _fail(
                name,
                "reason",
                "a rule needs its reason in English and Finnish",
                "Write `reason: {en: ..., fi: ...}`.",
            )
        en, fi = (
            _template(reason["en"], name, "reason.en"),
            _template(reason["fi"], name, "reason.fi"),
        )
    else:
        en = "Likely to buy now ({probability})"
        fi = "Todennäköisesti ostamassa nyt ({probability})"
    on = raw.get("events", [])
    if isinstance(on, str):
        on = [on]
    if not isinstance(on, list) or not all(isinstance(e, str) and e for e in on):
        raise _fail(
            name, "events", "expected a list of event names", "Write `events: [Product Viewed]`."
        )
    settings: dict[str, Any] = {}
    body = raw[kinds[0]]
    if kind == "feature":
        settings["when"] = _conditions(body, name)
    elif kind == "near_store":
        body = _mapping(body, name, "near_store", "near_store: {within_km: 10}")
        settings["within_km"] = _number(
            body.get("within_km", 10), name, "near_store.within_km", 0.1, 500
        )
        on = on or ["Store Stock Checked", "Click and Collect Reserved"]
    elif kind == "idle_cart":
        body = _mapping(body, name, "idle_cart", "idle_cart: {minutes: 30, min_value: 150}")
        minutes = _number(body.get("minutes", 30), name, "idle_cart.minutes", 1, 7 * 24 * 60)
        settings["idle_ms"] = int(minutes * 60_000)
        settings["min_value"] = _number(
            body.get("min_value", 0), name, "idle_cart.min_value", 0, None
        )
    else:
        body = _mapping(body, name, "model", "model: {threshold: 0.6}")
        settings["threshold"] = _number(
            body.get("threshold", 0.5), name, "model.threshold", 0.01, 1
        )
    score = _number(raw.get("score", 0.7), name, "score", 0, 1)
    rearm = _number(raw.get("rearm_below", 0.5), name, "rearm_below", 0, 1)
    if kind == "model" and rearm >= settings["threshold"]:
        raise _fail(
            name,
            "rearm_below",
            f"{rearm:g} is not below the threshold {settings['threshold']:g}",
            "Re-arm below the threshold, e.g. `threshold: 0.6` and `rearm_below: 0.4`.",
        )
    return Rule(
        name=name,
        kind=kind,
        score=score,
        rearm_below=rearm,
        window_ms=_window(raw.get("window", "1d"), name),
        en=en,
        fi=fi,
        on=frozenset(on),
        **settings,
    )


def _mapping(body: Any, rule: str, where: str, example: str) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise _fail(rule, where, f"expected a mapping, got {body!r}", f"Write `{example}`.")
    return body


def _conditions(body: Any, rule: str) -> tuple[Condition, ...]:
    body = _mapping(body, rule, "when", "when: {product_views_7d: {at_least: 3}}")
    if not body:
        raise _fail(
            rule, "when", "no condition", "Write `when: {product_views_7d: {at_least: 3}}`."
        )
    found: list[Condition] = []
    for feature, test in body.items():
        where = f"when.{feature}"
        if feature not in _NUMERIC:
            raise _fail(
                rule,
                where,
                f"{feature!r} is not a numeric feature",
                "Use one of " + ", ".join(sorted(_NUMERIC)) + ".",
            )
        test = _mapping(test, rule, where, f"{feature}: {{at_least: 3}}")
        if not test:
            raise _fail(rule, where, "no comparison", f"Write `{feature}: {{at_least: 3}}`.")
        for operator, value in test.items():
            if operator not in _OPERATORS:
                raise _fail(
                    rule,
                    f"{where}.{operator}",
                    "unknown comparison",
                    "Compare with " + ", ".join(_OPERATORS) + ".",
                )
            found.append(
                Condition(
                    str(feature),
                    str(operator),
                    _number(value, rule, f"{where}.{operator}", -1e12, None),
                )
            )
    return tuple(found)


def parse_rules(text: str, *, source: str = "rules") -> RuleBook:
    """The rules of a YAML document; `InvalidRule` says what is wrong and where."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidRule(
            f"{source} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.",
            field="rules",
            hint="Check the indentation and quote texts that contain a colon.",
        ) from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("rules"), list):
        raise InvalidRule(
            f"{source} has no list of rules.",
            field="rules",
            hint="Start the file with `rules:` and list the rules under it with `- name: ...`.",
        )
    seen: set[str] = set()
    return RuleBook(tuple(_rule(raw, i, seen) for i, raw in enumerate(document["rules"])))


def load_rules(path: Path | str | None = None) -> RuleBook:
    """The rules in the YAML file `path`, or Polku's defaults (`rules/default.yaml`)."""
    if path is None:
        text = resources.files("polku.signals").joinpath("rules", DEFAULT_RULES).read_text("utf-8")
        return parse_rules(text, source=DEFAULT_RULES)
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise InvalidRule(
            f"Cannot read the rules file {path}: {exc.strerror}.",
            field="rules",
            hint="Check the path (POLKU_SIGNAL_RULES) and that Polku may read the file.",
        ) from exc
    return parse_rules(text, source=str(path))


# -- evaluating ----------------------------------------------------------------------------


def _value(snapshot: Snapshot, feature: str) -> float | None:
    value = getattr(snapshot, feature)
    if value is None:
        return None
    return float(value)


def _level(rule: Rule, snapshot: Snapshot) -> tuple[bool, float]:
    """Whether a feature rule holds, and its level (min of value / threshold over `at_least`)."""
    holds = True
    level = 1.0
    for condition in rule.when:
        value = _value(snapshot, condition.feature)
        if value is None:
            return False, 0.0
        if condition.operator == "at_least":
            holds &= value >= condition.value
            if condition.value > 0:
                level = min(level, value / condition.value)
        elif condition.operator == "at_most":
            holds &= value <= condition.value
        else:
            holds &= value == condition.value
    return holds, (max(0.0, min(1.0, level)) if holds else min(level, 0.999))


def _words(template: str, values: Mapping[str, object]) -> str:
    return template.format_map(values)


class RuleBook:
    """The checked rules, and their evaluation on one person's snapshots."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.model = next((r for r in self.rules if r.kind == "model"), None)
        self.idle = tuple(r for r in self.rules if r.kind == "idle_cart")
        self._events = tuple(r for r in self.rules if r.kind in ("feature", "near_store"))

    def evaluate(
        self,
        snapshot: Snapshot,
        memory: Memory,
        places: Places,
        *,
        probability: float | None = None,
        model_reasons: Sequence[Reason] = (),
    ) -> list[Fired]:
        """The rules that fire on `snapshot` and are armed; `memory` (the person's) changes.

        `probability`: the model's calibrated probability for this event's session, if it
        was scored."""
        fired: list[Fired] = []
        for stale in [k for k, at in memory.items() if snapshot.at_ms - at > _MEMORY_MS]:
            del memory[stale]
        for rule in self._events:
            if rule.on and snapshot.event not in rule.on:
                continue
            extra: dict[str, object] = {}
            if snapshot.store_id:
                extra["store_name"] = places.store_name(snapshot.store_id)
            if rule.kind == "feature":
                holds, level = _level(rule, snapshot)
            else:
                distance = self._distance(snapshot, places)
                holds = distance is not None and distance <= rule.within_km
                level = 1.0 if holds else 0.0
                if distance is not None:
                    extra["distance_km"] = round(distance, 1)
            products: tuple[str, ...] = (snapshot.product_id,) if snapshot.product_id else ()
            hit = self._arm(rule, memory, snapshot.at_ms, products, holds, level)
            if hit:
                fired.append(self._fired(rule, rule.score, snapshot, products, extra))
        if self.model is not None and probability is not None:
            rule = self.model
            products = (snapshot.product_id,) if snapshot.product_id else snapshot.cart_products[:3]
            holds = probability >= rule.threshold
            if self._arm(rule, memory, snapshot.at_ms, (), holds, probability):  # per person
                extra = {"probability": round(probability, 3)}
                if snapshot.store_id:
                    extra["store_name"] = places.store_name(snapshot.store_id)
                fired.append(
                    self._fired(rule, probability, snapshot, products, extra, model_reasons)
                )
        return fired

    def _arm(
        self,
        rule: Rule,
        memory: Memory,
        at_ms: int,
        products: tuple[str, ...],
        holds: bool,
        level: float,
    ) -> bool:
        key = f"{rule.name}|{products[0] if products else ''}"
        if key in memory:
            if level < rule.rearm_below:
                del memory[key]
            return False
        if holds:
            memory[key] = at_ms
            return True
        return False

    def _distance(self, snapshot: Snapshot, places: Places) -> float | None:
        store = snapshot.store_id
        if store is None:
            return None
        if snapshot.preferred_store == store:
            return 0.0
        if snapshot.postal_code is None:
            return None
        home = locate_postal_code(snapshot.postal_code)
        point = places.store_point(store)
        if home is None or point is None:
            return None
        return distance_km(home[0], home[1], point[0], point[1])

    def _fired(
        self,
        rule: Rule,
        score: float,
        snapshot: Snapshot,
        products: tuple[str, ...],
        extra: dict[str, object],
        reasons: Sequence[Reason] = (),
    ) -> Fired:
        values = _placeholders(snapshot, extra)
        own = Reason(rule.name, _words(rule.en, values), _words(rule.fi, values), 1.0)
        return Fired(
            rule=rule,
            score=round(score, 4),
            at_ms=snapshot.at_ms,
            products=products,
            store_id=snapshot.store_id,
            reasons=(own, *reasons) if rule.kind != "model" or not reasons else tuple(reasons),
            details=_details(snapshot, extra),
        )

    # -- idle carts ---------------------------------------------------------------------

    def timers(self, snapshot: Snapshot) -> list[tuple[str, Timer | None]]:
        """For an event that changed the cart: each idle rule's new due time (None: the
        cart is no longer worth watching, cancel it)."""
        found: list[tuple[str, Timer | None]] = []
        for rule in self.idle:
            if snapshot.cart_items > 0 and snapshot.cart_value >= rule.min_value:
                timer = Timer(
                    rule.name,
                    snapshot.cart_last_ms + rule.idle_ms,
                    snapshot.cart_products,
                    snapshot.cart_value,
                    snapshot.cart_items,
                )
                found.append((rule.name, timer))
            else:
                found.append((rule.name, None))
        return found

    def fire_idle(self, timer: Timer) -> Fired | None:
        """The signal of an idle-cart timer that came due (None: its rule is gone)."""
        rule = next((r for r in self.idle if r.name == timer.rule), None)
        if rule is None:
            return None
        values: dict[str, object] = {
            "product": timer.products[0] if timer.products else "",
            "store": "",
            "distance_km": "",
            "probability": "",
            "idle_minutes": rule.idle_ms // 60_000,
            "cart_value": round(timer.cart_value, 2),
            "cart_value_eur": f"{timer.cart_value:.2f} €",
            "cart_items": timer.cart_items,
        }
        values = _Defaulting(values)
        return Fired(
            rule=rule,
            score=rule.score,
            at_ms=timer.due_ms,
            products=timer.products[:3],
            store_id=None,
            reasons=(Reason(rule.name, _words(rule.en, values), _words(rule.fi, values), 1.0),),
            details={"cart_value": round(timer.cart_value, 2), "cart_items": timer.cart_items},
        )


class _Defaulting(dict[str, object]):
    def __missing__(self, key: str) -> object:
        return ""


def _placeholders(snapshot: Snapshot, extra: Mapping[str, object]) -> Mapping[str, object]:
    values = _Defaulting({f: getattr(snapshot, f) for f in _SNAPSHOT_FIELDS})
    values["product"] = snapshot.product_name or snapshot.product_id or ""
    values["store"] = extra.get("store_name") or snapshot.store_id or ""
    values["cart_value_eur"] = f"{snapshot.cart_value:.2f} €"
    values["idle_minutes"] = ""
    values["distance_km"] = extra.get("distance_km", "")
    probability = extra.get("probability")
    values["probability"] = f"{probability:.0%}" if isinstance(probability, float) else ""
    return values


def _details(snapshot: Snapshot, extra: Mapping[str, object]) -> dict[str, object]:
    details: dict[str, object] = {
        "cart_value": round(snapshot.cart_value, 2),
        "product_views_7d": snapshot.product_views_7d,
        "session_views": snapshot.views,
        **extra,
    }
    if snapshot.hop:
        details["hop"] = snapshot.hop
    return details


def candidate(
    fired: Fired,
    *,
    workspace_id: str,
    profile_id: str,
    event_id: str,
    offset: int,
    channel: str | None = None,
    session_id: str | None = None,
) -> Candidate:
    """The candidate of a fired rule: its `dedupe_key` is one per kind, person, product and
    window of the rule (windows counted from the epoch, in event time)."""
    rule = fired.rule
    product = fired.products[0] if fired.products else "-"
    window = fired.at_ms // rule.window_ms
    return Candidate(
        workspace_id=workspace_id,
        profile_id=profile_id,
        kind=rule.name,
        score=fired.score,
        event_id=event_id,
        offset=offset,
        at_ms=fired.at_ms,
        dedupe_key=f"{rule.name}:{profile_id}:{product}:{rule.window_ms // 60_000}m:{window}",
        products=fired.products,
        store_id=fired.store_id,
        channel=channel,
        session_id=session_id,
        reasons=fired.reasons,
        details=fired.details,
    )
