"""The signals consumer: features, rules and the model on every event, then routing.

For each batch it reads, in one query each, the states of the profiles the batch touches
(identity's `identity_event_profiles` says whose each event is), the statistics of the pages
it views, and where the stores it names are; runs `features.step` per event in log order;
scores the model for the events that change the session's row (one booster call for the
batch); evaluates the rules; and, inside the transaction that moves its checkpoint, writes
the states back (one statement per table), adds the page increments, sets the idle-cart
timers, takes the timers that the batch's event time passed, and hands every candidate to
`polku.signals.routing.route`, which stores each `dedupe_key` once.

A merge recorded by an event of the batch folds the merged profile's state into the
survivor's (`PersonState.absorb`), so the views a device made before its person signed in
count for them. An un-merge leaves the state with the survivor.

A failure in the model or a rule on one event is logged with the event's messageId and the
batch goes on without that event's signals: scoring must never stop the pipeline.

In the production mode (`shared`), the profile rows are created if missing and locked in
key order before they are read, page statistics only ever change by increments, and a due
timer another worker is taking is skipped.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from sqlalchemy import Connection

from polku.errors import PolkuError
from polku.events import LoggedEvent
from polku.identity.identifiers import IdentityConfig
from polku.pipeline.consumer import Apply
from polku.signals import state
from polku.signals.candidates import Candidate, Reason
from polku.signals.features import PageBook, Snapshot, page_key, page_type, step
from polku.signals.routing import route
from polku.signals.rules import CART_EVENTS, Fired, Places, RuleBook, candidate, load_rules
from polku.storage.bulk import fetch_in, fetch_rows

__all__ = ["Scorer", "SignalsConsumer"]

logger = logging.getLogger(__name__)

_TYPES: Final = frozenset({"track", "page", "screen", "identify"})
_ONLINE: Final = frozenset({"web", "app"})


class Scorer(Protocol):
    """What the consumer needs of a model (`polku.signals.model.IntentModel` is one)."""

    def probabilities(self, rows: Iterable[Mapping[str, object]]) -> Iterable[float]: ...

    def score(self, row: Mapping[str, object]) -> Any: ...  # .probability, .reasons


@functools.cache
def default_scorer() -> Scorer | None:
    """Polku's shipped model, or None (logged) when it cannot be loaded; loaded once per
    process (it is read-only, and every runtime of a process may share it)."""
    try:
        # The model pulls in LightGBM and NumPy: imported when first needed, never at start.
        from polku.signals.model import IntentModel

        return IntentModel.load()
    except (ImportError, PolkuError, OSError) as exc:
        logger.warning("signals: running without the purchase-intent model: %s", exc)
        return None


_Hit = tuple[Fired, LoggedEvent, str, Snapshot]  # a fired rule, its event, profile, snapshot


class _Unset:
    pass


_DEFAULT: Final = _Unset()


class SignalsConsumer:
    """Features, rules and the model on every event, then routing (see the module doc)."""

    name = "signals"

    def __init__(
        self,
        identity: IdentityConfig,
        *,
        rules: RuleBook | None = None,
        scorer: Scorer | _Unset | None = _DEFAULT,
    ) -> None:
        self._identity = identity
        self.rules = rules if rules is not None else load_rules()
        self._scorer = scorer

    @property
    def scorer(self) -> Scorer | None:
        if isinstance(self._scorer, _Unset):
            self._scorer = default_scorer() if self.rules.model is not None else None
        return self._scorer

    @scorer.setter
    def scorer(self, value: Scorer | None) -> None:
        self._scorer = value

    def warm(self) -> None:
        """Load the model now (LightGBM, NumPy: seconds on a cold process), so the first
        batch does not hold the write transaction while it loads."""
        _ = self.scorer

    def reset(self, conn: Connection) -> None:
        state.reset(conn)

    def prepare(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool = False
    ) -> Apply:
        relevant = [e for e in events if e.type in _TYPES]
        if not relevant:
            return lambda writer: self._timers_only(writer, events, shared=shared)
        return self._plan(conn, events, relevant, shared=shared)

    # -- planning a batch -------------------------------------------------------------------

    def _plan(
        self,
        conn: Connection,
        events: Sequence[LoggedEvent],
        relevant: Sequence[LoggedEvent],
        *,
        shared: bool,
    ) -> Apply:
        owner = _owners(conn, [e.offset for e in relevant])
        merges = _merges(conn, events)
        people = {(e.workspace_id, owner[e.offset]) for e in relevant if e.offset in owner}
        people |= {(ws, p) for ws, winner, loser in merges.values() for p in (winner, loser)}
        if shared:
            state.lock_people(conn, people, max(e.timestamp for e in events))
        stored = state.read_people(conn, people)

        # pages and stores the batch needs, one query each per workspace
        wanted_pages: dict[str, set[str]] = defaultdict(set)
        wanted_stores: dict[str, set[str]] = defaultdict(set)
        for event in relevant:
            message = event.message
            key = page_key(message)
            if key is not None:
                wanted_pages[event.workspace_id].add(key)
            properties = message.get("properties")
            if isinstance(properties, Mapping) and properties.get("store_id") is not None:
                wanted_stores[event.workspace_id].add(str(properties["store_id"]))
        books = {
            ws: PageBook(state.read_pages(conn, ws, sorted(keys)))
            for ws, keys in wanted_pages.items()
        }
        places = {ws: _places(conn, ws, sorted(ids)) for ws, ids in wanted_stores.items()}

        # features, in log order
        touched: dict[tuple[str, str], int] = {}
        snapshots: list[tuple[LoggedEvent, str, Snapshot]] = []
        for event in events:
            merge = merges.get(event.offset)
            if merge is not None:
                ws, winner, loser = merge
                if (ws, loser) in stored and (ws, winner) in stored and winner != loser:
                    _fold(stored[(ws, winner)], stored[(ws, loser)])
                    touched[(ws, winner)] = touched[(ws, loser)] = event.timestamp
            profile = owner.get(event.offset)
            if profile is None or event.type not in _TYPES:
                continue
            pair = (event.workspace_id, profile)
            held = stored[pair]
            book = books.setdefault(event.workspace_id, PageBook())
            try:
                held.session, snapshot = step(
                    held.session, held.person, book, event.message, event.timestamp, profile
                )
            except Exception:  # a message the features cannot read: no signal from it
                logger.exception("signals: features failed for event %s", event.message_id)
                continue
            touched[pair] = event.timestamp
            snapshots.append((event, profile, snapshot))

        probabilities = self._probabilities(snapshots)
        candidates: list[Candidate] = []
        hits: list[_Hit] = []
        timers: dict[tuple[str, str, str], state.TimerRow | None] = {}
        for index, (event, profile, snapshot) in enumerate(snapshots):
            pair = (event.workspace_id, profile)
            try:
                fired = self.rules.evaluate(
                    snapshot,
                    stored[pair].memory,
                    places.get(event.workspace_id) or Places(),
                    probability=probabilities.get(index),
                )
            except Exception:
                logger.exception("signals: rules failed for event %s", event.message_id)
                continue
            hits.extend((hit, event, profile, snapshot) for hit in fired)
            if snapshot.event in CART_EVENTS:
                for rule, timer in self.rules.timers(snapshot):
                    timers[(event.workspace_id, profile, rule)] = (
                        None
                        if timer is None
                        else state.TimerRow(
                            event.workspace_id,
                            profile,
                            timer,
                            event.message_id,
                            event.offset,
                            snapshot.channel,
                            snapshot.session_id,
                        )
                    )
        for hit, event, profile, snapshot in self._with_model_reasons(hits):
            candidates.append(
                candidate(
                    hit,
                    workspace_id=event.workspace_id,
                    profile_id=profile,
                    event_id=event.message_id,
                    offset=event.offset,
                    channel=snapshot.channel,
                    session_id=snapshot.session_id,
                )
            )
        deltas = {
            (ws, page): delta for ws, book in books.items() for page, delta in book.pending.items()
        }
        now = _workspace_times(events)

        def apply(writer: Connection) -> None:
            state.write_people(writer, stored, touched)
            state.add_pages(writer, deltas)
            state.set_timers(writer, timers)
            routed = candidates + self._due(writer, now, shared=shared)
            if routed:
                route(writer, routed)

        return apply

    def _timers_only(
        self, conn: Connection, events: Sequence[LoggedEvent], *, shared: bool
    ) -> None:
        due = self._due(conn, _workspace_times(events), shared=shared)
        if due:
            route(conn, due)

    def _due(self, conn: Connection, now: Mapping[str, int], *, shared: bool) -> list[Candidate]:
        if not self.rules.idle:
            return []
        found: list[Candidate] = []
        for ws, at_ms in sorted(now.items()):
            for row in state.due_timers(conn, ws, at_ms, shared=shared):
                fired = self.rules.fire_idle(row.timer)
                if fired is None:
                    continue
                found.append(
                    candidate(
                        fired,
                        workspace_id=ws,
                        profile_id=row.profile_id,
                        event_id=row.event_id,
                        offset=row.offset,
                        channel=row.channel,
                        session_id=row.session_id,
                    )
                )
        return found

    # -- the model ----------------------------------------------------------------------------

    def _probabilities(
        self, snapshots: Sequence[tuple[LoggedEvent, str, Snapshot]]
    ) -> dict[int, float]:
        """The model's probability for each snapshot worth scoring (by index), one call for
        the batch; if that fails, one call per event, and an event that fails is logged."""
        scorer = self.scorer if self.rules.model is not None else None
        if scorer is None:
            return {}
        chosen = [
            i
            for i, (event, _, snapshot) in enumerate(snapshots)
            if snapshot.channel in _ONLINE
            and snapshot.views > 0
            and (page_type(event.message) is not None or snapshot.event in CART_EVENTS)
        ]
        if not chosen:
            return {}
        rows = [snapshots[i][2].uci_row() for i in chosen]
        try:
            values = [float(p) for p in scorer.probabilities(rows)]
            return dict(zip(chosen, values, strict=True))
        except Exception:
            found: dict[int, float] = {}
            for i, row in zip(chosen, rows, strict=True):
                try:
                    found[i] = float(next(iter(scorer.probabilities([row]))))
                except Exception:
                    logger.exception(
                        "signals: scoring failed for event %s", snapshots[i][0].message_id
                    )
            return found

    def _with_model_reasons(self, hits: list[_Hit]) -> list[_Hit]:
        """The model's signals of a batch with the model's reasons (one call for all of
        them when the model can); a model signal whose reasons fail keeps its own."""
        scorer = self.scorer
        wanted = [i for i, hit in enumerate(hits) if hit[0].rule.kind == "model"]
        if scorer is None or not wanted:
            return hits
        rows = [hits[i][3].uci_row() for i in wanted]
        many = getattr(scorer, "score_many", None)
        try:
            scored = list(many(rows)) if many is not None else [scorer.score(r) for r in rows]
        except Exception:
            logger.exception(
                "signals: reasons failed for events %s", [hits[i][1].message_id for i in wanted]
            )
            return hits
        found = list(hits)
        for i, result in zip(wanted, scored, strict=True):
            fired = hits[i][0]
            reasons = tuple(r for r in result.reasons if isinstance(r, Reason))
            found[i] = (
                dataclasses.replace(fired, reasons=(*fired.reasons[:1], *reasons)),
                *hits[i][1:],
            )
        return found


def _owners(conn: Connection, offsets: Sequence[int]) -> dict[int, str]:
    """Whose each event is (identity's record): offset -> profile. The offsets of a chunk
    are usually (nearly) consecutive: then one range of the key, which SQLite walks in
    order, instead of a lookup per offset."""
    if _dense(offsets):
        wanted = set(offsets)
        rows = fetch_rows(
            conn,
            'SELECT "offset", profile_id FROM identity_event_profiles '
            'WHERE "offset" BETWEEN ? AND ?',
            (min(offsets), max(offsets)),
        )
        return {int(r[0]): r[1] for r in rows if r[0] in wanted}
    return {
        int(r[0]): r[1]
        for r in fetch_in(
            conn,
            'SELECT "offset", profile_id FROM identity_event_profiles WHERE "offset" IN (?*)',
            offsets,
        )
    }


def _dense(offsets: Sequence[int]) -> bool:
    """Whether a range from the lowest to the highest of `offsets` holds few others (a
    partition's chunk of the production log can be spread among the other partitions')."""
    return bool(offsets) and max(offsets) - min(offsets) < 2 * len(offsets)


def _merges(conn: Connection, events: Sequence[LoggedEvent]) -> dict[int, tuple[str, str, str]]:
    """Merges recorded by the batch's events: evidence offset -> (workspace, winner, loser)."""
    offsets = [e.offset for e in events]
    if _dense(offsets):
        wanted = set(offsets)
        rows = fetch_rows(
            conn,
            "SELECT evidence_offset, workspace_id, winner_id, loser_id FROM identity_merges "
            "WHERE evidence_offset BETWEEN ? AND ?",
            (min(offsets), max(offsets)),
        )
        rows = [r for r in rows if r[0] in wanted]
    else:
        rows = fetch_in(
            conn,
            "SELECT evidence_offset, workspace_id, winner_id, loser_id FROM identity_merges "
            "WHERE evidence_offset IN (?*)",
            offsets,
        )
    return {int(r[0]): (r[1], r[2], r[3]) for r in rows}


def _fold(winner: state.Stored, loser: state.Stored) -> None:
    winner.person.absorb(loser.person)
    if loser.session is not None and (
        winner.session is None or loser.session.last_ms > winner.session.last_ms
    ):
        winner.session = loser.session
    for key, at in loser.memory.items():
        winner.memory.setdefault(key, at)


def _places(conn: Connection, workspace_id: str, ids: Sequence[str]) -> Places:
    rows = fetch_in(
        conn,
        "SELECT location_id, latitude, longitude, name FROM locations "
        "WHERE workspace_id = ? AND location_id IN (?*)",
        ids,
        (workspace_id,),
    )
    return Places({r[0]: (float(r[1]), float(r[2])) for r in rows}, {r[0]: r[3] for r in rows})


def _workspace_times(events: Sequence[LoggedEvent]) -> dict[str, int]:
    """How far event time got in each workspace: the latest event of the batch."""
    now: dict[str, int] = {}
    for event in events:
        if event.timestamp > now.get(event.workspace_id, 0):
            now[event.workspace_id] = event.timestamp
    return now
