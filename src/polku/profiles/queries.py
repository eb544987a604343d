"""Read profiles: one profile (following merges), lookup by any identifier, search, the
timeline of everything a person did, and consent with the event that set it.

Every function is scoped to one workspace: an id from another workspace reads as unknown.
Values that come from a request are checked here (`InvalidField` naming the field) before
they reach SQL, so a bad value is a 400 on SQLite and PostgreSQL alike, never a driver error.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from sqlalchemy import Connection, and_, case, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from polku.errors import InvalidField
from polku.events import CHANNELS, MESSAGE_TYPES
from polku.identity.identifiers import IdentityConfig, junk_reason, normalise
from polku.identity.queries import KnownIdentifier, profile_identifiers, resolve_profile
from polku.identity.tables import event_profiles, identifiers
from polku.log.tables import log_events
from polku.profiles.tables import profiles

__all__ = [
    "CONSENT_EVENT",
    "ConsentEntry",
    "Profile",
    "ProfileSummary",
    "TimelineEvent",
    "TimelineFilter",
    "TimelinePage",
    "consent_of",
    "find_by_identifier",
    "get_profile",
    "identifier_type",
    "parse_time",
    "resolve",
    "search",
    "timeline",
]

CONSENT_EVENT: Final = "Consent Updated"
"""The track event that records a consent change (see `polku.profiles.actions.set_consent`)."""

TYPE_ALIASES: Final = {
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "loyaltyCard": "loyalty_card",
    "posCustomerId": "pos_customer_id",
    "deviceId": "device_id",
}
"""Segment spellings accepted for identifier types in requests."""

_MAX_ID: Final = 64  # width of the profile id columns
_MAX_TEXT: Final = 200  # longest search text, event name or store id a filter may hold
_MAX_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z
_MAX_FILTER_VALUES: Final = 50

# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentEntry:
    """The current answer for one purpose and channel, and the event that gave it.

    `source` is where the person gave or withdrew it: the ``source`` property of a
    ``Consent Updated`` event when it has one, else the message type it came with
    (``identify`` for ``traits.consent``).
    """

    granted: bool
    at: int  # event time, epoch milliseconds
    source: str
    message_id: str
    source_id: str  # the write key's source that sent the event; "" for Polku's own


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything known about one person, as the profiles projection holds it now."""

    profile_id: str
    redirected_from: str | None  # the id asked for, when it was merged into `profile_id`
    identifiers: dict[str, list[KnownIdentifier]]
    traits: dict[str, Any]
    trait_times: dict[str, int]
    consent: dict[str, dict[str, ConsentEntry]]
    channels: dict[str, int]
    first_seen: int
    last_seen: int
    event_count: int
    order_count: int


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """One search hit; `matched` says why it matched (``user_id``, ``name``, ...)."""

    profile_id: str
    name: str | None
    email: str | None
    phone: str | None
    first_seen: int
    last_seen: int
    event_count: int
    order_count: int
    matched: str


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    offset: int
    message_id: str
    type: str
    event: str | None
    channel: str | None
    store_id: str | None
    timestamp: int
    received_at: int
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TimelinePage:
    profile_id: str
    redirected_from: str | None
    events: list[TimelineEvent]
    next_cursor: str | None  # None on the last page


# -- input checks -------------------------------------------------------------------------


def _text(value: str, name: str, limit: int = _MAX_TEXT) -> str:
    """`value` stripped; InvalidField when it could not be a stored value at all."""
    text = value.strip()
    if not text:
        raise InvalidField(
            f"{name} is empty.",
            field=name,
            hint=f"Give a value for {name}.",
            message_id="empty_value",
            params={"name": name},
        )
    if len(text) > limit:
        raise InvalidField(
            f"{name} is {len(text)} characters; at most {limit} are allowed.",
            field=name,
            hint="Send a shorter value.",
            message_id="value_too_long",
            params={"name": name, "length": len(text), "limit": limit},
        )
    if "\x00" in text:
        raise InvalidField(
            f"{name} contains a NUL character.",
            field=name,
            hint="Send plain text.",
            message_id="value_with_nul",
            params={"name": name},
        )
    return text


def _plausible_id(profile_id: str) -> bool:
    """Whether `profile_id` could name a profile (else it is unknown without asking SQL)."""
    return 0 < len(profile_id) <= _MAX_ID and "\x00" not in profile_id


