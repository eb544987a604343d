"""Read the identity graph: a profile's identifiers, its merge ledger, one merge, and which
profile a merged profile (or an event) belongs to now.

Every function is scoped to one workspace: an id from another workspace reads as unknown.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, or_, select

from polku.errors import Conflict, NotFound
from polku.identity.identifiers import IdentityConfig
from polku.identity.tables import event_profiles, identifiers, merges, profile_ids
from polku.log.tables import log_events

__all__ = [
    "KnownIdentifier",
    "MergeEntry",
    "event_carrier",
    "event_profile",
    "get_merge",
    "merge_evidence",
    "merge_ledger",
    "merge_reason",
    "profile_identifiers",
    "require_merge",
    "resolve_profile",
    "unknown_profile",
]


_MERGE_REASON_TAIL: Final = " on this event belongs to both profiles"


def merge_reason(kind: str, value: str) -> str:
    """The merge ledger's reason for a merge on a shared identifier (English, stored)."""
    return f"{kind} {value!r}{_MERGE_REASON_TAIL}"


def merge_evidence(reason: str) -> tuple[str, str] | None:
    """The identifier (type, value) a reason of `merge_reason` names, so a reader can say it
    in another language; None for any other reason."""
    if not reason.endswith(_MERGE_REASON_TAIL):
        return None
    kind, _, quoted = reason[: -len(_MERGE_REASON_TAIL)].partition(" ")
    try:
        value = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return None
    return (kind, value) if kind and isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class KnownIdentifier:
    """One identifier a profile holds, and the event time it was first seen."""

    type: str
    value: str
    first_seen: int  # epoch milliseconds (event time)
    shared: bool


@dataclass(frozen=True, slots=True)
class MergeEntry:
    """One row of the merge ledger: who absorbed whom, on which evidence, and if undone."""

    merge_id: str
    winner_id: str
    loser_id: str
    evidence_offset: int
    evidence_message_id: str
    reason: str
    identifiers: tuple[tuple[str, str], ...]  # (type, value) the loser brought
    merged_at: int  # event time of the evidence, epoch milliseconds
    undone_at: int | None
    undone_offset: int | None

    @property
    def undone(self) -> bool:
        return self.undone_at is not None

    @property
    def evidence(self) -> tuple[str, str] | None:
        """The shared identifier (type, value) the reason names, if it names one."""
        return merge_evidence(self.reason)


def _entry(row: Any) -> MergeEntry:
    listing = orjson.loads(row.identifiers)
    return MergeEntry(
        merge_id=row.merge_id,
        winner_id=row.winner_id,
        loser_id=row.loser_id,
        evidence_offset=row.evidence_offset,
        evidence_message_id=row.evidence_message_id,
        reason=row.reason,
        identifiers=tuple((str(kind), str(value)) for kind, value in listing),
        merged_at=row.merged_at,
        undone_at=row.undone_at,
        undone_offset=row.undone_offset,
    )


def resolve_profile(conn: Connection, workspace_id: str, profile_id: str) -> str | None:
    """The profile that holds `profile_id` now: itself, or the one it was merged into
    (following chains of merges). None if the workspace has no such profile."""
    seen: set[str] = set()
    current = profile_id
    while True:
        row = conn.execute(
            select(profile_ids.c.merged_into).where(
                profile_ids.c.workspace_id == workspace_id, profile_ids.c.profile_id == current
            )
        ).first()
        if row is None:
            return None if current == profile_id else current
        seen.add(current)
        parent = row.merged_into
        if parent is None or parent in seen:
            return current
        current = parent


def profile_identifiers(
    conn: Connection, workspace_id: str, profile_id: str, config: IdentityConfig
) -> dict[str, list[KnownIdentifier]]:
    """The identifiers `profile_id` holds, grouped by type, strongest type first, each group
    in the order they were first seen. Empty for a profile merged into another one: its
    identifiers belong to the surviving profile (see `resolve_profile`)."""
    rows = conn.execute(
        select(
            identifiers.c.id_type,
            identifiers.c.value,
            identifiers.c.first_seen,
            identifiers.c.shared,
        )
        .where(
            identifiers.c.workspace_id == workspace_id,
            identifiers.c.profile_id == profile_id,
        )
        .order_by(identifiers.c.first_seen, identifiers.c.added_offset, identifiers.c.value)
    )
    grouped: dict[str, list[KnownIdentifier]] = defaultdict(list)
    for kind, value, first_seen, shared in rows:
        grouped[kind].append(KnownIdentifier(kind, value, first_seen, bool(shared)))
    rank = {t.name: t.priority for t in config.types}
    return {kind: grouped[kind] for kind in sorted(grouped, key=lambda k: (rank.get(k, 99), k))}


