"""Segments: saved filters over what Polku knows of a person, and who is in each now.

A segment is conditions (the journeys' `{field, op, value}`) over `profile` (traits,
counts, consent, order dates: `profile.days_since_last_order`), `counts` (events by name)
and `cart`. Membership is kept in `journey_segment_members` and evaluated on change: the
journeys consumer re-evaluates the segments of every person a batch touched, and the
sweep (`sweep`, run by the journeys' background loop every few minutes) re-evaluates the
segments whose conditions depend on time passing (``days_since_*``), because nobody's
events say "30 days went by". Entering a segment triggers the journeys with that
`segment` trigger; the enrollment's trigger id is the membership's, so one entry enrolls
once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, delete, func, select

from polku.errors import InvalidField, NotFound
from polku.journeys.conditions import AnyOf, Condition, Test, evaluate, parse_conditions
from polku.journeys.tables import segment_members, segments

__all__ = [
    "Segment",
    "delete_segment",
    "evaluate_member",
    "list_segments",
    "members_of",
    "parse_segment",
    "save_segment",
    "segments_of",
    "time_based",
]

_KEY: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_ROOTS: Final = ("profile", "counts", "cart")


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    name: str
    tests: tuple[Test, ...]
    document: Mapping[str, Any]

    @property
    def time_based(self) -> bool:
        return any("days_since" in field for field in _fields(self.tests))


def _fields(tests: Sequence[Test]) -> Iterator[str]:
    for test in tests:
        if isinstance(test, AnyOf):
            yield from _fields(test.tests)
        elif isinstance(test, Condition):
            yield test.field


def parse_segment(raw: Any) -> Segment:
    if not isinstance(raw, Mapping):
        raise InvalidField(
            "A segment is a JSON object.",
            field="body",
            hint='Send {"key": "vip", "where": [{"field": ..., "op": ..., "value": ...}]}.',
        )
    unknown = sorted(set(map(str, raw)) - {"key", "name", "where"})
    if unknown:
        raise InvalidField(
            f"Unknown key {unknown[0]!r} in the segment.",
            field=unknown[0],
            hint="A segment has key, name and where.",
        )
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidField(
            f"Segment key {key!r} is not usable.",
            field="key",
            hint="Use lowercase letters, digits and dashes, e.g. lapsing.",
        )
    tests = parse_conditions(raw.get("where"), "where")
    if not tests:
        raise InvalidField(
            "A segment needs at least one condition.",
            field="where",
            hint='Send "where": [{"field": "profile.order_count", "op": "gte", "value": 3}].',
        )
    for field in _fields(tests):
        if field.partition(".")[0] not in _ROOTS:
            raise InvalidField(
                f"A segment cannot look at {field!r}: it is about the person, not an event.",
                field="where",
                hint="Use profile.*, counts.* or cart.* fields.",
            )
    name = raw.get("name") or key
    if not isinstance(name, str):
        raise InvalidField("name must be text.", field="name", hint="Write a short name.")
    document = orjson.loads(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS))
    return Segment(key, name, tests, document)


def save_segment(conn: Connection, workspace_id: str, raw: Any) -> Segment:
    segment = parse_segment(raw)
    body = orjson.dumps(segment.document, option=orjson.OPT_SORT_KEYS).decode()
    now = int(time.time() * 1000)
    s = segments.c
    done = conn.execute(
        segments.update()
        .where(s.workspace_id == workspace_id, s.segment_key == segment.key)
        .values(document=body, updated_at=now)
    )
    if not done.rowcount:
        conn.execute(
            segments.insert().values(
                workspace_id=workspace_id, segment_key=segment.key, document=body, updated_at=now
            )
        )
    return segment


def delete_segment(conn: Connection, workspace_id: str, key: str) -> None:
    s = segments.c
    done = conn.execute(
        delete(segments).where(s.workspace_id == workspace_id, s.segment_key == key)
    )
    if not done.rowcount:
        raise NotFound(f"No segment {key!r}.", field="key", hint="GET /v1/segments lists them.")
    m = segment_members.c
    conn.execute(
        delete(segment_members).where(m.workspace_id == workspace_id, m.segment_key == key)
    )


def segments_of(conn: Connection, workspace_id: str) -> list[Segment]:
    s = segments.c
    rows = conn.execute(
        select(s.document).where(s.workspace_id == workspace_id).order_by(s.segment_key)
    ).all()
    return [parse_segment(orjson.loads(row.document)) for row in rows]


def list_segments(conn: Connection, workspace_id: str) -> list[dict[str, Any]]:
    m = segment_members.c
    counts: dict[str, int] = {}
    for key, count in conn.execute(
        select(m.segment_key, func.count())
        .where(m.workspace_id == workspace_id)
        .group_by(m.segment_key)
    ):
        counts[key] = int(count)
    return [
        {**dict(seg.document), "members": counts.get(seg.key, 0), "time_based": seg.time_based}
        for seg in segments_of(conn, workspace_id)
    ]


def members_of(
    conn: Connection, workspace_id: str, key: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    m = segment_members.c
    rows = conn.execute(
        select(m.profile_id, m.entered_at)
        .where(m.workspace_id == workspace_id, m.segment_key == key)
        .order_by(m.entered_at.desc())
        .limit(limit)
    ).all()
    return [{"profile_id": r.profile_id, "entered_at": int(r.entered_at)} for r in rows]


def time_based(found: Sequence[Segment]) -> list[Segment]:
    return [s for s in found if s.time_based]


def evaluate_member(
    conn: Connection,
    workspace_id: str,
    profile_id: str,
    found: Sequence[Segment],
    facts: Any,
    at: int,
) -> list[tuple[Segment, str]]:
    """Re-evaluate `found` for one person; the segments they entered now, each with the
    membership's id (the trigger id of the enrollments it starts)."""
    m = segment_members.c
    current = {
        row.segment_key: int(row.entered_at)
        for row in conn.execute(
            select(m.segment_key, m.entered_at).where(
                m.workspace_id == workspace_id, m.profile_id == profile_id
            )
        )
    }
    entered: list[tuple[Segment, str]] = []
    for segment in found:
        held, _ = evaluate(segment.tests, facts)
        if held and segment.key not in current:
            conn.execute(
                segment_members.insert().values(
                    workspace_id=workspace_id,
                    segment_key=segment.key,
                    profile_id=profile_id,
                    entered_at=at,
                )
            )
            entered.append((segment, f"segment:{segment.key}:{at}"))
        elif not held and segment.key in current:
            conn.execute(
                delete(segment_members).where(
                    m.workspace_id == workspace_id,
                    m.segment_key == segment.key,
                    m.profile_id == profile_id,
                )
            )
    return entered
