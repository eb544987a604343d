"""Conditions over what Polku knows of a person: `{field, op, value}`, all of a list, or any.

Journeys use them for trigger filters (`where`), branches (`if`), exits, goals and waits for
an event. A `field` is a dotted path whose first part names where to look (`ROOTS`): the
event, the profile, the cart, the signal, or the person's event counts. The evaluator reads
those through `Facts`, which loads each part only when a condition asks for it, and reports
the value each condition saw, so the decision trace can say *why* a branch went one way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from polku.errors import InvalidJourney

__all__ = [
    "OPS",
    "ROOTS",
    "AnyOf",
    "Condition",
    "Facts",
    "Test",
    "evaluate",
    "parse_conditions",
    "parse_duration",
]

ROOTS: Final = ("event", "profile", "cart", "signal", "counts")
OPS: Final = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "exists",
    "not_exists",
)
_UNARY: Final = frozenset({"exists", "not_exists"})
_NUMERIC: Final = frozenset({"gt", "gte", "lt", "lte"})
_ALIASES: Final = {
    "==": "eq",
    "!=": "ne",
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_MS: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any = None

    @property
    def root(self) -> str:
        return self.field.partition(".")[0]


@dataclass(frozen=True, slots=True)
class AnyOf:
    tests: tuple[Test, ...]


Test: TypeAlias = Condition | AnyOf


class Facts:
    """What conditions may read about one person at one moment, each root loaded once and
    only when asked for (`loaders`: root -> function returning its mapping, or None)."""

    def __init__(
        self, loaders: Mapping[str, Callable[[], Any]], known: Mapping[str, Any] | None = None
    ) -> None:
        self._loaders = loaders
        self._known: dict[str, Any] = dict(known or {})

    def root(self, name: str) -> Any:
        if name not in self._known:
            loader = self._loaders.get(name)
            self._known[name] = loader() if loader is not None else None
        return self._known[name]

    def lookup(self, path: str) -> Any:
        root, _, rest = path.partition(".")
        value = self.root(root)
        if not rest:
            return value
        if root == "counts":  # event names hold spaces and dots of their own
            return (value or {}).get(rest, 0)
        for part in rest.split("."):
            if isinstance(value, Mapping):
                value = value.get(part)
            elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
                index = int(part)
                value = value[index] if index < len(value) else None
            else:
                return None
        return value


def parse_duration(raw: Any, where: str) -> int:
    """`30m`, `1h`, `2d`, `1w`, `45s`, or a number of seconds, as milliseconds."""
    if isinstance(raw, bool):
        raw = None
    if isinstance(raw, int | float) and raw >= 0:
        return int(raw * 1000)
    if isinstance(raw, str):
        found = _DURATION.match(raw)
        if found:
            return int(float(found.group(1)) * _UNIT_MS[found.group(2)])
    raise InvalidJourney(
        f"{where}: {raw!r} is not a duration.",
        field=where,
        hint="Write a number with a unit: 45s, 30m, 1h, 2d or 1w (or seconds as a number).",
        message_id="jd_bad_duration",
        params={"where": where, "value": repr(raw)},
    )


def parse_conditions(raw: Any, where: str) -> tuple[Test, ...]:
    """A condition, a list of them (all must hold) or `{any: [...]}`, checked."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping) and "any" not in raw:
        raw = [raw]
    if isinstance(raw, Mapping):
        return (_test(raw, where),)
    if not isinstance(raw, list):
        raise InvalidJourney(
            f"{where} must be a list of conditions.",
            field=where,
            hint="Write - {field: cart.value, op: gt, value: 0} (one per line).",
            message_id="jd_conditions_not_list",
            params={"where": where},
        )
    return tuple(_test(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _test(raw: Any, where: str) -> Test:
    if not isinstance(raw, Mapping):
        raise InvalidJourney(
            f"{where} is not a condition.",
            field=where,
            hint="Write {field: <path>, op: <op>, value: <value>}, or {any: [...]}.",
            message_id="jd_not_a_condition",
            params={"where": where},
        )
    if "any" in raw:
        inner = raw["any"]
        if set(raw) != {"any"} or not isinstance(inner, list) or not inner:
            raise InvalidJourney(
                f"{where}.any must be the only key, with a non-empty list of conditions.",
                field=f"{where}.any",
                hint="Write {any: [{field: ..., op: ..., value: ...}, ...]}.",
                message_id="jd_bad_any",
                params={"where": where},
            )
        return AnyOf(tuple(_test(item, f"{where}.any[{i}]") for i, item in enumerate(inner)))
    unknown = set(raw) - {"field", "op", "value"}
    if unknown:
        raise InvalidJourney(
            f"{where} has unknown keys: {', '.join(sorted(map(str, unknown)))}.",
            field=f"{where}.{sorted(map(str, unknown))[0]}",
            hint="A condition has field, op and value.",
            message_id="jd_condition_unknown_keys",
            params={"where": where, "keys": ", ".join(sorted(map(str, unknown)))},
        )
    field = raw.get("field")
    if not isinstance(field, str) or field.partition(".")[0] not in ROOTS:
        raise InvalidJourney(
            f"{where}.field {field!r} does not say where to look.",
            field=f"{where}.field",
            hint=f"Start the path with one of {', '.join(ROOTS)}: event.properties.total, "
            "profile.traits.city, cart.value, counts.Order Completed.",
            message_id="jd_bad_condition_field",
            params={"where": where, "path": repr(field), "roots": ", ".join(ROOTS)},
        )
    op = raw.get("op", "eq")
    op = _ALIASES.get(op, op) if isinstance(op, str) else op
    if op not in OPS:
        raise InvalidJourney(
            f"{where}.op {op!r} is not an operator.",
            field=f"{where}.op",
            hint=f"Use one of {', '.join(OPS)}.",
            message_id="jd_bad_op",
            params={"where": where, "op": repr(op), "ops": ", ".join(OPS)},
        )
    value = raw.get("value")
    if op in _UNARY:
        if "value" in raw:
            raise InvalidJourney(
                f"{where}: {op} takes no value.",
                field=f"{where}.value",
                hint="Remove value.",
                message_id="jd_op_takes_no_value",
                params={"where": where, "op": op},
            )
    elif "value" not in raw:
        raise InvalidJourney(
            f"{where}: {op} needs a value.",
            field=f"{where}.value",
            hint="Add value: <what to compare with>.",
            message_id="jd_op_needs_value",
            params={"where": where, "op": op},
        )
    if op in _NUMERIC and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidJourney(
            f"{where}: {op} compares numbers, not {value!r}.",
            field=f"{where}.value",
            hint="Give a number, e.g. value: 50.",
            message_id="jd_op_needs_number",
            params={"where": where, "op": op, "value": repr(value)},
        )
    if op in ("in", "not_in") and not isinstance(value, list):
        raise InvalidJourney(
            f"{where}: {op} needs a list of values.",
            field=f"{where}.value",
            hint="Write value: [a, b, c].",
            message_id="jd_op_needs_list",
            params={"where": where, "op": op},
        )
    return Condition(field, op, value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _holds(op: str, seen: Any, value: Any) -> bool:
    if op == "exists":
        return seen is not None and seen != ""
    if op == "not_exists":
        return seen is None or seen == ""
    if op == "eq":
        return bool(seen == value or (_number(seen) is not None and _number(seen) == value))
    if op == "ne":
        return not _holds("eq", seen, value)
    if op in _NUMERIC:
        number = _number(seen)
        if number is None:
            return False
        limit = float(value)
        if op == "gt":
            return number > limit
        if op == "gte":
            return number >= limit
        if op == "lt":
            return number < limit
        return number <= limit
    if op == "in":
        return bool(seen in value)
    if op == "not_in":
        return bool(seen not in value)
    if op == "contains":
        if isinstance(seen, str):
            return isinstance(value, str) and value.lower() in seen.lower()
        if isinstance(seen, Sequence):
            return value in seen
        if isinstance(seen, Mapping):
            return value in seen
        return False
    raise AssertionError(op)


def evaluate(tests: Sequence[Test], facts: Facts) -> tuple[bool, list[dict[str, Any]]]:
    """Whether every test holds, and what each condition saw (for the trace)."""
    seen: list[dict[str, Any]] = []
    result = all([_evaluate(test, facts, seen) for test in tests])  # every value, for the trace
    return result, seen


def _evaluate(test: Test, facts: Facts, seen: list[dict[str, Any]]) -> bool:
    if isinstance(test, AnyOf):
        return any([_evaluate(inner, facts, seen) for inner in test.tests])
    value = facts.lookup(test.field)
    held = _holds(test.op, value, test.value)
    entry: dict[str, Any] = {"field": test.field, "op": test.op, "seen": _short(value)}
    if test.op not in _UNARY:
        entry["value"] = test.value
    entry["held"] = held
    seen.append(entry)
    return held


def _short(value: Any) -> Any:
    """A value small enough for the trace (a cart's lines are summarised, not copied)."""
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, Mapping):
        return {"keys": sorted(map(str, value))[:20]}
    if isinstance(value, Sequence):
        return {"items": len(value)}
    return value
