"""The identity consumer: decide which profile each event belongs to, merging profiles when
an event proves two of them are one person, and undoing a merge when told to.

Resolution of one event (identifiers in priority order, highest first):

1. Identifiers nobody owns yet are held back until a profile is chosen.
2. The first identifier that belongs to a profile chooses it, if that profile can also take
   the held-back identifiers within the per-type limits. If it cannot (the event's userId is
   new but its anonymousId belongs to someone with another userId: a shared browser), a new
   profile is made for the held-back identifiers and the rest of the event's identifiers
   are ignored.
3. Every later identifier is attached to the chosen profile if it is new and within limits;
   if it belongs to another profile, that profile is merged into the chosen one unless the
   merge would break a limit (two userIds) or an un-merge has kept the two apart (which also
   holds for any profile merged into either of them later). The first identifier that
   cannot be taken stops the walk: it and all lower-priority ones are ignored for this
   event (never half-joined).
4. With no known identifier at all, the event starts a new profile.

Shared devices (tills, kiosks) are never used to join. Profile and merge ids are derived from
the events, so `polku replay` rebuilds exactly the same graph.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    and_,
    delete,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)

from polku.events import INTERNAL_PREFIX, LoggedEvent
from polku.identity.identifiers import IdentityConfig, extract, identifier_keys
from polku.identity.queries import merge_reason
from polku.identity.tables import event_profiles, identifiers, merge_blocks, merges, profile_ids
from polku.log.tables import log_events
from polku.pipeline.consumer import Apply
from polku.storage.bulk import fetch_in, insert_rows

__all__ = [
    "UNMERGE",
    "IdentityConsumer",
    "canonical",
    "lock_graphs",
    "merge_id_for",
    "profile_id_for",
]

UNMERGE = "polku.unmerge"
"""Control event: properties.merge_id names the ledger entry to undo."""

logger = logging.getLogger(__name__)

_Key = tuple[str, str]  # (id_type, value)
_IN_CHUNK = 500
_OWNERS = (
    "SELECT value, profile_id FROM identity_identifiers "
    "WHERE workspace_id = ? AND id_type = ? AND value IN (?*)"
)
_MEMBERS = (
    "SELECT profile_id, id_type, value FROM identity_identifiers "
    "WHERE workspace_id = ? AND profile_id IN (?*)"
)
_PROFILE_COLUMNS = ("profile_id", "workspace_id", "merged_into", "created_at", "created_offset")
_IDENTIFIER_COLUMNS = (
    "workspace_id",
    "id_type",
    "value",
    "profile_id",
    "shared",
    "first_seen",
    "added_offset",
)
_ASSIGNMENT_COLUMNS = (
    "offset",
    "workspace_id",
    "profile_id",
    "timestamp",
    "type",
    "event",
    "channel",
    "store_id",
)


def lock_graphs(conn: Connection, workspace_ids: Iterable[str]) -> None:
    """Hold the identity graphs of these workspaces until `conn`'s transaction ends.

    In the production mode, workers resolve different partitions at the same time, and a
    person's events may sit in two partitions (the anonymous ones under the anonymousId, the
    logged-in ones under the userId). Resolution reads the graph, decides, and writes; two
    workers deciding on the same identifiers at once could both create a profile for them.
    So each resolves under a transaction-level advisory lock per workspace, taken in sorted
    order (no deadlock). Identity is the one serialised stage of the pipeline; everything
    after it runs in parallel (docs/architecture.md, "Production mode").
    """
    if conn.dialect.name != "postgresql":
        return  # SQLite has one writer anyway
    for workspace_id in sorted(workspace_ids):
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _graph_key(workspace_id)})


def _graph_key(workspace_id: str) -> int:
    digest = hashlib.blake2b(f"polku.identity\x00{workspace_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def profile_id_for(workspace_id: str, message_id: str) -> str:
    digest = hashlib.blake2b(f"{workspace_id}\x00{message_id}".encode(), digest_size=12)
    return "p_" + digest.hexdigest()


def merge_id_for(workspace_id: str, evidence_message_id: str, loser_id: str) -> str:
    raw = f"{workspace_id}\x00{evidence_message_id}\x00{loser_id}".encode()
    return "mg_" + hashlib.blake2b(raw, digest_size=12).hexdigest()


@dataclass(slots=True)
class _Workspace:
    """What one chunk knows about one workspace's graph; thrown away after the chunk.

    `owner` holds the owners as first read or attached; `redirect` maps each profile merged
    in this chunk to the one it was merged into, so `_owner` follows it instead of every
    owner entry being rewritten on each merge.
    """

    workspace_id: str
    owner: dict[_Key, str | None] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)
    members: dict[str, dict[str, set[str]]] = field(default_factory=dict)


def _owner(space: _Workspace, key: _Key) -> str | None:
    owner = space.owner[key]
    if owner is not None and space.redirect:
        while owner in space.redirect:
            owner = space.redirect[owner]
    return owner


class IdentityConsumer:
    name = "identity"

    def __init__(self, config: IdentityConfig) -> None:
        self._config = config
        self._limits = {t.name: t.limit for t in config.types}

    # -- Consumer ------------------------------------------------------------------------

    def reset(self, conn: Connection) -> None:
        for table in (event_profiles, merge_blocks, merges, identifiers, profile_ids):
            conn.execute(delete(table))

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        config = self._config
        if shared:
            lock_graphs(conn, {e.workspace_id for e in events})
        if len(events) == 1 and events[0].type == UNMERGE:
            event = events[0]
            return lambda writer: _unmerge(writer, config, event)
        if any(e.type == UNMERGE for e in events):  # the runner hands control events alone
            raise ValueError("an un-merge must be processed in a batch of its own")
        run = _Chunk(conn, config, self._limits)
        run.prefetch(events)
        for event in events:
            run.resolve(event)
        run.seal()
        return run.apply


def _found(message: dict[str, Any], config: IdentityConfig) -> list[_Key]:
    """The identifiers resolution may join on (shared devices' ones never do)."""
    return [(kind, value) for kind, value, shared in identifier_keys(message, config) if not shared]


class _Chunk:
    """Resolves a run of events with batched reads and writes.

    Rows to write are tuples in the column order of their table (`_PROFILE_COLUMNS`, ...):
    a chunk makes one of each per event, and dictionaries would cost more than the insert.
    """

    def __init__(self, conn: Connection, config: IdentityConfig, limits: dict[str, int]) -> None:
        self.conn = conn
        self.config = config
        self.limits = limits
        self.spaces: dict[str, _Workspace] = {}
        self.new_identifiers: list[tuple[Any, ...]] = []
        self.new_profiles: list[tuple[Any, ...]] = []
        self.assignments: list[tuple[Any, ...]] = []
        self.found: dict[int, list[_Key]] = {}
        # identifiers attached in this chunk, by (workspace, profile), not yet written
        self.pending: dict[tuple[str, str], list[_Key]] = defaultdict(list)
        # merges decided in this chunk, not yet written: winner -> losers
        self.merged: dict[tuple[str, str], list[str]] = defaultdict(list)
        # the writes, in order: sealed insert batches and merges
        self.ops: list[Callable[[Connection], None]] = []

    # -- reads ---------------------------------------------------------------------------

    def _space(self, workspace_id: str) -> _Workspace:
        space = self.spaces.get(workspace_id)
        if space is None:
            space = self.spaces[workspace_id] = _Workspace(workspace_id)
        return space

    def _prefetch(self, space: _Workspace, keys: Iterable[_Key]) -> None:
        by_type: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            if key not in space.owner:
                space.owner[key] = None
                by_type[key[0]].append(key[1])
        for id_type, values in by_type.items():
            rows = fetch_in(
                self.conn, _OWNERS, values, (space.workspace_id, id_type), chunk=_IN_CHUNK
            )
            for value, profile_id in rows:
                space.owner[(id_type, value)] = profile_id

    def _prefetch_members(self, space: _Workspace, profile_ids: Iterable[str]) -> None:
        """Load the identifiers of profiles that resolution will check limits against, in a
        few queries instead of one per profile (before anything is attached in the chunk)."""
        wanted = sorted(p for p in set(profile_ids) if p not in space.members)
        if not wanted:
            return
        loaded: dict[str, dict[str, set[str]]] = {p: defaultdict(set) for p in wanted}
        rows = fetch_in(self.conn, _MEMBERS, wanted, (space.workspace_id,), chunk=_IN_CHUNK)
        for profile_id, id_type, value in rows:
            loaded[profile_id][id_type].add(value)
        for profile_id, known in loaded.items():
            for id_type, value in self.pending.get((space.workspace_id, profile_id), ()):
                known[id_type].add(value)
            space.members[profile_id] = known

    def _members(self, space: _Workspace, profile_id: str) -> dict[str, set[str]]:
        """All identifiers of a profile by type (loaded once per chunk)."""
        known = space.members.get(profile_id)
        if known is None:
            known = defaultdict(set)
            rows = fetch_in(
                self.conn, _MEMBERS, [profile_id], (space.workspace_id,), chunk=_IN_CHUNK
            )
            for _, id_type, value in rows:
                known[id_type].add(value)
            for id_type, value in self.pending.get((space.workspace_id, profile_id), ()):
                known[id_type].add(value)
            space.members[profile_id] = known
        return known

    def _fits(self, space: _Workspace, profile_id: str, extra: Sequence[_Key]) -> bool:
        if not extra:
            return True
        members = self._members(space, profile_id)
        wanted: dict[str, set[str]] = defaultdict(set)
        for kind, value in extra:
            wanted[kind].add(value)
        return all(
            len(members.get(kind, set()) | values) <= self.limits.get(kind, 1)
            for kind, values in wanted.items()
        )

    def _mergeable(self, space: _Workspace, winner: str, loser: str) -> bool:
        a, b = self._members(space, winner), self._members(space, loser)
        for kind in set(a) | set(b):
            if len(a.get(kind, set()) | b.get(kind, set())) > self.limits.get(kind, 1):
                return False
        return not _kept_apart(self.conn, space.workspace_id, winner, loser, self.merged)

    # -- resolution ----------------------------------------------------------------------

    def prefetch(self, events: Sequence[LoggedEvent]) -> None:
        """Extract every event's identifiers and look up their owners in a few queries, then
        the identifiers of the profiles that events will check limits against."""
        keys: dict[str, list[_Key]] = defaultdict(list)
        for event in events:
            if event.type.startswith(INTERNAL_PREFIX):
                continue
            found = _found(event.message, self.config)
            self.found[event.offset] = found
            keys[event.workspace_id].extend(found)
        for workspace_id, wanted in keys.items():
            self._prefetch(self._space(workspace_id), dict.fromkeys(wanted))
        checked: dict[str, list[str]] = defaultdict(list)
        for event in events:
            keys_found = self.found.get(event.offset)
            if keys_found is None or len(keys_found) < 2:
                continue  # one identifier: it has an owner or starts a profile, no check
            owner = self._space(event.workspace_id).owner
            owners = {owner[key] for key in keys_found}
            if len(owners) > 1:  # new identifiers to attach, or two profiles to merge
                checked[event.workspace_id].extend(p for p in owners if p is not None)
        for workspace_id, checked_ids in checked.items():
            self._prefetch_members(self._space(workspace_id), checked_ids)

    def resolve(self, event: LoggedEvent) -> None:
        space = self._space(event.workspace_id)
        found = self.found.pop(event.offset, None)
        if found is None:
            found = _found(event.message, self.config)
            self._prefetch(space, found)
        if not found:
            return  # nothing to resolve on (collection rejects such events; control events)

        current: str | None = None
        held: list[_Key] = []
        for key in found:
            owner = _owner(space, key)
            if current is None:
                if owner is None:
                    held.append(key)
                    continue
                if self._fits(space, owner, held):
                    current = owner
                    self._attach(space, owner, held, event)
                    continue
                current = self._new_profile(space, event, held)
                break
            if owner == current:
                continue
            if owner is None:
                if self._fits(space, current, [key]):
                    self._attach(space, current, [key], event)
                    continue
                break
            if not self._mergeable(space, current, owner):
                break
            self._merge(space, current, owner, event, key)
        if current is None:
            current = self._new_profile(space, event, held)

        message = event.message
        context = message.get("context")
        properties = message.get("properties")
        channel = context.get("channel") if isinstance(context, dict) else None
        store = properties.get("store_id") if isinstance(properties, dict) else None
        self.assignments.append(
            (
                event.offset,
                event.workspace_id,
                current,
                event.timestamp,
                event.type,
                event.event,
                channel if isinstance(channel, str) else None,
                str(store)[:100] if isinstance(store, (str, int)) else None,
            )
        )

    def _new_profile(self, space: _Workspace, event: LoggedEvent, held: Sequence[_Key]) -> str:
        profile_id = profile_id_for(event.workspace_id, event.message_id)
        self.new_profiles.append(
            (profile_id, event.workspace_id, None, event.timestamp, event.offset)
        )
        space.members[profile_id] = defaultdict(set)
        taken: list[_Key] = []
        for key in held:  # all new; keep within limits, highest priority first
            if self._fits(space, profile_id, [*taken, key]):
                taken.append(key)
        self._attach(space, profile_id, taken, event)
        return profile_id

    def _attach(
        self, space: _Workspace, profile_id: str, keys: Sequence[_Key], event: LoggedEvent
    ) -> None:
        if not keys:
            return
        members = self._members(space, profile_id)
        pending = self.pending[(space.workspace_id, profile_id)]
        for key in keys:
            space.owner[key] = profile_id
            members[key[0]].add(key[1])
            pending.append(key)
            self.new_identifiers.append(
                (
                    space.workspace_id,
                    key[0],
                    key[1],
                    profile_id,
                    False,
                    event.timestamp,
                    event.offset,
                )
            )

    def _merge(
        self, space: _Workspace, winner: str, loser: str, event: LoggedEvent, via: _Key
    ) -> None:
        ws = space.workspace_id
        loser_ids = self._members(space, loser)
        listing = sorted([kind, value] for kind, values in loser_ids.items() for value in values)
        entry = {
            "merge_id": merge_id_for(ws, event.message_id, loser),
            "workspace_id": ws,
            "winner_id": winner,
            "loser_id": loser,
            "evidence_offset": event.offset,
            "evidence_message_id": event.message_id,
            "reason": merge_reason(via[0], via[1]),
            "identifiers": orjson.dumps(listing).decode(),
            "merged_at": event.timestamp,
        }
        self.seal()  # rows attached so far must exist before they are moved to the winner
        self.ops.append(lambda conn: _write_merge(conn, entry))
        self.merged[(ws, winner)].append(loser)
        winner_ids = self._members(space, winner)
        for kind, values in loser_ids.items():
            winner_ids[kind] |= values
        space.members.pop(loser, None)
        space.redirect[loser] = winner

    # -- writes --------------------------------------------------------------------------

    def seal(self) -> None:
        """Queue the rows gathered so far as one write step (in order with the merges)."""
        batches = [
            (table, columns, rows)
            for table, columns, rows in (
                (profile_ids, _PROFILE_COLUMNS, self.new_profiles),
                (identifiers, _IDENTIFIER_COLUMNS, self.new_identifiers),
                (event_profiles, _ASSIGNMENT_COLUMNS, self.assignments),
            )
            if rows
        ]
        if batches:

            def write(conn: Connection) -> None:
                for table, columns, rows in batches:
                    insert_rows(conn, table, columns, rows)

            self.ops.append(write)
        self.new_profiles = []
        self.new_identifiers = []
        self.assignments = []

    def apply(self, conn: Connection) -> None:
        for op in self.ops:
            op(conn)


def _write_merge(conn: Connection, entry: dict[str, Any]) -> None:
    """Record one merge in the ledger and move the loser's identifiers and events."""
    ws, winner, loser = entry["workspace_id"], entry["winner_id"], entry["loser_id"]
    conn.execute(insert(merges).values(entry))
    conn.execute(
        update(identifiers)
        .where(identifiers.c.workspace_id == ws, identifiers.c.profile_id == loser)
        .values(profile_id=winner)
    )
    conn.execute(
        update(event_profiles)
        .where(event_profiles.c.workspace_id == ws, event_profiles.c.profile_id == loser)
        .values(profile_id=winner)
    )
    conn.execute(
        update(profile_ids).where(profile_ids.c.profile_id == loser).values(merged_into=winner)
    )


def _unmerge(conn: Connection, config: IdentityConfig, event: LoggedEvent) -> None:
    """Undo one merge: give the loser back its identifiers and the events they identify."""
    properties = event.message.get("properties") or {}
    merge_id = properties.get("merge_id")
    row = conn.execute(
        select(merges).where(
            merges.c.merge_id == merge_id, merges.c.workspace_id == event.workspace_id
        )
    ).first()
    if row is None:
        raise ValueError(
            f"merge {merge_id!r} does not exist in workspace {event.workspace_id!r}; "
            "un-merge events are written by POST /v1/identity/merges/{merge_id}/unmerge"
        )
    if row.undone_at is not None:
        # Two requests raced past the API's check; the first one did the work. Skipping the
        # repeat keeps the consumer idempotent (and replays it the same way).
        logger.info("merge %s was already undone at offset %s", merge_id, row.undone_offset)
        return
    ws = event.workspace_id
    current = canonical(conn, row.winner_id)
    loser = row.loser_id
    keys = [(kind, value) for kind, value in orjson.loads(row.identifiers)]

    conn.execute(
        update(profile_ids).where(profile_ids.c.profile_id == loser).values(merged_into=None)
    )
    for start in range(0, len(keys), _IN_CHUNK):
        conn.execute(
            update(identifiers)
            .where(
                identifiers.c.workspace_id == ws,
                identifiers.c.profile_id == current,
                tuple_(identifiers.c.id_type, identifiers.c.value).in_(
                    keys[start : start + _IN_CHUNK]
                ),
            )
            .values(profile_id=loser)
        )

    owners = {key: loser for key in keys}
    moved: list[int] = []
    rows = conn.execute(
        select(event_profiles.c.offset, log_events.c.payload)
        .join(log_events, log_events.c.offset == event_profiles.c.offset)
        .where(event_profiles.c.profile_id == current, event_profiles.c.offset < event.offset)
    )
    for offset, payload in rows:
        found = [i for i in extract(orjson.loads(payload), config) if not i.shared]
        if found and owners.get((found[0].type, found[0].value)) == loser:
            moved.append(offset)
    for start in range(0, len(moved), _IN_CHUNK):
        conn.execute(
            update(event_profiles)
            .where(event_profiles.c.offset.in_(moved[start : start + _IN_CHUNK]))
            .values(profile_id=loser)
        )
    conn.execute(
        update(merges)
        .where(merges.c.merge_id == row.merge_id)
        .values(undone_at=event.timestamp, undone_offset=event.offset)
    )
    # Keep the two original profiles apart; `_kept_apart` extends this to whatever profile
    # either of them is merged into later.
    pair = sorted((row.winner_id, loser))
    exists = conn.execute(
        select(merge_blocks.c.merge_id).where(
            and_(
                merge_blocks.c.workspace_id == ws,
                merge_blocks.c.profile_a == pair[0],
                merge_blocks.c.profile_b == pair[1],
            )
        )
    ).first()
    if exists is None:
        conn.execute(
            insert(merge_blocks).values(
                workspace_id=ws, profile_a=pair[0], profile_b=pair[1], merge_id=row.merge_id
            )
        )


def _family(
    conn: Connection,
    workspace_id: str,
    profile_id: str,
    pending: Mapping[tuple[str, str], list[str]],
) -> set[str]:
    """`profile_id` and every profile merged into it, directly or through others (including
    merges decided earlier in the batch being prepared, `pending`)."""
    family = {profile_id}
    frontier = [profile_id]
    while frontier:
        extra = [loser for winner in frontier for loser in pending.get((workspace_id, winner), ())]
        rows = conn.execute(
            select(merges.c.loser_id).where(
                merges.c.workspace_id == workspace_id,
                merges.c.winner_id.in_(frontier),
                merges.c.undone_at.is_(None),
            )
        )
        found = [loser for (loser,) in rows] + extra
        frontier = [loser for loser in dict.fromkeys(found) if loser not in family]
        family.update(frontier)
    return family


def _kept_apart(
    conn: Connection,
    workspace_id: str,
    winner: str,
    loser: str,
    pending: Mapping[tuple[str, str], list[str]],
) -> bool:
    """Whether an un-merge separated a profile merged into `winner` (or itself) from one
    merged into `loser` (or itself): such profiles are different people for good."""
    any_block = conn.execute(
        select(merge_blocks.c.merge_id).where(merge_blocks.c.workspace_id == workspace_id).limit(1)
    ).first()
    if any_block is None:  # the common case: nothing was ever un-merged in this workspace
        return False
    ours = _family(conn, workspace_id, winner, pending)
    theirs = _family(conn, workspace_id, loser, pending)
    blocked = conn.execute(
        select(merge_blocks.c.merge_id)
        .where(
            merge_blocks.c.workspace_id == workspace_id,
            or_(
                and_(merge_blocks.c.profile_a.in_(ours), merge_blocks.c.profile_b.in_(theirs)),
                and_(merge_blocks.c.profile_a.in_(theirs), merge_blocks.c.profile_b.in_(ours)),
            ),
        )
        .limit(1)
    ).first()
    return blocked is not None


def canonical(conn: Connection, profile_id: str) -> str:
    """Follow merged_into to the profile that holds a merged one now."""
    seen = {profile_id}
    while True:
        parent = conn.execute(
            select(profile_ids.c.merged_into).where(profile_ids.c.profile_id == profile_id)
        ).scalar()
        if parent is None or parent in seen:
            return profile_id
        seen.add(parent)
        profile_id = parent
