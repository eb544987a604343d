"""Journey definitions: the YAML or JSON document a marketer writes, checked into `Journey`.

The format is documented in docs/journeys.md. `parse_journey` checks the whole document
before anything runs and raises `InvalidJourney` whose `field` is the path to the problem,
naming the step by position and id (``steps[2:remind].template``), with what to write
instead. Checks beyond the shape: step ids are unique, every `next`/`then`/`else`/
`on_event`/`on_timeout`/split branch names a step or `end`, every step can be reached, and no
loop of steps runs without a wait in it (it would send forever).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

import orjson
import yaml

from polku.errors import InvalidJourney
from polku.journeys.conditions import Test, parse_conditions, parse_duration

__all__ = [
    "END",
    "SEND_KINDS",
    "Branch",
    "Entry",
    "EventMatch",
    "Goal",
    "Journey",
    "Send",
    "Split",
    "Step",
    "Trigger",
    "Wait",
    "WaitFor",
    "WaitUntil",
    "parse_journey",
    "parse_text",
]

END: Final = "end"
SEND_KINDS: Final = ("email", "sms", "webhook", "alert", "trait", "coupon", "giftcard")
MESSAGE_KINDS: Final = frozenset({"email", "sms", "webhook"})
TRIGGER_KINDS: Final = ("event", "signal", "segment", "date", "stock")
STOCK_TRIGGERS: Final = ("back_in_stock", "price_drop")
_KEY: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.?-]{0,79}$")
_TIME: Final = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DAY_MS: Final = 86_400_000
_STEP_KINDS: Final = ("wait", "wait_until", "wait_for", "if", "split", "send")


@dataclass(frozen=True, slots=True)
class EventMatch:
    """Events named one of `events` (a track event's name, or page/screen/identify) for
    which `where` holds."""

    events: tuple[str, ...]
    where: tuple[Test, ...] = ()


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: Literal["event", "signal", "segment", "date", "stock"]
    match: EventMatch | None = None  # event
    signal_kind: str | None = None  # signal (None: any kind)
    min_score: float = 0.0
    segment: str | None = None
    date_trait: str | None = None  # date: a trait holding a date, or `first_order`
    days_before: int = 0
    stock: str | None = None  # back_in_stock | price_drop
    where: tuple[Test, ...] = ()  # filters for the non-event kinds


@dataclass(frozen=True, slots=True)
class Entry:
    re_entry: Literal["never", "after_exit"] | int = "after_exit"  # int: ms since last entry
    control: float = 0.0  # percent of entrants held out as this journey's control group
    max_event_age_ms: int = _DAY_MS


@dataclass(frozen=True, slots=True)
class Goal:
    match: EventMatch
    within_ms: int


@dataclass(frozen=True, slots=True)
class Wait:
    id: str
    ms: int
    next: str | None = None


@dataclass(frozen=True, slots=True)
class WaitUntil:
    id: str
    hour: int
    minute: int
    next: str | None = None


@dataclass(frozen=True, slots=True)
class WaitFor:
    id: str
    match: EventMatch
    timeout_ms: int
    on_event: str | None = None
    on_timeout: str | None = None
    next: str | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    id: str
    tests: tuple[Test, ...]
    then: str | None = None
    otherwise: str | None = None
    next: str | None = None


@dataclass(frozen=True, slots=True)
class Split:
    id: str
    branches: tuple[tuple[float, str], ...]  # (weight, step id or `end`)
    next: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    id: str
    kind: str  # one of SEND_KINDS
    template: str | Mapping[str, Any] | None = None
    purpose: str = "marketing"
    options: Mapping[str, Any] = field(default_factory=dict)  # queue, note, traits, url, ...
    next: str | None = None

    @property
    def is_message(self) -> bool:
        return self.kind in MESSAGE_KINDS


Step: TypeAlias = Wait | WaitUntil | WaitFor | Branch | Split | Send


@dataclass(frozen=True)
class Journey:
    key: str
    name: Mapping[str, str]
    description: str
    trigger: Trigger
    entry: Entry
    exits: tuple[EventMatch, ...]
    goal: Goal | None
    steps: tuple[Step, ...]
    document: Mapping[str, Any]  # as written, for the API to give back
    checksum: str

    @property
    def first(self) -> str:
        return self.steps[0].id

    def step(self, step_id: str) -> Step:
        return self._index[step_id]

    @property
    def _index(self) -> dict[str, Step]:
        cached: dict[str, Step] | None = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {s.id: s for s in self.steps}
            self.__dict__["_index_cache"] = cached
        return cached

    def following(self, step_id: str) -> str:
        """The step after `step_id` in the list, or `END` after the last."""
        ids = [s.id for s in self.steps]
        position = ids.index(step_id)
        return ids[position + 1] if position + 1 < len(ids) else END

    def successors(self, step: Step) -> list[str]:
        default = step.next or self.following(step.id)
        if isinstance(step, Branch):
            return [step.then or default, step.otherwise or default]
        if isinstance(step, WaitFor):
            return [step.on_event or default, step.on_timeout or default]
        if isinstance(step, Split):
            return [target for _, target in step.branches]
        return [default]

    def name_in(self, locale: str) -> str:
        return self.name.get(locale) or self.name.get("en") or self.key


TemplateCheck: TypeAlias = Callable[[str | Mapping[str, Any], str], list[tuple[str, str]]]
"""Checks a step's template (a name or inline content) for a channel: (part, problem)s."""


def parse_text(text: str | bytes, *, source: str = "journey") -> Any:
    """The document in `text` (YAML, which JSON also is), or `InvalidJourney`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise InvalidJourney(
            f"{source} is not valid YAML or JSON{line}: {getattr(exc, 'problem', exc)}.",
            field="document",
            hint="Check the indentation and quotes near that line.",
            message_id="jd_bad_yaml" if where is not None else "jd_bad_yaml_no_line",
            params={
                "line": where.line + 1 if where is not None else 0,
                "problem": str(getattr(exc, "problem", exc)),
            },
        ) from None


def parse_journey(raw: Any, *, templates: TemplateCheck | None = None) -> Journey:
    """Check a journey document (a mapping from YAML or JSON) into a `Journey`."""
    if not isinstance(raw, Mapping):
        raise _fail(
            "document",
            "A journey is a mapping of keys.",
            "Start with key: my-journey.",
            "jd_not_mapping",
        )
    known = {"key", "name", "description", "trigger", "entry", "exit", "goal", "steps"}
    _no_unknown(raw, known, "", "A journey has " + ", ".join(sorted(known)) + ".")
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise _fail(
            "key",
            f"key {key!r} is not a journey key.",
            "Use lowercase letters, digits and dashes, e.g. abandoned-cart.",
            "jd_bad_key",
            key=str(key)[:80],
        )
    name = _name(raw.get("name"), key)
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise _fail(
            "description",
            "description must be text.",
            "Write one sentence.",
            "jd_bad_description",
        )
    trigger = _trigger(raw.get("trigger"))
    entry = _entry(raw.get("entry"))
    exits = _exits(raw.get("exit"))
    goal = _goal(raw.get("goal"))
    steps = _steps(raw.get("steps"), templates)
    document = orjson.loads(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
    checksum = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
    journey = Journey(
        key=key,
        name=name,
        description=description,
        trigger=trigger,
        entry=entry,
        exits=exits,
        goal=goal,
        steps=steps,
        document=document,
        checksum=checksum[:16],
    )
    _check_graph(journey)
    return journey


# -- parts ---------------------------------------------------------------------------------


def _fail(field: str, message: str, hint: str, message_id: str, **params: Any) -> InvalidJourney:
    """The error at `field`; `message_id` and `params` let the console say it in the user's
    language (`err_<message_id>`, `errhint_<message_id>`)."""
    return InvalidJourney(message, field=field, hint=hint, message_id=message_id, params=params)


def _no_unknown(raw: Mapping[str, Any], known: set[str], where: str, hint: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        path = f"{where}.{unknown[0]}" if where else unknown[0]
        place = where or "the journey"
        raise _fail(
            path,
            f"Unknown key {unknown[0]!r} in {place}.",
            hint,
            "jd_unknown_key" if where else "jd_unknown_top_key",
            key=unknown[0],
            place=where,
            known=", ".join(sorted(known)),
        )


def _name(raw: Any, key: str) -> Mapping[str, str]:
    if raw is None:
        return {"en": key}
    if isinstance(raw, str) and raw.strip():
        return {"en": raw.strip()}
    if (
        isinstance(raw, Mapping)
        and raw
        and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in raw.items())
    ):
        return {k: v.strip() for k, v in raw.items()}
    raise _fail(
        "name",
        "name must be text, or {en: ..., fi: ...}.",
        "Write name: Win-back.",
        "jd_bad_name",
    )


def _events(raw: Any, where: str) -> tuple[str, ...]:
    names = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n.strip() for n in names)
    ):
        raise _fail(
            where,
            f"{where} must name an event, or a list of them.",
            "Write event: Order Completed (or page, screen, identify).",
            "jd_bad_events",
            where=where,
        )
    return tuple(n.strip() for n in names)


def _match(raw: Any, where: str) -> EventMatch:
    if isinstance(raw, str):
        return EventMatch((raw,))
    if not isinstance(raw, Mapping):
        raise _fail(
            where,
            f"{where} must say which event.",
            "Write {event: Order Completed}.",
            "jd_no_event",
            where=where,
        )
    return EventMatch(
        _events(raw.get("event"), f"{where}.event"),
        parse_conditions(raw.get("where"), f"{where}.where"),
    )


def _trigger(raw: Any) -> Trigger:
    if not isinstance(raw, Mapping):
        raise _fail(
            "trigger",
            "A journey needs a trigger.",
            "Write trigger: {event: Product Added} (or signal, segment, date, stock).",
            "jd_no_trigger",
        )
    kinds = [k for k in TRIGGER_KINDS if k in raw]
    _no_unknown(
        raw,
        {*TRIGGER_KINDS, "where"},
        "trigger",
        "A trigger has one of " + ", ".join(TRIGGER_KINDS) + ", and where.",
    )
    if len(kinds) != 1:
        raise _fail(
            "trigger",
            f"A trigger has exactly one of {', '.join(TRIGGER_KINDS)}; found "
            f"{', '.join(kinds) or 'none'}.",
            "Keep one kind per journey; make a second journey for another trigger.",
            "jd_trigger_kinds",
            kinds=", ".join(TRIGGER_KINDS),
            found=", ".join(kinds) or "-",
        )
    kind = kinds[0]
    body = raw[kind]
    where = parse_conditions(raw.get("where"), "trigger.where")
    if kind == "event":
        return Trigger("event", match=EventMatch(_events(body, "trigger.event"), where))
    if kind == "signal":
        spec = body if isinstance(body, Mapping) else {"kind": body}
        _no_unknown(
            spec,
            {"kind", "min_score"},
            "trigger.signal",
            "A signal trigger has kind and min_score.",
        )
        signal_kind = spec.get("kind")
        if signal_kind is not None and not isinstance(signal_kind, str):
            raise _fail(
                "trigger.signal.kind",
                "kind must be text.",
                "Write kind: idle_cart.",
                "jd_bad_signal_kind",
            )
        score = spec.get("min_score", 0.0)
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise _fail(
                "trigger.signal.min_score",
                f"min_score {score!r} is not between 0 and 1.",
                "Write min_score: 0.5.",
                "jd_bad_min_score",
                score=repr(score),
            )
        return Trigger("signal", signal_kind=signal_kind, min_score=float(score), where=where)
    if kind == "segment":
        if not isinstance(body, str) or not _KEY.match(body):
            raise _fail(
                "trigger.segment",
                f"segment {body!r} is not a segment key.",
                "Name a saved segment, e.g. segment: lapsing.",
                "jd_bad_segment",
                segment=repr(body),
            )
        return Trigger("segment", segment=body, where=where)
    if kind == "date":
        spec = body if isinstance(body, Mapping) else {"trait": body}
        _no_unknown(
            spec,
            {"trait", "anniversary", "days_before"},
            "trigger.date",
            "A date trigger has trait (or anniversary) and days_before.",
        )
        trait = spec.get("trait")
        if spec.get("anniversary") == "first_order":
            trait = "first_order"
        if not isinstance(trait, str) or not trait.strip():
            raise _fail(
                "trigger.date.trait",
                "A date trigger names the trait holding the date.",
                "Write date: {trait: birthday} or date: {anniversary: first_order}.",
                "jd_no_date_trait",
            )
        before = spec.get("days_before", 0)
        if isinstance(before, bool) or not isinstance(before, int) or not 0 <= before <= 60:
            raise _fail(
                "trigger.date.days_before",
                f"days_before {before!r} is not a whole number of days from 0 to 60.",
                "Write days_before: 0.",
                "jd_bad_days_before",
                days=repr(before),
            )
        return Trigger("date", date_trait=trait.strip(), days_before=before, where=where)
    if body not in STOCK_TRIGGERS:
        raise _fail(
            "trigger.stock",
            f"stock trigger {body!r} is not known.",
            f"Use one of {', '.join(STOCK_TRIGGERS)}.",
            "jd_bad_stock_trigger",
            trigger=repr(body),
            triggers=", ".join(STOCK_TRIGGERS),
        )
    return Trigger("stock", stock=str(body), where=where)


def _entry(raw: Any) -> Entry:
    if raw is None:
        return Entry()
    if not isinstance(raw, Mapping):
        raise _fail(
            "entry",
            "entry must be a mapping.",
            "Write entry: {re_entry: never}.",
            "jd_bad_entry",
        )
    _no_unknown(
        raw,
        {"re_entry", "control", "max_event_age"},
        "entry",
        "entry has re_entry, control and max_event_age.",
    )
    re_entry: Literal["never", "after_exit"] | int = "after_exit"
    value = raw.get("re_entry", "after_exit")
    if value in ("never", "after_exit"):
        re_entry = value
    else:
        re_entry = parse_duration(value, "entry.re_entry")
    control = raw.get("control", 0)
    if isinstance(control, bool) or not isinstance(control, int | float) or not 0 <= control < 100:
        raise _fail(
            "entry.control",
            f"control {control!r} is not a percentage from 0 to 99.",
            "Write control: 10 to keep one entrant in ten as the control group.",
            "jd_bad_control",
            control=repr(control),
        )
    age = parse_duration(raw.get("max_event_age", "1d"), "entry.max_event_age")
    return Entry(re_entry=re_entry, control=float(control), max_event_age_ms=age)


def _exits(raw: Any) -> tuple[EventMatch, ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    return tuple(_match(item, f"exit[{i}]") for i, item in enumerate(items))


def _goal(raw: Any) -> Goal | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _fail(
            "goal",
            "goal must be a mapping.",
            "Write goal: {event: Order Completed}.",
            "jd_bad_goal",
        )
    _no_unknown(raw, {"event", "where", "within"}, "goal", "goal has event, where and within.")
    match = _match({k: v for k, v in raw.items() if k != "within"}, "goal")
    return Goal(match, parse_duration(raw.get("within", "7d"), "goal.within"))


def _steps(raw: Any, templates: TemplateCheck | None) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail(
            "steps",
            "A journey needs a list of steps.",
            "Write steps: - {id: wait, wait: 1h}.",
            "jd_no_steps",
        )
    steps: list[Step] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise _fail(
                f"steps[{index}]",
                f"Step {index} is not a mapping.",
                "Write - {id: remind, send: email, template: abandoned_cart}.",
                "jd_step_not_mapping",
                index=index,
            )
        step_id = item.get("id")
        if not isinstance(step_id, str) or not _ID.match(step_id) or step_id == END:
            raise _fail(
                f"steps[{index}].id",
                f"Step {index} has no usable id ({step_id!r}).",
                "Give each step an id of letters, digits, dashes or dots (not 'end').",
                "jd_bad_step_id",
                index=index,
                id=repr(step_id),
            )
        where = f"steps[{index}:{step_id}]"
        if step_id in seen:
            raise _fail(
                f"{where}.id",
                f"Two steps are called {step_id!r}.",
                "Give each step its own id.",
                "jd_duplicate_step",
                id=step_id,
            )
        seen.add(step_id)
        steps.append(_step(item, step_id, where, templates))
    return tuple(steps)


def _target(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise _fail(
            where,
            f"{where} must name a step.",
            "Write the id of a step, or end.",
            "jd_bad_target",
            where=where,
        )
    return raw


def _step(
    raw: Mapping[str, Any], step_id: str, where: str, templates: TemplateCheck | None
) -> Step:
    kinds = [k for k in _STEP_KINDS if k in raw]
    if len(kinds) != 1:
        raise _fail(
            where,
            f"Step {step_id!r} has {', '.join(kinds) or 'none'} of {', '.join(_STEP_KINDS)}; "
            "it needs exactly one.",
            "Split it into one step per thing it does.",
            "jd_step_kinds",
            id=step_id,
            found=", ".join(kinds) or "-",
            kinds=", ".join(_STEP_KINDS),
        )
    kind = kinds[0]
    nxt = _target(raw.get("next"), f"{where}.next")
    if kind == "wait":
        _no_unknown(raw, {"id", "wait", "next"}, where, "A wait step has id, wait and next.")
        return Wait(step_id, parse_duration(raw["wait"], f"{where}.wait"), nxt)
    if kind == "wait_until":
        _no_unknown(
            raw,
            {"id", "wait_until", "next"},
            where,
            "A wait_until step has id, wait_until and next.",
        )
        text = raw["wait_until"]
        found = _TIME.match(text.strip()) if isinstance(text, str) else None
        if found is None:
            raise _fail(
                f"{where}.wait_until",
                f"{text!r} is not a time of day.",
                'Write wait_until: "09:30" (24-hour clock, quoted).',
                "jd_bad_time_of_day",
                time=repr(text),
            )
        return WaitUntil(step_id, int(found.group(1)), int(found.group(2)), nxt)
    if kind == "wait_for":
        _no_unknown(
            raw,
            {"id", "wait_for", "on_event", "on_timeout", "next"},
            where,
            "A wait_for step has id, wait_for, on_event, on_timeout and next.",
        )
        spec = raw["wait_for"]
        if not isinstance(spec, Mapping):
            raise _fail(
                f"{where}.wait_for",
                "wait_for needs an event and a timeout.",
                "Write wait_for: {event: Order Completed, timeout: 2d}.",
                "jd_bad_wait_for",
            )
        _no_unknown(
            spec,
            {"event", "where", "timeout"},
            f"{where}.wait_for",
            "wait_for has event, where and timeout.",
        )
        if "timeout" not in spec:
            raise _fail(
                f"{where}.wait_for.timeout",
                "wait_for needs a timeout.",
                "Write timeout: 2d (a wait must end).",
                "jd_no_timeout",
            )
        return WaitFor(
            step_id,
            _match({k: v for k, v in spec.items() if k != "timeout"}, f"{where}.wait_for"),
            parse_duration(spec["timeout"], f"{where}.wait_for.timeout"),
            _target(raw.get("on_event"), f"{where}.on_event"),
            _target(raw.get("on_timeout"), f"{where}.on_timeout"),
            nxt,
        )
    if kind == "if":
        _no_unknown(
            raw,
            {"id", "if", "then", "else", "next"},
            where,
            "An if step has id, if, then, else and next.",
        )
        tests = parse_conditions(raw["if"], f"{where}.if")
        if not tests:
            raise _fail(
                f"{where}.if",
                "if needs at least one condition.",
                "Write if: [{field: cart.value, op: gt, value: 0}].",
                "jd_empty_if",
            )
        return Branch(
            step_id,
            tests,
            _target(raw.get("then"), f"{where}.then"),
            _target(raw.get("else"), f"{where}.else"),
            nxt,
        )
    if kind == "split":
        _no_unknown(raw, {"id", "split", "next"}, where, "A split step has id and split.")
        return Split(step_id, _branches(raw["split"], f"{where}.split"), nxt)
    return _send(raw, step_id, where, nxt, templates)


def _branches(raw: Any, where: str) -> tuple[tuple[float, str], ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise _fail(
            where,
            "split needs two or more branches.",
            "Write split: [{weight: 50, next: a}, {weight: 50, next: end}].",
            "jd_few_branches",
        )
    branches: list[tuple[float, str]] = []
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(
                here,
                "A branch is {weight, next}.",
                "Write {weight: 50, next: a}.",
                "jd_bad_branch",
            )
        _no_unknown(item, {"weight", "next"}, here, "A branch has weight and next.")
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise _fail(
                f"{here}.weight",
                f"weight {weight!r} is not a positive number.",
                "Write weight: 50.",
                "jd_bad_weight",
                weight=repr(weight),
            )
        target = _target(item.get("next"), f"{here}.next")
        if target is None:
            raise _fail(
                f"{here}.next",
                "A branch needs next.",
                "Name a step, or end.",
                "jd_branch_no_next",
            )
        branches.append((float(weight), target))
    return tuple(branches)


_SEND_OPTIONS: Final[Mapping[str, frozenset[str]]] = {
    "email": frozenset({"template", "content", "purpose", "values"}),
    "sms": frozenset({"template", "content", "purpose", "values"}),
    "webhook": frozenset({"url", "secret", "template", "content", "purpose", "values"}),
    "alert": frozenset({"queue", "store", "note"}),
    "trait": frozenset({"traits"}),
    "coupon": frozenset({"percent", "amount", "currency", "valid_days", "prefix"}),
    "giftcard": frozenset({"amount", "currency", "valid_days"}),
}


def _send(
    raw: Mapping[str, Any],
    step_id: str,
    where: str,
    nxt: str | None,
    templates: TemplateCheck | None,
) -> Send:
    kind = raw["send"]
    if kind not in SEND_KINDS:
        raise _fail(
            f"{where}.send",
            f"send {kind!r} is not an action.",
            f"Use one of {', '.join(SEND_KINDS)}.",
            "jd_bad_send",
            send=repr(kind),
            sends=", ".join(SEND_KINDS),
        )
    allowed = _SEND_OPTIONS[kind]
    _no_unknown(
        raw,
        {"id", "send", "next", *allowed},
        where,
        f"A send: {kind} step has id, send, next and {', '.join(sorted(allowed))}.",
    )
    options = {k: v for k, v in raw.items() if k in allowed - {"template", "content", "purpose"}}
    purpose = raw.get("purpose", "marketing")
    if not isinstance(purpose, str) or not purpose.strip():
        raise _fail(
            f"{where}.purpose",
            "purpose must name a consent purpose.",
            "Write purpose: marketing (or transactional).",
            "jd_bad_purpose",
        )
    template: str | Mapping[str, Any] | None = None
    if kind in MESSAGE_KINDS:
        template = raw.get("content", raw.get("template"))
        if "content" in raw and "template" in raw:
            raise _fail(
                f"{where}.content",
                "Give template or content, not both.",
                "Keep one of them.",
                "jd_template_and_content",
            )
        if kind == "webhook":
            url = raw.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _fail(
                    f"{where}.url",
                    f"url {url!r} is not an http(s) URL.",
                    "Write url: https://crm.example.com/hooks/polku.",
                    "jd_bad_url",
                    url=repr(url),
                )
            secret = raw.get("secret")
            if not isinstance(secret, str) or len(secret) < 16:
                raise _fail(
                    f"{where}.secret",
                    "A webhook step needs its own signing secret of 16 characters or more.",
                    "Write secret: a long random string the receiver also knows (it checks "
                    "the Polku-Signature header with it).",
                    "jd_no_secret",
                )
        elif template is None:
            raise _fail(
                f"{where}.template",
                f"A {kind} step needs a template or content.",
                "Write template: abandoned_cart, or content: {en: {...}, fi: {...}}.",
                "jd_no_template",
                kind=kind,
            )
        if template is not None:
            if not isinstance(template, str | Mapping):
                raise _fail(
                    f"{where}.template",
                    "template must be a name or content.",
                    "Write template: abandoned_cart.",
                    "jd_bad_template",
                )
            if templates is not None:
                part_name = "content" if "content" in raw else "template"
                for part, problem in templates(template, kind):
                    suffix = f".{part}" if part else ""
                    # The content module's problems carry their own message id and values.
                    raise InvalidJourney(
                        str(problem),
                        field=f"{where}.{part_name}{suffix}",
                        hint="Fix the template text, or name a shipped template.",
                        message_id=getattr(problem, "message_id", "jd_template_problem"),
                        params=getattr(problem, "params", {"problem": problem}),
                    )
    elif kind == "alert":
        queue = raw.get("queue", "agent")
        if queue not in ("agent", "store"):
            raise _fail(
                f"{where}.queue",
                f"queue {queue!r} is not agent or store.",
                "Write queue: store (the person's store) or queue: agent.",
                "jd_bad_queue",
                queue=repr(queue),
            )
        options["queue"] = queue
    elif kind == "trait":
        traits = raw.get("traits")
        if not isinstance(traits, Mapping) or not traits:
            raise _fail(
                f"{where}.traits",
                "send: trait needs the traits to set.",
                "Write traits: {vip: true}.",
                "jd_no_traits",
            )
    else:
        _money(raw, kind, where)
    return Send(step_id, kind, template, purpose.strip(), options, nxt)


def _money(raw: Mapping[str, Any], kind: str, where: str) -> None:
    if kind == "coupon" and "percent" in raw:
        percent = raw["percent"]
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int | float)
            or not (0 < percent <= 100)
        ):
            raise _fail(
                f"{where}.percent",
                f"percent {percent!r} is not from 1 to 100.",
                "Write percent: 15.",
                "jd_bad_percent",
                percent=repr(percent),
            )
    elif "amount" in raw:
        amount = raw["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
            raise _fail(
                f"{where}.amount",
                f"amount {amount!r} is not a positive number.",
                "Write amount: 10 (in the currency's units) and currency: EUR.",
                "jd_bad_amount",
                amount=repr(amount),
            )
    else:
        raise _fail(
            f"{where}.amount",
            f"send: {kind} needs an amount" + (" or a percent." if kind == "coupon" else "."),
            "Write amount: 10 and currency: EUR"
            + (", or percent: 15." if kind == "coupon" else "."),
            "jd_no_amount_or_percent" if kind == "coupon" else "jd_no_amount",
            kind=kind,
        )
    days = raw.get("valid_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise _fail(
            f"{where}.valid_days",
            f"valid_days {days!r} is not 1 to 3650.",
            "Write valid_days: 30.",
            "jd_bad_valid_days",
            days=repr(days),
        )


def _check_graph(journey: Journey) -> None:
    ids = {s.id for s in journey.steps}
    positions = {s.id: i for i, s in enumerate(journey.steps)}
    for step in journey.steps:
        where = f"steps[{positions[step.id]}:{step.id}]"
        for target in journey.successors(step):
            if target != END and target not in ids:
                raise _fail(
                    where,
                    f"Step {step.id!r} goes to {target!r}, which is no step.",
                    f"Use one of {', '.join(sorted(ids))}, or end.",
                    "jd_no_such_target",
                    id=step.id,
                    target=target,
                    ids=", ".join(sorted(ids)),
                )
    reached: set[str] = set()
    todo = [journey.first]
    while todo:
        current = todo.pop()
        if current == END or current in reached:
            continue
        reached.add(current)
        todo.extend(journey.successors(journey.step(current)))
    for step in journey.steps:
        if step.id not in reached:
            raise _fail(
                f"steps[{positions[step.id]}:{step.id}]",
                f"No step leads to {step.id!r}.",
                "Point a next, then, else or branch at it, or remove it.",
                "jd_unreachable",
                id=step.id,
            )
    # A loop that never waits would run forever within one event.
    instant = {s.id for s in journey.steps if not isinstance(s, Wait | WaitUntil | WaitFor)}
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        state[node] = 1
        for target in journey.successors(journey.step(node)):
            if target in instant:
                if state.get(target) == 1:
                    raise _fail(
                        f"steps[{positions[target]}:{target}]",
                        f"Steps loop back to {target!r} without a wait.",
                        "Add a wait step to the loop, or end it.",
                        "jd_loop_without_wait",
                        id=target,
                    )
                if target not in state:
                    visit(target)
        state[node] = 2

    for node in sorted(instant):
        if node not in state:
            visit(node)