def parse_time(raw: str, name: str) -> int:
    """An instant from a request: ISO-8601 (``2026-04-01T10:00:00Z``; no zone means UTC) or
    epoch milliseconds; InvalidField naming `name` otherwise."""
    text = raw.strip()
    try:
        if text.isdigit():
            ms = int(text)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ms = int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise InvalidField(
            f"{name} {raw[:40]!r} is not a date-time.",
            field=name,
            hint="Send ISO-8601 such as 2026-04-01T10:00:00Z, or epoch milliseconds.",
        ) from None
    if not 0 <= ms <= _MAX_MS:
        raise InvalidField(
            f"{name} {raw[:40]!r} is outside 1970-01-01 .. 9999-12-31.",
            field=name,
            hint="Send a date-time between 1970 and 9999.",
        )
    return ms


def identifier_type(raw: str, config: IdentityConfig) -> str:
    """The identifier type called `raw` (Segment spellings such as ``userId`` accepted)."""
    name = TYPE_ALIASES.get(raw.strip(), raw.strip())
    try:
        config.type(name)
    except KeyError:
        known = ", ".join(t.name for t in config.types)
        raise InvalidField(
            f"Unknown identifier type {raw[:64]!r}.",
            field="type",
            hint=f"Use one of: {known}.",
        ) from None
    return name


def _normalised(id_type: str, raw: str, config: IdentityConfig) -> str:
    value = normalise(id_type, raw, config)
    if value is None:
        reason = junk_reason(id_type, raw, config) or "not usable"
        raise InvalidField(
            f"value is not a usable {id_type}: {reason}.",
            field="value",
            hint="Send the identifier as the customer gave it; case, spaces and phone "
            "formats do not matter.",
        )
    return value


# -- one profile --------------------------------------------------------------------------


def resolve(conn: Connection, workspace_id: str, profile_id: str) -> str | None:
    """The profile that holds `profile_id` now: itself, or the profile it was merged into
    (following chains of merges). None when the workspace has no such profile.

    A merged id is followed through the identity graph, the record of every merge, so it
    resolves even when the profiles projection holds no row for the merged profile (it
    runs after identity, and older versions of it wrote no row for a profile created and
    merged within one pipeline batch).
    """
    row = _profile_row(conn, workspace_id, profile_id, profiles.c.merged_into)
    if row is not None and row.merged_into is None:
        return profile_id
    if not _plausible_id(profile_id):
        return None
    return resolve_profile(conn, workspace_id, profile_id)


def _profile_row(
    conn: Connection, workspace_id: str, profile_id: str, *columns: ColumnElement[Any]
) -> Any:
    if not _plausible_id(profile_id):
        return None
    return conn.execute(
        select(*(columns or (profiles,))).where(
            profiles.c.workspace_id == workspace_id, profiles.c.profile_id == profile_id
        )
    ).first()


def get_profile(
    conn: Connection, workspace_id: str, profile_id: str, config: IdentityConfig
) -> Profile | None:
    """The profile `profile_id`, or the one it was merged into (`redirected_from` then names
    the id asked for); None when the workspace has no such profile."""
    row = _profile_row(conn, workspace_id, profile_id)
    holder: str | None = profile_id
    if row is None or row.merged_into is not None:
        holder = resolve(conn, workspace_id, profile_id)
        row = None if holder is None else _profile_row(conn, workspace_id, holder)
    if row is None or holder is None:
        return None
    return Profile(
        profile_id=holder,
        redirected_from=profile_id if holder != profile_id else None,
        identifiers=profile_identifiers(conn, workspace_id, holder, config),
        traits=orjson.loads(row.traits),
        trait_times=orjson.loads(row.trait_times),
        consent=_with_evidence(conn, workspace_id, orjson.loads(row.consent)),
        channels=orjson.loads(row.channels),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        event_count=row.event_count,
        order_count=row.order_count,
    )


def consent_of(
    conn: Connection, workspace_id: str, profile_id: str
) -> tuple[str, dict[str, dict[str, ConsentEntry]]] | None:
    """(holder, consent by purpose and channel) for `profile_id` or the profile it was merged
    into; channel ``"*"`` is an answer for every channel. None for an unknown profile."""
    holder = resolve(conn, workspace_id, profile_id)
    if holder is None:
        return None
    raw = conn.execute(
        select(profiles.c.consent).where(
            profiles.c.workspace_id == workspace_id, profiles.c.profile_id == holder
        )
    ).scalar()
    if raw is None:
        return None
    return holder, _with_evidence(conn, workspace_id, orjson.loads(raw))