def merge_ledger(conn: Connection, workspace_id: str, profile_id: str) -> list[MergeEntry]:
    """Every merge `profile_id` took part in, as the survivor or as the merged profile,
    oldest first (by the evidence event's position in the log)."""
    rows = conn.execute(
        select(merges)
        .where(
            merges.c.workspace_id == workspace_id,
            or_(merges.c.winner_id == profile_id, merges.c.loser_id == profile_id),
        )
        .order_by(merges.c.evidence_offset, merges.c.merge_id)
    )
    return [_entry(row) for row in rows]


def get_merge(conn: Connection, workspace_id: str, merge_id: str) -> MergeEntry | None:
    """One ledger entry, or None if the workspace has no merge with this id."""
    row = conn.execute(
        select(merges).where(merges.c.workspace_id == workspace_id, merges.c.merge_id == merge_id)
    ).first()
    return None if row is None else _entry(row)


def unknown_profile(profile_id: str) -> NotFound:
    """The one error every route gives for a profile id the workspace does not have."""
    return NotFound(
        f"There is no profile {profile_id[:80]!r} in this workspace.",
        field="profile_id",
        hint="Find the id with GET /v1/profiles?q=... or GET /v1/profiles/lookup; a new "
        "profile appears once the pipeline has processed its first event.",
        message_id="unknown_profile",
        params={"profile": profile_id[:80]},
    )


def require_merge(conn: Connection, workspace_id: str, merge_id: str) -> MergeEntry:
    """`get_merge`, or `NotFound` naming the field and where to find merge ids."""
    entry = get_merge(conn, workspace_id, merge_id)
    if entry is None:
        raise NotFound(
            f"There is no merge {merge_id!r} in this workspace.",
            field="merge_id",
            hint="List a profile's merges with GET /v1/profiles/{id}/merges.",
            message_id="unknown_merge",
            params={"merge": merge_id},
        )
    return entry


def event_profile(conn: Connection, workspace_id: str, message_id: str) -> str | None:
    """The profile an event (by its messageId) is attributed to now; None if the event is
    unknown, not processed yet, or carried no usable identifier."""
    return conn.execute(
        select(event_profiles.c.profile_id)
        .join(log_events, log_events.c.offset == event_profiles.c.offset)
        .where(log_events.c.workspace_id == workspace_id, log_events.c.message_id == message_id)
    ).scalar()


# Identifier types an event can carry in `properties` (polku.identity.identifiers).
_PROPERTY_TYPES: Final = ("email", "phone", "loyalty_card", "pos_customer_id")


def event_carrier(
    conn: Connection,
    workspace_id: str,
    profile_id: str,
    config: IdentityConfig,
    *,
    device: str,
) -> dict[str, Any]:
    """The identity fields of an event Polku records about `profile_id` (a consent change,
    an unsubscribe, a message sent) that identity resolution gives to that profile: its
    user id, else an anonymous id of it, else its strongest identifier that `properties`
    can carry, with `device` as a shared device's browser id (so identity never makes that
    id anyone's). Only identifiers the profile holds, so the event adds none.

    Raises `NotFound` for an unknown profile, `Conflict` when no event could name it.
    """
    holder = resolve_profile(conn, workspace_id, profile_id)
    if holder is None:
        raise unknown_profile(profile_id)
    held = profile_identifiers(conn, workspace_id, holder, config)
    usable = {kind: [i.value for i in found if not i.shared] for kind, found in held.items()}
    if usable.get("user_id"):
        return {"userId": usable["user_id"][0]}
    if usable.get("anonymous_id"):
        return {"anonymousId": usable["anonymous_id"][0]}
    for kind in held:  # strongest type first
        if kind in _PROPERTY_TYPES and usable.get(kind):
            return {
                "anonymousId": device,
                "context": {"device": {"shared": True}},
                "properties": {kind: usable[kind][0]},
            }
    raise Conflict(
        f"Profile {holder!r} has no identifier an event can carry (a user id, an anonymous "
        "id, an email, a phone or a loyalty card).",
        field="profile_id",
        hint="Send the event from a system that knows one of the person's identifiers; "
        "nothing can be recorded for this profile until one of its events names it.",
        message_id="profile_without_identifier",
        params={"profile": holder},
    )
