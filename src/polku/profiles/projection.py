"""The profiles consumer: keep each profile's state current from the events identity has
assigned to it, apply merges, and rebuild both sides of an un-merge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, or_, select

from polku.events import LoggedEvent
from polku.identity.projection import UNMERGE, canonical
from polku.identity.tables import event_profiles, merges
from polku.identity.tables import profile_ids as profile_ids_table
from polku.log.sql import event_from_row
from polku.log.tables import checkpoints, log_events
from polku.pipeline.consumer import Apply
from polku.profiles.state import ProfileState, apply_event, changes_traits, merge_states
from polku.profiles.tables import profiles
from polku.storage.bulk import fetch_in, fetch_rows, insert_rows, update_rows

__all__ = ["ProfilesConsumer", "load_states", "lock_profiles"]

_IN_CHUNK = 400
_STATE_COLUMNS = (
    "profile_id",
    "workspace_id",
    "merged_into",
    "traits",
    "trait_times",
    "consent",
    "channels",
    "first_seen",
    "last_seen",
    "event_count",
    "order_count",
    "last_offset",
)
_LOAD = f"SELECT {', '.join(_STATE_COLUMNS)} FROM profiles WHERE profile_id IN (?*)"
_OWNERS = 'SELECT "offset", profile_id FROM identity_event_profiles WHERE "offset" BETWEEN ? AND ?'


def _from_row(row: Sequence[Any]) -> ProfileState:
    """A profile's whole state from a row of `_STATE_COLUMNS`."""
    return ProfileState(
        profile_id=row[0],
        workspace_id=row[1],
        merged_into=row[2],
        traits=orjson.loads(row[3]),
        trait_times=orjson.loads(row[4]),
        consent=orjson.loads(row[5]),
        channels=orjson.loads(row[6]),
        first_seen=row[7],
        last_seen=row[8],
        event_count=row[9],
        order_count=row[10],
        last_offset=row[11],
    )


def _counters_from_row(row: Sequence[Any]) -> ProfileState:
    """The state without traits and consent (left empty, not parsed): enough for events that
    only move counters and channels (see `changes_traits`)."""
    return ProfileState(
        profile_id=row[0],
        workspace_id=row[1],
        merged_into=row[2],
        channels=orjson.loads(row[6]),
        first_seen=row[7],
        last_seen=row[8],
        event_count=row[9],
        order_count=row[10],
        last_offset=row[11],
    )


_COLUMNS = (
    "merged_into",
    "traits",
    "trait_times",
    "consent",
    "channels",
    "first_seen",
    "last_seen",
    "event_count",
    "order_count",
    "last_offset",
    "email",
    "phone",
    "name",
    "workspace_id",
    "profile_id",
)
# What an event without traits or consent changes; the search columns (email, phone, name)
# and their indexes stay untouched.
_COUNTER_COLUMNS = (
    "channels",
    "first_seen",
    "last_seen",
    "event_count",
    "order_count",
    "last_offset",
)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _to_row(state: ProfileState) -> tuple[Any, ...]:
    """Values in `_COLUMNS` order (the key last, so the same tuple serves an UPDATE)."""
    return (
        state.merged_into,
        _json(state.traits),
        _json(state.trait_times),
        _json(state.consent),
        _json(state.channels),
        state.first_seen,
        state.last_seen,
        state.event_count,
        state.order_count,
        state.last_offset,
        state.email,
        state.phone,
        state.name,
        state.workspace_id,
        state.profile_id,
    )


def _to_counter_row(state: ProfileState) -> tuple[Any, ...]:
    """Values in `_COUNTER_COLUMNS` order, then the key (an UPDATE of those columns)."""
    return (
        _json(state.channels),
        state.first_seen,
        state.last_seen,
        state.event_count,
        state.order_count,
        state.last_offset,
        state.profile_id,
    )


def _merged_stub(workspace_id: str, profile_id: str, merged_into: str) -> ProfileState:
    return ProfileState(profile_id, workspace_id, 0, 0, merged_into=merged_into)


_Merge = tuple[str, str, str]  # (workspace_id, winner_id, loser_id)