def _with_evidence(
    conn: Connection, workspace_id: str, stored: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, dict[str, ConsentEntry]]:
    """Consent as stored (``source`` is ``type:source_id:messageId``, see
    `polku.profiles.state.apply_event`) with the source the evidence event names."""
    recorded: dict[tuple[str, str], tuple[str, str, str]] = {}
    for purpose, by_channel in stored.items():
        for channel, entry in by_channel.items():
            kind, _, rest = str(entry.get("source", "")).partition(":")
            source_id, _, message_id = rest.partition(":")
            recorded[purpose, channel] = (kind, source_id, message_id)
    stated = _stated_sources(conn, workspace_id, {m for _, _, m in recorded.values() if m})
    result: dict[str, dict[str, ConsentEntry]] = {}
    for purpose, by_channel in stored.items():
        for channel, entry in by_channel.items():
            kind, source_id, message_id = recorded[purpose, channel]
            result.setdefault(purpose, {})[channel] = ConsentEntry(
                granted=bool(entry.get("granted")),
                at=int(entry.get("at", 0)),
                source=stated.get(message_id) or kind or "unknown",
                message_id=message_id,
                source_id="" if source_id == "api" else source_id,
            )
    return result


def _stated_sources(conn: Connection, workspace_id: str, message_ids: set[str]) -> dict[str, str]:
    """messageId -> the ``source`` property of those that are ``Consent Updated`` events."""
    if not message_ids:
        return {}
    rows = conn.execute(
        select(log_events.c.message_id, log_events.c.payload).where(
            log_events.c.workspace_id == workspace_id,
            log_events.c.event == CONSENT_EVENT,
            log_events.c.message_id.in_(sorted(message_ids)),
        )
    )
    found: dict[str, str] = {}
    for message_id, payload in rows:
        properties = orjson.loads(payload).get("properties")
        source = properties.get("source") if isinstance(properties, dict) else None
        if isinstance(source, str) and source:
            found[message_id] = source
    return found


# -- lookup and search --------------------------------------------------------------------


def find_by_identifier(
    conn: Connection, workspace_id: str, id_type: str, raw: str, config: IdentityConfig
) -> tuple[str, str, str] | None:
    """(profile id, type, normalised value) of the profile holding identifier `raw` of type
    `id_type`, normalised as identity resolution does (email case, phone format, spaces in
    card numbers do not matter). None when nobody holds it; InvalidField naming ``type`` or
    ``value`` when the request could never match."""
    kind = identifier_type(id_type, config)
    value = _normalised(kind, raw, config)
    owner = conn.execute(
        select(identifiers.c.profile_id).where(
            identifiers.c.workspace_id == workspace_id,
            identifiers.c.id_type == kind,
            identifiers.c.value == value,
        )
    ).scalar()
    if owner is None:
        return None
    holder = resolve(conn, workspace_id, owner)
    return None if holder is None else (holder, kind, value)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _case_variants(text: str) -> list[str]:
    # SQLite's lower() and LIKE fold ASCII only, so "ä" would miss "Äijälä"; trying the
    # common casings of the query too covers names typed in lower case. PostgreSQL's ILIKE
    # folds every script, so there the variants are redundant but harmless.
    return list(dict.fromkeys((text, text.lower(), text.upper(), text.title(), text.capitalize())))


def _like_any(column: Any, patterns: Iterable[str]) -> ColumnElement[bool]:
    return or_(*(column.ilike(pattern, escape="\\") for pattern in patterns))


_SUMMARY_COLUMNS = (
    profiles.c.profile_id,
    profiles.c.name,
    profiles.c.email,
    profiles.c.phone,
    profiles.c.first_seen,
    profiles.c.last_seen,
    profiles.c.event_count,
    profiles.c.order_count,
)


def _summary(row: Any, matched: str) -> ProfileSummary:
    return ProfileSummary(
        profile_id=row.profile_id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        event_count=row.event_count,
        order_count=row.order_count,
        matched=matched,
    )


