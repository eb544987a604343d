"""The checks every journey message passes before it may leave, in a fixed order.

holdout and control group, consent for the purpose on the channel, an address to send to,
suppression while a staff member has claimed the customer (buying signals), frequency
caps, and quiet hours (in the customer's time zone). The first check that stops a message
decides: quiet hours hold it until they end; any other drops it, with the reason. Each
check's answer goes into the decision trace, so "why didn't she get it?" is one read.

`Person` is what the guards, the conditions and the content need of a profile, read once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import Connection, func, select

from polku.journeys.config import JourneyConfig
from polku.journeys.tables import sends
from polku.profiles.queries import resolve
from polku.profiles.tables import profiles
from polku.signals.queries import is_suppressed
from polku.storage.bulk import fetch_in

__all__ = [
    "COUNTED",
    "Decision",
    "Person",
    "check",
    "consent_for",
    "local_zone",
    "next_time_of_day",
    "people_of",
    "person_of",
]

COUNTED: Final = ("queued", "held", "claimed", "sending", "sent")
"""Send statuses that count towards the frequency caps."""


@dataclass(frozen=True)
class Person:
    profile_id: str  # the holder (after merges)
    traits: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    phone: str | None = None
    order_count: int = 0
    event_count: int = 0
    first_seen: int = 0
    last_seen: int = 0

    def facts(self) -> dict[str, Any]:
        return {
            "id": self.profile_id,
            "traits": self.traits,
            "consent": {
                purpose: {ch: entry.get("granted") for ch, entry in by_channel.items()}
                for purpose, by_channel in self.consent.items()
                if isinstance(by_channel, dict)
            },
            "channels": self.channels,
            "email": self.email,
            "phone": self.phone,
            "order_count": self.order_count,
            "event_count": self.event_count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    @property
    def locale(self) -> str:
        raw = self.traits.get("locale") or self.traits.get("language") or ""
        return "fi" if str(raw).lower().startswith("fi") else "en"


def person_of(conn: Connection, workspace_id: str, profile_id: str) -> Person | None:
    """The profile behind `profile_id` (following merges), or None when there is none."""
    holder = resolve(conn, workspace_id, profile_id)
    if holder is None:
        return None
    p = profiles.c
    row = conn.execute(
        select(
            p.traits,
            p.consent,
            p.channels,
            p.email,
            p.phone,
            p.order_count,
            p.event_count,
            p.first_seen,
            p.last_seen,
        ).where(p.workspace_id == workspace_id, p.profile_id == holder)
    ).first()
    if row is None:
        return None
    traits = orjson.loads(row.traits)
    return Person(
        profile_id=holder,
        traits=traits,
        consent=orjson.loads(row.consent),
        channels=orjson.loads(row.channels),
        email=row.email or _text(traits.get("email")),
        phone=row.phone or _text(traits.get("phone")),
        order_count=int(row.order_count),
        event_count=int(row.event_count),
        first_seen=int(row.first_seen),
        last_seen=int(row.last_seen),
    )


def people_of(
    conn: Connection, workspace_id: str, profile_ids: Sequence[str]
) -> dict[str, Person | None]:
    """`person_of` for many profiles in one query (those merged away are read one by one)."""
    found: dict[str, Person | None] = {}
    wanted = sorted(set(profile_ids))
    for start in range(0, len(wanted), 500):
        rows = fetch_in(
            conn,
            "SELECT profile_id, merged_into, traits, consent, channels, email, phone, "
            "order_count, event_count, first_seen, last_seen FROM profiles "
            "WHERE workspace_id = ? AND profile_id IN (?*)",
            wanted[start : start + 500],
            (workspace_id,),
        )
        for row in rows:
            if row[1] is not None:
                continue
            traits = orjson.loads(row[2])
            found[str(row[0])] = Person(
                profile_id=str(row[0]),
                traits=traits,
                consent=orjson.loads(row[3]),
                channels=orjson.loads(row[4]),
                email=row[5] or _text(traits.get("email")),
                phone=row[6] or _text(traits.get("phone")),
                order_count=int(row[7]),
                event_count=int(row[8]),
                first_seen=int(row[9]),
                last_seen=int(row[10]),
            )
    for profile_id in wanted:
        if profile_id not in found:
            found[profile_id] = person_of(conn, workspace_id, profile_id)
    return found


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True, slots=True)
class Decision:
    status: str  # queued, held, dropped
    reason: str | None  # the guard that stopped or held it
    due_at: int
    to: str | None
    checks: tuple[dict[str, Any], ...]  # every guard's answer, in order, for the trace


def consent_for(person: Person, purpose: str, channel: str) -> bool | None:
    """The person's answer for `purpose` on `channel` (their ``*`` answer when they gave
    none for the channel); None when they never answered."""
    by_channel = person.consent.get(purpose)
    if not isinstance(by_channel, dict):
        return None
    entry = by_channel.get(channel) or by_channel.get("*")
    if not isinstance(entry, dict):
        return None
    return bool(entry.get("granted"))


def local_zone(person: Person | None, config: JourneyConfig) -> ZoneInfo:
    for name in ((person.traits.get("timezone") if person else None), config.timezone):
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def next_time_of_day(now_ms: int, hour: int, minute: int, zone: ZoneInfo) -> int:
    """The first moment at or after `now_ms` whose local time in `zone` is hour:minute."""
    local = datetime.fromtimestamp(now_ms / 1000, zone)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target < local.replace(microsecond=0):
        target = (target + timedelta(days=1)).replace(hour=hour, minute=minute)
    return int(target.timestamp() * 1000)


def _quiet_until(now_ms: int, config: JourneyConfig, zone: ZoneInfo) -> int | None:
    """When quiet hours end, if `now_ms` falls inside them; else None."""
    local = datetime.fromtimestamp(now_ms / 1000, zone)
    minutes = local.hour * 60 + local.minute
    start = config.quiet_start[0] * 60 + config.quiet_start[1]
    end = config.quiet_end[0] * 60 + config.quiet_end[1]
    inside = (start <= minutes or minutes < end) if start > end else start <= minutes < end
    if not inside:
        return None
    return next_time_of_day(now_ms, config.quiet_end[0], config.quiet_end[1], zone)


def _sent_within(
    conn: Connection, workspace_id: str, profile_id: str, channel: str, since: int
) -> int:
    s = sends.c
    query = select(func.count()).where(
        s.workspace_id == workspace_id,
        s.profile_id == profile_id,
        s.marketing.is_(True),
        s.status.in_(COUNTED),
        s.created_at > since,
    )
    if channel != "*":
        query = query.where(s.channel == channel)
    return int(conn.execute(query).scalar() or 0)


def check(
    conn: Connection,
    *,
    workspace_id: str,
    person: Person | None,
    channel: str,
    purpose: str,
    arm: str,
    now_ms: int,
    config: JourneyConfig,
    skip_caps: bool = False,
) -> Decision:
    """Run the guards for one message (see the module doc)."""
    checks: list[dict[str, Any]] = []
    marketing = purpose != "transactional"

    def stop(reason: str, **detail: Any) -> Decision:
        checks.append({"guard": reason, "passed": False, **detail})
        return Decision("dropped", reason, now_ms, None, tuple(checks))

    if arm != "journey" and marketing:
        return stop(arm, note="kept out of marketing to measure uplift")
    if person is None:
        return stop("no_profile")
    answer = consent_for(person, purpose, channel)
    if marketing and answer is not True:
        return stop(
            "consent",
            purpose=purpose,
            channel=channel,
            answer="not given" if answer is None else "withdrawn",
        )
    if not marketing and answer is False:
        return stop("consent", purpose=purpose, channel=channel, answer="withdrawn")
    checks.append({"guard": "consent", "passed": True, "purpose": purpose, "channel": channel})
    to = person.email if channel == "email" else person.phone if channel == "sms" else None
    if channel in ("email", "sms") and not to:
        return stop("no_address", channel=channel)
    checks.append({"guard": "address", "passed": True})
    if marketing:
        claim = is_suppressed(conn, workspace_id, person.profile_id, now_ms)
        if claim is not None:
            return stop("suppressed", staff_id=claim.staff_id, signal_id=claim.signal_id)
        checks.append({"guard": "suppression", "passed": True})
        if not skip_caps:
            for cap in config.caps:
                if cap.channel not in ("*", channel):
                    continue
                used = _sent_within(
                    conn, workspace_id, person.profile_id, cap.channel, now_ms - cap.window_ms
                )
                if used >= cap.limit:
                    return stop("frequency_cap", cap=cap.label, sent=used)
            checks.append({"guard": "frequency_caps", "passed": True})
    zone = local_zone(person, config)
    if channel in config.quiet_channels:
        until = _quiet_until(now_ms, config, zone)
        if until is not None:
            checks.append(
                {"guard": "quiet_hours", "passed": False, "until": until, "timezone": str(zone)}
            )
            return Decision("held", "quiet_hours", until, to, tuple(checks))
        checks.append({"guard": "quiet_hours", "passed": True})
    return Decision("queued", None, now_ms, to, tuple(checks))