def _owners(conn: Connection, first: int, last: int) -> tuple[dict[int, str], list[_Merge]]:
    """Which profile holds each event of offsets first..last, and the merges they caused
    (one partition: the chunk is a contiguous range of the log)."""
    owner: dict[int, str] = dict(fetch_rows(conn, _OWNERS, (first, last)))
    chunk_merges = conn.execute(
        select(merges.c.workspace_id, merges.c.winner_id, merges.c.loser_id)
        .where(merges.c.evidence_offset.between(first, last))
        .order_by(merges.c.evidence_offset)
    ).all()
    return owner, [(ws, winner, loser) for ws, winner, loser in chunk_merges]


def _owners_locked(conn: Connection, offsets: Sequence[int]) -> tuple[dict[int, str], list[_Merge]]:
    """`_owners` for a chunk of one partition among several processed at once, with every
    profile involved locked until the transaction ends.

    Another partition's worker may be folding one of these profiles into another, or adding
    its own events to it. Row locks on the profiles' identity rows serialise that per
    profile. The identity stage may re-point events to a merge's survivor between the read
    and the lock, so read again after locking until no new profile turns up; from then on
    every profile written here is locked, and a merge decided later waits for this
    transaction before its own profiles stage folds the two.
    """
    locked: set[str] = set()
    while True:
        owner: dict[int, str] = {}
        found: list[tuple[int, _Merge]] = []
        for start in range(0, len(offsets), _IN_CHUNK):
            part = offsets[start : start + _IN_CHUNK]
            owner.update(
                conn.execute(
                    select(event_profiles.c.offset, event_profiles.c.profile_id).where(
                        event_profiles.c.offset.in_(part)
                    )
                ).all()
            )
            rows = conn.execute(
                select(
                    merges.c.evidence_offset,
                    merges.c.workspace_id,
                    merges.c.winner_id,
                    merges.c.loser_id,
                ).where(merges.c.evidence_offset.in_(part))
            )
            found += [(offset, (ws, winner, loser)) for offset, ws, winner, loser in rows]
        found.sort(key=lambda item: item[0])
        chunk_merges = [merge for _, merge in found]
        wanted = set(owner.values())
        for _, winner, loser in chunk_merges:
            wanted.update((winner, loser))
        missing = wanted - locked
        if not missing:
            return owner, chunk_merges
        lock_profiles(conn, missing)
        locked |= missing