def search(
    conn: Connection,
    workspace_id: str,
    q: str | None,
    limit: int,
    config: IdentityConfig,
) -> list[ProfileSummary]:
    """Profiles matching `q`, best first: exact identifier matches (user id, email, phone in
    any format, loyalty card, ...), then names that start with `q`, names with a later word
    that does, emails and phones that start with it, then those that contain it; most
    recently seen first within each group. Without `q`, the most recently seen profiles."""
    live = and_(profiles.c.workspace_id == workspace_id, profiles.c.merged_into.is_(None))
    if q is None or not q.strip():
        rows = conn.execute(
            select(*_SUMMARY_COLUMNS)
            .where(live)
            .order_by(profiles.c.last_seen.desc(), profiles.c.profile_id)
            .limit(limit)
        )
        return [_summary(row, "recent") for row in rows]
    text = _text(q, "q")

    hits: dict[str, ProfileSummary] = {}
    keys: list[tuple[str, str]] = []
    for id_type in config.types:
        value = normalise(id_type.name, text, config)
        if value is not None:
            keys.append((id_type.name, value))
    if keys:
        owners = conn.execute(
            select(identifiers.c.profile_id, identifiers.c.id_type).where(
                identifiers.c.workspace_id == workspace_id,
                or_(*(and_(identifiers.c.id_type == k, identifiers.c.value == v) for k, v in keys)),
            )
        ).all()
        priority = {t.name: t.priority for t in config.types}
        matched: dict[str, str] = {}
        for profile_id, id_type in sorted(owners, key=lambda o: priority.get(o[1], 99)):
            matched.setdefault(profile_id, id_type)  # the strongest type that matched
        if matched:
            rows = conn.execute(
                select(*_SUMMARY_COLUMNS)
                .where(live, profiles.c.profile_id.in_(sorted(matched)))
                .order_by(profiles.c.last_seen.desc(), profiles.c.profile_id)
            )
            for row in rows:
                hits[row.profile_id] = _summary(row, matched[row.profile_id])

    escaped = [_escape_like(v) for v in _case_variants(text)]
    starts = [f"{v}%" for v in escaped]
    word_starts = [f"% {v}%" for v in escaped]
    contains = [f"%{v}%" for v in escaped]
    rank = case(
        (_like_any(profiles.c.name, starts), literal(0)),
        (_like_any(profiles.c.name, word_starts), literal(1)),
        (_like_any(profiles.c.email, starts), literal(2)),
        (_like_any(profiles.c.phone, starts), literal(3)),
        else_=literal(4),
    )
    rows = conn.execute(
        select(*_SUMMARY_COLUMNS, rank.label("rank"))
        .where(
            live,
            or_(
                _like_any(profiles.c.name, contains),
                _like_any(profiles.c.email, contains),
                _like_any(profiles.c.phone, contains),
            ),
        )
        .order_by(rank, profiles.c.last_seen.desc(), profiles.c.profile_id)
        .limit(limit)
    )
    labels = ("name", "name", "email", "phone", "contains")
    for row in rows:
        if row.profile_id not in hits:
            hits[row.profile_id] = _summary(row, labels[row.rank])
    return list(hits.values())[:limit]


# -- timeline -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    """Which of a profile's events to show; empty tuples mean "any"."""

    channels: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    store_ids: tuple[str, ...] = ()
    since: int | None = None  # inclusive, event time in epoch milliseconds
    until: int | None = None  # exclusive

    @classmethod
    def build(
        cls,
        *,
        channels: Sequence[str] = (),
        events: Sequence[str] = (),
        types: Sequence[str] = (),
        store_ids: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
    ) -> TimelineFilter:
        """A filter from request values; a parameter may repeat or hold a comma-separated
        list (``channel=web,app``). InvalidField naming the parameter for a bad value."""
        wanted_channels = _values(channels, "channel", split=True)
        for channel in wanted_channels:
            if channel not in CHANNELS:
                raise InvalidField(
                    f"Unknown channel {channel[:40]!r}.",
                    field="channel",
                    hint=f"Use one or more of: {', '.join(CHANNELS)}.",
                    message_id="unknown_channel",
                    params={"channel": channel[:40], "channels": ", ".join(CHANNELS)},
                )
        wanted_types = _values(types, "type", split=True)
        for kind in wanted_types:
            if kind not in MESSAGE_TYPES:
                raise InvalidField(
                    f"Unknown message type {kind[:40]!r}.",
                    field="type",
                    hint=f"Use one or more of: {', '.join(sorted(MESSAGE_TYPES))}.",
                    message_id="unknown_message_type",
                    params={"type": kind[:40]},
                )
        start = None if since is None else parse_time(since, "since")
        end = None if until is None else parse_time(until, "until")
        if start is not None and end is not None and end <= start:
            raise InvalidField(
                "until is not after since.",
                field="until",
                hint="since is inclusive and until exclusive; give an until later than since.",
                message_id="until_not_after_since",
            )
        return cls(
            channels=wanted_channels,
            # event names may contain commas ("Product Viewed, Grid"): only repeats list them
            events=_values(events, "event", split=False),
            types=wanted_types,
            store_ids=_values(store_ids, "store_id", split=False),
            since=start,
            until=end,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        ep = event_profiles.c
        if self.channels:
            found.append(ep.channel.in_(self.channels))
        if self.events:
            found.append(ep.event.in_(self.events))
        if self.types:
            found.append(ep.type.in_(self.types))
        if self.store_ids:
            found.append(ep.store_id.in_(self.store_ids))
        if self.since is not None:
            found.append(ep.timestamp >= self.since)
        if self.until is not None:
            found.append(ep.timestamp < self.until)
        return found


def _values(given: Sequence[str], name: str, *, split: bool) -> tuple[str, ...]:
    parts = [p for raw in given for p in (raw.split(",") if split else [raw]) if p.strip()]
    if len(parts) > _MAX_FILTER_VALUES:
        raise InvalidField(
            f"{len(parts)} values for {name}; at most {_MAX_FILTER_VALUES} are allowed.",
            field=name,
            hint="Ask for fewer values at once.",
        )
    return tuple(dict.fromkeys(_text(p, name) for p in parts))


def _encode_cursor(timestamp: int, offset: int) -> str:
    raw = f"{timestamp}.{offset}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        timestamp, offset = raw.split(".")
        if not (timestamp.isdigit() and offset.isdigit()):
            raise ValueError(raw)
        return int(timestamp), int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidField(
            "cursor is not a cursor this API handed out.",
            field="cursor",
            hint="Pass next_cursor from the previous page unchanged, or leave cursor out "
            "for the newest events.",
        ) from None


def timeline(
    conn: Connection,
    workspace_id: str,
    profile_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    only: TimelineFilter | None = None,
) -> TimelinePage | None:
    """A page of the events of `profile_id` (or the profile it was merged into), newest
    event time first, each with the message as stored in the log. Pass the page's
    `next_cursor` back to get the next page; the cursor stays valid while new events arrive.
    None when the workspace has no such profile."""
    holder = resolve(conn, workspace_id, profile_id)
    if holder is None:
        return None
    ep = event_profiles.c
    conditions: list[ColumnElement[bool]] = [
        ep.workspace_id == workspace_id,
        ep.profile_id == holder,
        *(only or TimelineFilter()).conditions(),
    ]
    if cursor is not None:
        # keyset paging on (timestamp, offset): stable when events arrive meanwhile
        at, offset = _decode_cursor(cursor)
        conditions.append(or_(ep.timestamp < at, and_(ep.timestamp == at, ep.offset < offset)))
    rows = conn.execute(
        select(
            ep.offset,
            ep.type,
            ep.event,
            ep.channel,
            ep.store_id,
            ep.timestamp,
            log_events.c.message_id,
            log_events.c.received_at,
            log_events.c.payload,
        )
        .join(log_events, log_events.c.offset == ep.offset)
        .where(*conditions)
        .order_by(ep.timestamp.desc(), ep.offset.desc())
        .limit(limit + 1)
    ).all()
    page = rows[:limit]
    events = [
        TimelineEvent(
            offset=r.offset,
            message_id=r.message_id,
            type=r.type,
            event=r.event,
            channel=r.channel,
            store_id=r.store_id,
            timestamp=r.timestamp,
            received_at=r.received_at,
            message=orjson.loads(r.payload),
        )
        for r in page
    ]
    next_cursor = _encode_cursor(page[-1].timestamp, page[-1].offset) if len(rows) > limit else None
    return TimelinePage(
        profile_id=holder,
        redirected_from=profile_id if holder != profile_id else None,
        events=events,
        next_cursor=next_cursor,
    )