def lock_profiles(conn: Connection, profile_ids: Iterable[str]) -> None:
    """Lock these profiles' rows (in id order, so two workers cannot deadlock on them) until
    the transaction ends; a no-op on SQLite, which has one writer."""
    if conn.dialect.name != "postgresql":
        return
    ids = sorted(set(profile_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        conn.execute(
            select(profile_ids_table.c.profile_id)
            .where(profile_ids_table.c.profile_id.in_(ids[start : start + _IN_CHUNK]))
            .order_by(profile_ids_table.c.profile_id)
            .with_for_update(key_share=True)
        ).all()


def load_states(conn: Connection, profile_ids: Sequence[str]) -> dict[str, ProfileState]:
    """The stored states of `profile_ids` (those that have a row), parsed whole."""
    rows = fetch_in(conn, _LOAD, list(profile_ids), chunk=_IN_CHUNK)
    return {row[0]: _from_row(row) for row in rows}


class ProfilesConsumer:
    name = "profiles"

    def reset(self, conn: Connection) -> None:
        conn.execute(delete(profiles))

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        if len(events) == 1 and events[0].type == UNMERGE:
            event = events[0]
            return lambda writer: self._unmerge(writer, event, shared=shared)
        if shared:
            owner, chunk_merges = _owners_locked(conn, [e.offset for e in events])
        else:
            owner, chunk_merges = _owners(conn, events[0].offset, events[-1].offset)
        # Profiles whose traits or consent this chunk may change (and both sides of every
        # merge) are loaded and written whole; the others only have their counters moved.
        whole: set[str] = set()
        for _, winner, loser in chunk_merges:
            whole.update((winner, loser))
        for event in events:
            profile_id = owner.get(event.offset)
            if profile_id is not None and profile_id not in whole and changes_traits(event):
                whole.add(profile_id)
        wanted = set(owner.values())
        wanted.update(whole)
        states: dict[str, ProfileState] = {}
        counters_only: set[str] = set()
        for row in fetch_in(conn, _LOAD, sorted(wanted), chunk=_IN_CHUNK):
            if row[0] in whole:
                states[row[0]] = _from_row(row)
            else:
                states[row[0]] = _counters_from_row(row)
                counters_only.add(row[0])
        existing = set(states)

        for workspace_id, winner, loser in chunk_merges:
            lost = states.get(loser)
            if lost is not None and lost.merged_into is None:
                kept = states.get(winner)
                if kept is None:
                    kept = states[winner] = ProfileState(
                        winner, workspace_id, lost.first_seen, lost.last_seen
                    )
                merge_states(kept, lost)
            # Every merged profile keeps an empty row pointing at the survivor, whether or not
            # it had a row before this chunk, so the table does not depend on chunk borders
            # (a replay reads the log in other chunks than live processing did).
            states[loser] = _merged_stub(workspace_id, loser, winner)

        for event in events:
            profile_id = owner.get(event.offset)
            if profile_id is None:
                continue
            state = states.get(profile_id)
            if state is None:
                state = states[profile_id] = ProfileState(
                    profile_id, event.workspace_id, event.timestamp, event.timestamp
                )
            apply_event(state, event)

        return lambda writer: self._write(writer, states, existing, counters_only)

    def _write(
        self,
        conn: Connection,
        states: dict[str, ProfileState],
        existing: set[str],
        counters_only: set[str],
    ) -> None:
        inserts = []
        updates = []
        counter_updates = []
        for profile_id, state in states.items():
            if profile_id not in existing:
                inserts.append(_to_row(state))
            elif profile_id in counters_only:
                counter_updates.append(_to_counter_row(state))
            else:
                updates.append(_to_row(state))
        insert_rows(conn, profiles, _COLUMNS, inserts)
        # An UPDATE tuple is the same values: every column but the key, then the key.
        update_rows(conn, profiles, "profile_id", _COLUMNS[:-1], updates)
        update_rows(conn, profiles, "profile_id", _COUNTER_COLUMNS, counter_updates)

    def _unmerge(self, conn: Connection, event: LoggedEvent, *, shared: bool = False) -> None:
        merge_id = (event.message.get("properties") or {}).get("merge_id")
        row = conn.execute(select(merges).where(merges.c.merge_id == merge_id)).first()
        if row is None:
            return
        sides = [canonical(conn, row.winner_id), row.loser_id]
        upto: int | dict[int, int] = event.offset
        if shared:
            # Other partitions' workers may not have projected all their earlier events yet
            # (and may project later ones meanwhile). Lock both profiles first, so no worker
            # changes them until this commits, then rebuild each from exactly the events
            # already applied in each partition: what is not applied yet is applied later,
            # by its own partition, to whichever side identity gave it.
            lock_profiles(conn, sides)
            upto = {**_applied_offsets(conn, self.name), event.partition: event.offset}
        existing = set(load_states(conn, sides))
        states = {pid: rebuild(conn, pid, event.workspace_id, upto) for pid in sides}
        self._write(conn, states, existing, set())


def _applied_offsets(conn: Connection, consumer: str) -> dict[int, int]:
    """The offset up to which `consumer` has applied each partition (production mode)."""
    prefix = f"{consumer}.p"
    rows = conn.execute(
        select(checkpoints.c.consumer, checkpoints.c.offset).where(
            checkpoints.c.consumer.like(prefix + "%")
        )
    )
    found: dict[int, int] = {}
    for name, offset in rows:
        tail = name.removeprefix(prefix)
        if tail.isdigit():
            found[int(tail)] = int(offset)
    return found


def rebuild(
    conn: Connection, profile_id: str, workspace_id: str, upto: int | Mapping[int, int]
) -> ProfileState:
    """A profile's state recomputed from the events assigned to it up to offset `upto`, or,
    per partition, up to the offsets `upto` gives (events of other partitions: not counted)."""
    if isinstance(upto, int):
        within = log_events.c.offset <= upto
    else:
        within = or_(
            *(
                and_(log_events.c.partition == partition, log_events.c.offset <= offset)
                for partition, offset in sorted(upto.items())
            )
        )
    rows = conn.execute(
        select(log_events)
        .join(event_profiles, event_profiles.c.offset == log_events.c.offset)
        .where(event_profiles.c.profile_id == profile_id, within)
        .order_by(log_events.c.offset)
    )
    state: ProfileState | None = None
    for r in rows:
        event = event_from_row(r)
        if state is None:
            state = ProfileState(profile_id, workspace_id, r.timestamp, r.timestamp)
        apply_event(state, event)
    if state is None:
        state = ProfileState(profile_id, workspace_id, 0, 0)
    return state
